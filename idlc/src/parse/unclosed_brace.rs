//! A missing `}`: a syntax error where the next declaration (or the end of
//! the file) starts while a declaration's `{` is still open becomes
//! [`DiagnosticKind::UnclosedBrace`], which points at that `{` ("this `{`
//! of struct `Order` is never closed") as well as at where the `}` was due.

use super::starts_decl;
use crate::diagnostic::DiagnosticKind;
use crate::source::span;

/// Declaration keywords whose declarations have a `{ ... }` body, with
/// what their members are called.
const BODIES: &[(&str, &str)] = &[
    ("struct", "field"),
    ("error", "field"),
    ("union", "arm"),
    ("enum", "variant"),
    ("service", "method"),
];

/// The unclosed-brace diagnostic for a syntax error at `error_at` while
/// parsing the declaration that starts at or after `decl_start`, if that
/// is what the error is: the declaration's body `{` is still open, and
/// either the error is at the end of the file where a `}` could stand
/// (`expects_close`), or the error's line starts another declaration
/// (the error itself may come a token later: in an enum, `struct` parses
/// as a variant name and the error is at the name after it).
pub(crate) fn unclosed_brace(
    text: &str,
    decl_start: usize,
    error_at: usize,
    expects_close: bool,
) -> Option<DiagnosticKind> {
    let error_at = error_at.min(text.len());
    let (found, found_at) = if error_at == text.len() {
        if !expects_close {
            return None;
        }
        ("end of file".to_owned(), None)
    } else {
        let line_start = text[..error_at].rfind('\n').map_or(0, |i| i + 1);
        let first = line_start
            + (text[line_start..].len() - text[line_start..].trim_start_matches([' ', '\t']).len());
        if first > error_at || !starts_next_declaration(text, first) {
            return None;
        }
        let keyword = word_at(text, first);
        (
            format!("`{keyword}`"),
            Some(span(first, first + keyword.len())),
        )
    };
    let end = found_at.map_or(text.len(), |at| at.offset());
    let open = open_brace(text.get(decl_start..end)?)? + decl_start;
    let (what, member) = match declaration_before(&text[..open]) {
        Some((keyword, name, member)) => (format!("{keyword} `{name}`"), Some((member, name))),
        None => ("the declaration".to_owned(), None),
    };
    let help = match member {
        Some((member, name)) => format!("add `}}` after the last {member} of `{name}`"),
        None => "close it with `}`".to_owned(),
    };
    // At the end of the file the caret goes under the last character (an
    // empty span there would show no line at all).
    let last = text.trim_end();
    let (label, at) = match (found_at, last.chars().next_back()) {
        (Some(at), _) => ("expected `}` before this", at),
        (None, Some(c)) if last.len() > open + 1 => (
            "expected `}` after this",
            span(last.len() - c.len_utf8(), last.len()),
        ),
        (None, _) => ("expected `}` here", span(text.len(), text.len())),
    };
    Some(DiagnosticKind::UnclosedBrace {
        what,
        found,
        label: label.to_owned(),
        span: at,
        open: span(open, open + 1),
        help: Some(help),
    })
}

/// The identifier-like word at `at`.
fn word_at(text: &str, at: usize) -> &str {
    let rest = &text[at..];
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..len]
}

/// Whether a declaration starts at `at` (the first token of its line): a
/// declaration keyword, and, for the keywords with a body, followed by a
/// name and `{` (so that `error e)` in a parameter list is not taken for
/// an `error` declaration).
fn starts_next_declaration(text: &str, at: usize) -> bool {
    let rest = &text[at..];
    if !starts_decl(rest) {
        return false;
    }
    let keyword = word_at(text, at);
    if !BODIES.iter().any(|(body, _)| *body == keyword) {
        return true;
    }
    let after = rest[keyword.len()..].trim_start();
    let name = word_at(after, 0);
    !name.is_empty() && after[name.len()..].trim_start().starts_with('{')
}

/// The offset in `slice` of the first `{` (outside comments and strings),
/// if no `}` closes it within `slice`.
fn open_brace(slice: &str) -> Option<usize> {
    let bytes = slice.as_bytes();
    let mut first = None;
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| i + p);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = slice[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |p| i + 2 + p + 2);
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => {
                first = first.or(Some(i));
                depth += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && first.is_some() {
                    // The body closed; whatever failed, it is not a
                    // missing `}` of this declaration.
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    first.filter(|_| depth > 0)
}

/// The keyword and name right before a body's `{` (`struct Order`), with
/// what the body's members are called.
fn declaration_before(text: &str) -> Option<(&'static str, &str, &'static str)> {
    let (rest, name) = last_word(text)?;
    let (_, keyword) = last_word(rest)?;
    BODIES
        .iter()
        .find(|(body, _)| *body == keyword)
        .map(|(body, member)| (*body, name, *member))
}

/// The last identifier-like word of `text` (after trailing whitespace),
/// and the text before it.
fn last_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_end();
    // After the last character that is not part of a word, whatever its
    // length in bytes (a `\u{feff}` before a name is three).
    let start = text
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &text[start..];
    (!word.is_empty()).then(|| (&text[..start], word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_after_a_multibyte_character_is_found_whole() {
        assert_eq!(
            last_word("struct \u{feff}Order "),
            Some(("struct \u{feff}", "Order"))
        );
        assert_eq!(last_word("é"), None);
        // Found by the idl_front_end fuzz target: a body opened after a
        // byte-order mark, never closed.
        let text = "struct\u{feff}Order {\n  1: u64 id;\n";
        assert!(unclosed_brace(text, 0, text.len(), true).is_some());
    }

    fn diagnose(text: &str, found: &str) -> Option<DiagnosticKind> {
        let at = if found == "end of file" {
            text.len()
        } else {
            text.rfind(found)?
        };
        unclosed_brace(text, 0, at, true)
    }

    #[test]
    fn names_the_open_brace_before_the_next_declaration() {
        let text = "struct Order {\n  1: u64 id;\nservice Orders {}\n";
        let Some(DiagnosticKind::UnclosedBrace {
            what, open, help, ..
        }) = diagnose(text, "service")
        else {
            panic!("an unclosed brace");
        };
        assert_eq!(what, "struct `Order`");
        assert_eq!(open.offset(), text.find('{').unwrap_or_default());
        assert_eq!(
            help.as_deref(),
            Some("add `}` after the last field of `Order`")
        );
    }

    #[test]
    fn also_when_the_error_comes_after_the_keyword() {
        // In an enum, `struct` parses as a variant name; `B` is the error.
        let text = "enum E {\n  A = 0;\nstruct B {}";
        let found = diagnose(text, "B");
        assert!(
            matches!(&found, Some(DiagnosticKind::UnclosedBrace { what, found, .. }) if what == "enum `E`" && found == "`struct`"),
            "{found:?}"
        );
    }

    #[test]
    fn and_at_the_end_of_the_file() {
        let text = "/// E.\nenum Status { A = 0; // {\n  B = 1; /* } */ \"}\"";
        let found = diagnose(text, "end of file");
        assert!(
            matches!(&found, Some(DiagnosticKind::UnclosedBrace { what, .. }) if what == "enum `Status`"),
            "{found:?}"
        );
    }

    #[test]
    fn other_errors_are_left_alone() {
        // The body was closed: another problem.
        assert!(diagnose("struct A { 1: u32 x; }\nstruct B {}", "struct").is_none());
        // The keyword is not at the start of its line.
        assert!(diagnose("struct A { 1: u32 x; struct B {}", "B").is_none());
        // At the end of the file, only where a `}` could stand.
        assert!(unclosed_brace("struct A { 1: u32", 0, 17, false).is_none());
        // Not a declaration: a keyword where a type was expected.
        assert!(diagnose("service S {\n  void f(1: u32 a,\n  error e);\n}", "error").is_none());
        // No body at all.
        assert!(diagnose("const u32 A =\nstruct B {}", "struct").is_none());
    }
}
