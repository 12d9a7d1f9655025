//! The embedded `.rpc` source: each generated module's `IDL_SOURCE` (each
//! service adapter's `ServiceHandler::idl` lists it with the sources of
//! every file it imports, for server reflection).

use super::layout::Writer;
use crate::model::FileModel;

/// `pub const IDL_SOURCE: __rt::IdlSource = ..;`: the file's name and text.
pub fn source_const(w: &mut Writer, file: &FileModel) {
    let name = &file.idl_name;
    w.line_fmt(format_args!(
        "/// The `.rpc` source this module was generated from (`{name}`), embedded by idlc for server reflection."
    ));
    w.open("pub const IDL_SOURCE: __rt::IdlSource = __rt::IdlSource");
    w.line_fmt(format_args!("name: {name:?},"));
    // A raw literal spans lines: written as is, without indentation.
    w.line_fmt(format_args!("text: {},", text_literal(&file.text)));
    w.close(";");
}

/// The text as a string literal: raw (`r#"..."#`, readable, one source line
/// per line) unless it holds characters a raw literal can't keep exactly
/// (carriage returns, which rustc folds, other control characters, and
/// bidirectional overrides, which rustc rejects in literals).
fn text_literal(text: &str) -> String {
    let raw_safe = text.chars().all(|c| {
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        c == '\n' || c == '\t' || !(c.is_control() || bidi)
    });
    if !raw_safe {
        return format!("{text:?}");
    }
    let hashes = "#".repeat(longest_hash_run_after_quote(text) + 1);
    format!("r{hashes}\"{text}\"{hashes}")
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
        let literal = text_literal("package a;\n/// \"doc\"\n");
        assert_eq!(literal, "r#\"package a;\n/// \"doc\"\n\"#");
    }

    #[test]
    fn hashes_after_quotes_get_more_hashes() {
        let literal = text_literal("a \"## b");
        assert!(literal.starts_with("r###\""), "{literal}");
        assert!(literal.ends_with("\"###"), "{literal}");
    }

    #[test]
    fn carriage_returns_and_bidi_overrides_are_escaped() {
        for text in ["a\r\nb", "a\u{202E}b", "a\u{0}b"] {
            let literal = text_literal(text);
            assert!(literal.starts_with('"'), "{literal}");
            let parsed: syn::LitStr = syn::parse_str(&literal).expect("a string literal");
            assert_eq!(parsed.value(), text);
        }
    }
}
