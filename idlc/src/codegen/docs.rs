//! Doc comments on generated items.

use proc_macro2::TokenStream;
use quote::quote;

/// `#[doc]` attributes (printed as `///`) for the user's doc lines, or one
/// line from `fallback` when the user wrote none: every public item is
/// documented.
pub fn doc_attrs(docs: &[String], fallback: impl FnOnce() -> String) -> TokenStream {
    if docs.is_empty() {
        let line = format!(" {}", fallback());
        return quote!(#[doc = #line]);
    }
    let lines = docs.iter().map(|line| {
        let line = if line.is_empty() {
            String::new()
        } else {
            format!(" {line}")
        };
        quote!(#[doc = #line])
    });
    quote!(#(#lines)*)
}
