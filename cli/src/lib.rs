//! The library behind `courier`, the command-line client: the dynamic
//! codec (JSON arguments to any serializer, and answers back to JSON,
//! driven by the checked IDL model), schemas from `.rpc` files or
//! reflection, and durations as the command line writes them.

#![warn(missing_docs)]

pub mod duration;
pub mod dynamic;
pub mod schema;
