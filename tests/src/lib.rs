//! Cross-crate integration tests for Courier; the tests live in `tests/`.
//!
//! This library holds the code idlc generates from its codegen fixtures
//! (`idlc/tests/fixtures/codegen/*.rpc`), one module per fixture, so every
//! generated file is compiled and linted, and the tests can use it.

/// One module per codegen fixture.
pub mod fixtures {
    /// `annotations.rpc`
    pub mod annotations {
        courier::include_idl!("annotations");
    }
    /// `collections.rpc`
    pub mod collections {
        courier::include_idl!("collections");
    }
    /// `constants.rpc`
    pub mod constants {
        courier::include_idl!("constants");
    }
    /// `defaults.rpc`
    pub mod defaults {
        courier::include_idl!("defaults");
    }
    /// `enums.rpc`
    pub mod enums {
        courier::include_idl!("enums");
    }
    /// `imports.rpc`
    pub mod imports {
        courier::include_idl!("imports");
    }
    /// `imports_common.rpc`
    pub mod imports_common {
        courier::include_idl!("imports_common");
    }
    /// `keywords.rpc`
    pub mod keywords {
        courier::include_idl!("keywords");
    }
    /// `nasty_names.rpc`
    pub mod nasty_names {
        courier::include_idl!("nasty_names");
    }
    /// `nested.rpc`
    pub mod nested {
        courier::include_idl!("nested");
    }
    /// `recursion.rpc`
    pub mod recursion {
        courier::include_idl!("recursion");
    }
    /// `scalars.rpc`
    pub mod scalars {
        courier::include_idl!("scalars");
    }
    /// `services.rpc`
    pub mod services {
        courier::include_idl!("services");
    }
    /// `streams.rpc`
    pub mod streams {
        courier::include_idl!("streams");
    }
    /// `unions.rpc`
    pub mod unions {
        courier::include_idl!("unions");
    }
}

/// `collections.rpc` generated with `MapType::BTreeMap` and extra derives.
pub mod btree_collections {
    include!(concat!(env!("OUT_DIR"), "/btree/collections.rs"));
}

/// `nested.rpc` generated with `MapType::BTreeMap` (maps in a known order,
/// for byte-exact checks).
pub mod btree_nested {
    include!(concat!(env!("OUT_DIR"), "/btree/nested.rs"));
}
