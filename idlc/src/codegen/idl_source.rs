//! The embedded `.rpc` source: each generated module's `IDL_SOURCE`, and
//! the `ServiceHandler::idl` of each service adapter that lists it with the
//! sources of every file it imports (for server reflection).

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::names;
use crate::model::FileModel;

/// `pub const IDL_SOURCE: __rt::IdlSource = ..;`: the file's name and text.
pub fn source_const(file: &FileModel) -> TokenStream {
    let name = &file.idl_name;
    let text = text_literal(&file.text);
    let doc = format!(
        " The `.rpc` source this module was generated from (`{name}`), embedded by idlc \
         for server reflection."
    );
    quote! {
        #[doc = #doc]
        pub const IDL_SOURCE: __rt::IdlSource = __rt::IdlSource {
            name: #name,
            text: #text,
        };
    }
}

/// The adapter's `ServiceHandler::idl`: this file's source, then those of
/// its imports (their modules' `IDL_SOURCE`), transitively, each once.
pub fn service_idl_method(file: &FileModel) -> TokenStream {
    let imports = file.imports.iter().map(|module| {
        let module = names::module_ident(module);
        quote!(super::#module::IDL_SOURCE)
    });
    quote! {
        fn idl(&self) -> ::core::option::Option<&'static __rt::ServiceIdl> {
            static IDL: __rt::ServiceIdl = __rt::ServiceIdl {
                file: IDL_SOURCE,
                imports: &[#(#imports),*],
            };
            ::core::option::Option::Some(&IDL)
        }
    }
}

/// The text as a string literal: raw (`r#"..."#`, readable, one source line
/// per line) unless it holds characters a raw literal can't keep exactly
/// (carriage returns, which rustc folds, other control characters, and
/// bidirectional overrides, which rustc rejects in literals).
fn text_literal(text: &str) -> Literal {
    let raw_safe = text.chars().all(|c| {
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        c == '\n' || c == '\t' || !(c.is_control() || bidi)
    });
    if !raw_safe {
        return Literal::string(text);
    }
    let hashes = "#".repeat(longest_hash_run_after_quote(text) + 1);
    format!("r{hashes}\"{text}\"{hashes}")
        .parse()
        .unwrap_or_else(|_| Literal::string(text))
}

/// The longest run of `#` right after a `"` in `text` (a raw literal needs
/// one `#` more to end after it).
fn longest_hash_run_after_quote(text: &str) -> usize {
    text.split('"')
        .skip(1)
        .map(|after| after.bytes().take_while(|&b| b == b'#').count())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_a_raw_literal() {
        let literal = text_literal("package a;\n/// \"doc\"\n").to_string();
        assert_eq!(literal, "r#\"package a;\n/// \"doc\"\n\"#");
    }

    #[test]
    fn hashes_after_quotes_get_more_hashes() {
        let literal = text_literal("a \"## b").to_string();
        assert!(literal.starts_with("r###\""), "{literal}");
        assert!(literal.ends_with("\"###"), "{literal}");
    }

    #[test]
    fn carriage_returns_and_bidi_overrides_are_escaped() {
        for text in ["a\r\nb", "a\u{202E}b", "a\u{0}b"] {
            let literal = text_literal(text).to_string();
            assert!(literal.starts_with('"'), "{literal}");
            let parsed: syn::LitStr = syn::parse_str(&literal).expect("a string literal");
            assert_eq!(parsed.value(), text);
        }
    }
}
