//! Stage 1: text to [`ast::File`].
//!
//! The file is first prescanned (nesting depth, unterminated comments), then
//! parsed one declaration at a time with the pest grammar in
//! `grammar.pest`. After a syntax error, parsing resumes at the next line
//! that starts a declaration, so one run reports the syntax errors of every
//! declaration, not just the first. A declaration whose `{` is still open
//! when the next one starts (or the file ends) is reported as such
//! (`unclosed_brace.rs`).

pub mod ast;
pub(crate) mod grammar;
mod lower;
mod prescan;
mod syntax_error;
mod unclosed_brace;
mod without_spans;

use pest::Parser as _;

use crate::diagnostic::DiagnosticKind;
use grammar::{IdlParser, Rule};
use lower::{Lower, Lowered};

pub use prescan::MAX_NESTING;

/// What parsing a file produced: the declarations that parsed, and the
/// syntax errors of those that did not.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The syntax tree (partial when there are errors).
    pub file: ast::File,
    /// Syntax errors, in source order.
    pub errors: Vec<DiagnosticKind>,
}

impl Parsed {
    /// Whether the file parsed without errors.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Parses the text of one `.rpc` file. Never panics and never recurses
/// deeper than [`MAX_NESTING`] type levels.
pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    if let Err(error) = prescan::prescan(text) {
        parsed.errors.push(error);
        return parsed;
    }
    let mut pos = 0usize;
    let mut seen_decl = false;
    while pos <= text.len() {
        let slice = &text[pos..];
        match IdlParser::parse(Rule::decl_step, slice) {
            Ok(mut pairs) => {
                let Some(step) = pairs.next() else { break };
                let consumed = step.as_span().end();
                if step.clone().into_inner().any(|p| p.as_rule() == Rule::EOI) {
                    break;
                }
                let mut lower = Lower {
                    base: pos,
                    diagnostics: &mut parsed.errors,
                };
                match lower.decl_step(step) {
                    None => {}
                    Some(Lowered::Package(package)) => {
                        if seen_decl || parsed.file.package.is_some() {
                            parsed.errors.push(DiagnosticKind::Syntax {
                                message: "`package` must come first and only once".to_owned(),
                                label: "misplaced `package`".to_owned(),
                                span: package.span,
                                help: Some(
                                    "move the `package` declaration to the top of the file"
                                        .to_owned(),
                                ),
                            });
                        } else {
                            parsed.file.package = Some(package);
                        }
                    }
                    Some(Lowered::Import(import)) => {
                        seen_decl = true;
                        parsed.file.imports.push(import);
                    }
                    Some(Lowered::Decl(decl)) => {
                        seen_decl = true;
                        parsed.file.decls.push(decl);
                    }
                }
                if consumed == 0 {
                    break;
                }
                pos += consumed;
            }
            Err(error) => {
                let (diagnostic, at) = syntax_error::syntax_error(&error, text, pos);
                parsed.errors.push(diagnostic);
                match recovery_point(text, at, pos) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    parsed
}

/// Keywords that start a declaration; parsing resumes at a line that starts
/// with one of them.
const DECL_KEYWORDS: &[&str] = &[
    "struct", "error", "union", "enum", "service", "const", "import", "package",
];

/// The next place to resume after a syntax error at `error_at`: the start of
/// a line at or after the error whose first word is a declaration keyword
/// (taking along the `@annotation` and `///` lines right above it), and
/// always past `current` so that parsing makes progress.
fn recovery_point(text: &str, error_at: usize, current: usize) -> Option<usize> {
    // Lines before the error's own line can never be resumed at.
    let error_at = crate::source::floor_char_boundary(text, error_at);
    let first_line = text[..error_at].rfind('\n').map_or(0, |i| i + 1);
    let line_starts = std::iter::once(first_line).chain(
        text[first_line..]
            .match_indices('\n')
            .map(|(i, _)| first_line + i + 1)
            .filter(|&i| i < text.len()),
    );
    let mut previous_lines: Vec<usize> = Vec::new();
    for start in line_starts {
        let line = &text[start..];
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let first = start + indent;
        let line = &text[first..];
        if first >= error_at && first > current && starts_decl(line) {
            let mut resume = first;
            for &above in previous_lines.iter().rev() {
                let above_text = text[above..].trim_start_matches([' ', '\t']);
                let is_prefix = above_text.starts_with('@') || above_text.starts_with("///");
                if is_prefix && above > error_at && above > current {
                    resume = above;
                } else {
                    break;
                }
            }
            return Some(resume);
        }
        previous_lines.push(start);
    }
    None
}

fn starts_decl(line: &str) -> bool {
    DECL_KEYWORDS.iter().any(|keyword| {
        line.strip_prefix(keyword).is_some_and(|rest| {
            rest.chars()
                .next()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Belt and braces: even without the prescan, pest's own stack guard
    /// turns very deep input into an error instead of a stack overflow.
    #[test]
    fn pest_alone_survives_ten_thousand_levels() {
        let text = format!(
            "struct Deep {{ 1: {}u32{} x; }}",
            "list<".repeat(10_000),
            ">".repeat(10_000)
        );
        let outcome = std::thread::spawn(move || IdlParser::parse(Rule::decl_step, &text).is_ok())
            .join()
            .expect("no stack overflow");
        assert!(!outcome, "pest should give up on 10,000 levels");
    }

    #[test]
    fn recovery_resumes_at_the_next_declaration_line() {
        let text = "struct A { 1 }\n/// docs\n@ann\nstruct B {}\n";
        let error_at = text.find('}').unwrap_or(0);
        let resume = recovery_point(text, error_at, 0);
        assert_eq!(resume, text.find("/// docs"));
        assert_eq!(recovery_point(text, text.len(), 0), None);
    }
}
