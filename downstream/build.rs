//! Compiles the example `.rpc` files as a user's build.rs does.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    idlc::Builder::new().compile(&[
        "../idl-examples/idl/hello.rpc",
        "../idl-examples/idl/shop.rpc",
    ])?;
    Ok(())
}
