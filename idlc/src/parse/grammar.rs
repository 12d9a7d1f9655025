//! The pest parser generated from `grammar.pest`.

#![allow(missing_docs)]

/// The `.rpc` parser.
#[derive(pest_derive::Parser)]
#[grammar = "parse/grammar.pest"]
pub(crate) struct IdlParser;
