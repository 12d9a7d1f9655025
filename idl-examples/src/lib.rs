//! The example services: `hello.rpc` and `shop.rpc`, compiled by build.rs
//! through `idlc`, and the implementations the `demo` binary serves.

/// Generated from `idl/hello.rpc`.
pub mod hello {
    courier::include_idl!("hello");
}

/// Generated from `idl/shop.rpc`.
pub mod shop {
    courier::include_idl!("shop");
}

pub mod greeter;
pub mod order_book;
