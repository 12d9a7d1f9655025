//! Cross-crate integration tests for Courier; they live in `tests/`.
