//! The library behind `courier`, the command-line client: the dynamic
//! codec (JSON arguments to any serializer, and answers back to JSON,
//! driven by the checked IDL model), schemas from `.rpc` files or
//! reflection, durations as the command line writes them, and the
//! latency histogram of `--repeat`.

#![warn(missing_docs)]

pub mod duration;
pub mod dynamic;
pub mod latency;
pub mod schema;
