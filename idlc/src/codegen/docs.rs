//! Doc comments on generated items.

use std::borrow::Cow;

use super::layout::Writer;

/// The user's doc lines, or one line from `fallback` when the user wrote
/// none: every public item is documented.
pub fn doc_lines(docs: &[String], fallback: impl FnOnce() -> String) -> Cow<'_, [String]> {
    if docs.is_empty() {
        Cow::Owned(vec![fallback()])
    } else {
        Cow::Borrowed(docs)
    }
}

/// Writes doc lines as `///` comments (`#[doc = ".."]` for a line a
/// comment cannot hold: carriage returns, other control characters and
/// bidirectional overrides, which rustc rejects in comments).
pub fn write_docs(w: &mut Writer, lines: &[String]) {
    write_doc_lines(w, lines, false);
}

/// Writes doc lines as `//!` comments: the docs of the module they are in.
pub fn write_inner_docs(w: &mut Writer, lines: &[String]) {
    write_doc_lines(w, lines, true);
}

fn write_doc_lines(w: &mut Writer, lines: &[String], inner: bool) {
    let (comment, attribute) = if inner {
        ("//!", "#![doc = ")
    } else {
        ("///", "#[doc = ")
    };
    for line in lines {
        let line = line.trim_end();
        let comment_safe = line.chars().all(|c| {
            let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            c == '\t' || !(c.is_control() || bidi)
        });
        if !comment_safe {
            w.line_fmt(format_args!("{attribute}{:?}]", format!(" {line}")));
        } else if line.is_empty() {
            w.line(comment);
        } else {
            w.line_fmt(format_args!("{comment} {line}"));
        }
    }
}
