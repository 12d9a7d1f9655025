//! Whether IDL enums travel by name in a binary format.
//!
//! The serde helpers of [`codegen::json`](crate::codegen::json) pick text
//! or binary forms by `is_human_readable()`: JSON gets enum names and
//! base64 bytes, postcard numbers and raw bytes. MessagePack needs a mix
//! (PROTOCOL.md: JSON's shape, but `bytes` as `bin`), which that one flag
//! cannot say. So MessagePack stays not human-readable (bytes are `bin`)
//! and its encode and decode run inside a *named-enum* scope, a
//! thread-local flag the enum helpers check. Encoding and decoding are
//! synchronous, so the flag cannot leak to another message; the scope
//! restores the previous value even if serialization panics.

use std::cell::Cell;

thread_local! {
    static NAMED_ENUMS: Cell<bool> = const { Cell::new(false) };
}

/// Is the current thread inside a named-enum scope?
pub(crate) fn named_enums_active() -> bool {
    NAMED_ENUMS.with(Cell::get)
}

/// Runs `f` with enums serialized by name even in binary formats.
pub(crate) fn with_named_enums<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);

    impl Drop for Restore {
        fn drop(&mut self) {
            NAMED_ENUMS.with(|flag| flag.set(self.0));
        }
    }

    let _restore = Restore(NAMED_ENUMS.with(|flag| flag.replace(true)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_nests_and_restores() {
        assert!(!named_enums_active());
        with_named_enums(|| {
            assert!(named_enums_active());
            with_named_enums(|| assert!(named_enums_active()));
            assert!(named_enums_active());
        });
        assert!(!named_enums_active());
        let caught = std::panic::catch_unwind(|| with_named_enums(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(!named_enums_active(), "restored after a panic");
    }
}
