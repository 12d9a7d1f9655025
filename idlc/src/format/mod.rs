//! `idlc fmt`: the canonical layout of `.rpc` files, comments kept.
//!
//! [`format_source`] is pure: text in, text out. It refuses a file with
//! syntax errors (returning them), and it never returns text that means
//! something else: before returning, it parses its own output and checks
//! that the syntax tree (spans aside) and the sequence of comments are the
//! same as the input's, else it returns an `idl::format_failed` diagnostic
//! and the caller leaves the file alone. Formatting is idempotent:
//! formatting formatted text changes nothing.
//!
//! # The canonical style
//!
//! - Two spaces per indentation level; lines end with `\n`; no trailing
//!   whitespace; the file ends with exactly one line break.
//! - Top-level items (`package`, `import`, `const`, types, services) are
//!   separated by exactly one blank line, except that consecutive `import`
//!   lines, and consecutive `const` lines, stay together as a group (a
//!   blank line inside a group is kept if it was there).
//! - Bodies: `struct Name {`, one member per line indented one level, `}`
//!   on its own line. An empty body is `{}`. Between members, one blank
//!   line is kept where the source had one or more; none is added.
//! - Fields and parameters: `1: type name;` with one space after the colon
//!   and around `=`: `2: u32 quantity = 1;`. Types have no inner spaces
//!   except after commas: `map<string, common.Money>`, `optional string`.
//! - Enum variants: `NAME = 0;`.
//! - Doc comments (`///`, one space, then the text) and annotations of
//!   declarations, constants and methods each get a line of their own,
//!   docs first: `@idempotent` above the method. Annotations of fields,
//!   parameters and variants are written inline after the name (after the
//!   value for variants), as in `1: u64 id @hash_key`; those written before
//!   the tag move there (an annotation written after a default value stays
//!   after it). Empty parentheses (`@a()`) and trailing commas in
//!   annotation arguments are dropped.
//! - Methods: `[oneway] [stream] Result name(1: T a, 2: U b) [throws E,
//!   F];` on one line (a stream parameter: `3: stream T c`). When that line would be wider than 100 columns, or a comment or
//!   doc comment is inside the parentheses, the parameters go one per line,
//!   indented one level, each followed by a comma, and `)` starts the last
//!   line.
//! - Tokens are never rewritten: literals keep their spelling (`0x1F`,
//!   `1e3`, string escapes). Lines are not otherwise wrapped.
//!
//! # Comments
//!
//! Every comment is kept, with its text (trailing whitespace removed):
//! - a comment on the same line after a token (`1: u32 x; // note`) stays
//!   after that token on its line;
//! - a comment on a line of its own stays on a line of its own before the
//!   token that followed it, at that token's indentation; single blank
//!   lines around comments between members are kept;
//! - a `//` comment in the middle of a construct ends the line, and the
//!   construct continues on the next line, indented one more level;
//! - the comments of an annotation that moves (see above) stay where the
//!   annotation was, on lines of their own.

mod printer;
mod tree;
mod trivia;
mod writer;

use std::path::PathBuf;

use crate::diagnostic::{Diagnostic, DiagnosticKind, Diagnostics};
use crate::parse::{ast, parse};
use crate::source::SourceFile;
use writer::Writer;

/// Formats the text of one `.rpc` file (diagnostics name it `<input>`).
///
/// Returns the syntax errors when the text does not parse, and an
/// `idl::format_failed` diagnostic in the (buggy) case that the layout
/// would change the file's meaning or lose a comment.
///
/// ```
/// let formatted = idlc::format::format_source("struct A{1:u32 x;// note\n}").unwrap();
/// assert_eq!(formatted, "struct A {\n  1: u32 x; // note\n}\n");
/// ```
pub fn format_source(text: &str) -> Result<String, Diagnostics> {
    format_source_named("<input>", text)
}

/// [`format_source`] for a file: diagnostics show `name` (a path).
pub fn format_source_named(name: &str, text: &str) -> Result<String, Diagnostics> {
    let source = SourceFile::new(PathBuf::from(name), text).named_source();
    let diagnostics = |kinds: Vec<DiagnosticKind>| {
        Diagnostics::from_vec(
            kinds
                .into_iter()
                .map(|kind| Diagnostic::new(kind, Some(source.clone()), 0))
                .collect(),
        )
    };
    let parsed = parse(text);
    if !parsed.is_ok() {
        return Err(diagnostics(parsed.errors));
    }
    layout(text)
        .and_then(|formatted| verify(&parsed.file, text, &formatted).map(|()| formatted))
        .map_err(|reason| diagnostics(vec![DiagnosticKind::FormatFailed { reason }]))
}

/// The canonical layout of text that parses.
fn layout(text: &str) -> Result<String, String> {
    let tree = tree::build(text)
        .map_err(|e| format!("the parser stopped at byte {} of a valid file", e.offset))?;
    let trivia = trivia::scan(text, &tree.tokens)
        .map_err(|e| format!("unexpected text at byte {} between tokens", e.offset))?;
    Ok(printer::print(&tree, Writer::new(&tree.tokens, &trivia)))
}

/// The comments of text that parses, in order.
fn comments(text: &str) -> Result<Vec<String>, String> {
    let tree = tree::build(text)
        .map_err(|e| format!("the parser stopped at byte {} of a valid file", e.offset))?;
    let trivia = trivia::scan(text, &tree.tokens)
        .map_err(|e| format!("unexpected text at byte {} between tokens", e.offset))?;
    Ok(trivia
        .into_iter()
        .flat_map(|t| t.leading.into_iter().chain(t.trailing))
        .map(|comment| comment.text)
        .collect())
}

/// Checks that `formatted` says what `original` (the tree of `text`) says,
/// with the same comments in the same order.
fn verify(original: &ast::File, text: &str, formatted: &str) -> Result<(), String> {
    let reparsed = parse(formatted);
    if !reparsed.is_ok() {
        return Err("the formatted text would not parse".to_owned());
    }
    if reparsed.file.without_spans() != original.without_spans() {
        return Err("the formatted text would mean something else".to_owned());
    }
    if comments(text)? != comments(formatted)? {
        return Err("a comment would be lost or moved".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        match format_source(text) {
            Ok(formatted) => formatted,
            Err(diagnostics) => panic!("{diagnostics:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_returned() {
        let Err(diagnostics) = format_source("struct A { 1: u32 }") else {
            panic!("should fail");
        };
        assert_eq!(diagnostics.codes(), ["idl::syntax"]);
    }

    #[test]
    fn empty_and_comment_only_files() {
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("\n\n  \n"), "");
        assert_eq!(fmt("// a\n\n\n/* b */  \n"), "// a\n\n/* b */\n");
    }

    #[test]
    fn a_long_signature_goes_vertical() {
        let params: Vec<String> = (1..=8)
            .map(|i| format!("{i}: string parameter_{i}"))
            .collect();
        let text = format!("service S {{ void m({}); }}", params.join(", "));
        let formatted = fmt(&text);
        assert!(
            formatted.contains("  void m(\n    1: string parameter_1,\n"),
            "{formatted}"
        );
        assert!(
            formatted.contains("    8: string parameter_8,\n  );\n"),
            "{formatted}"
        );
        assert_eq!(fmt(&formatted), formatted);
    }

    #[test]
    fn annotations_move_after_the_name() {
        assert_eq!(
            fmt("struct A { @a /* c */ 1: u32 x = 1 @b; }"),
            "struct A {\n  /* c */\n  1: u32 x @a = 1 @b;\n}\n"
        );
    }
}
