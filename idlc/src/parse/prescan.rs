//! A linear scan before parsing that rejects input the recursive parser
//! must not see: types nested deeper than [`MAX_NESTING`] (so neither pest
//! nor the AST builder can overflow the stack) and unterminated block
//! comments.

use crate::diagnostic::DiagnosticKind;
use crate::source::span;

/// The deepest `list<..>` / `map<..>` nesting accepted.
pub const MAX_NESTING: usize = 64;

/// Scans `text`; an error means the file must not be parsed.
pub fn prescan(text: &str) -> Result<(), DiagnosticKind> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = find_byte(bytes, i, b'\n');
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => match find_seq(bytes, i + 2, b"*/") {
                Some(end) => i = end + 2,
                None => {
                    return Err(DiagnosticKind::Syntax {
                        message: "unterminated block comment".to_owned(),
                        label: "comment starts here".to_owned(),
                        span: span(i, i + 2),
                        help: Some("close the comment with `*/`".to_owned()),
                    });
                }
            },
            b'"' => i = skip_string(bytes, i + 1),
            b'<' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(DiagnosticKind::NestingTooDeep {
                        max: MAX_NESTING,
                        span: span(i, i + 1),
                    });
                }
                i += 1;
            }
            b'>' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            // Types never contain these, so an unclosed `<` ends here.
            b';' | b'{' | b'}' | b'(' | b')' => {
                depth = 0;
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The index of the next `needle` at or after `from`, or the end.
fn find_byte(bytes: &[u8], from: usize, needle: u8) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == needle)
        .map_or(bytes.len(), |p| from + p)
}

fn find_seq(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|p| from + p)
}

/// Skips a string body starting after its opening quote; stops after the
/// closing quote, or at the end of the line (the parser reports that).
fn skip_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_limit_and_rejects_one_more() {
        let ok = format!(
            "{}u32{}",
            "list<".repeat(MAX_NESTING),
            ">".repeat(MAX_NESTING)
        );
        assert!(prescan(&ok).is_ok());
        let deep = format!("{}u32", "list<".repeat(MAX_NESTING + 1));
        assert!(matches!(
            prescan(&deep),
            Err(DiagnosticKind::NestingTooDeep { .. })
        ));
    }

    #[test]
    fn ignores_comments_and_strings() {
        let text = format!(
            "// {}\n\"{}\" /* {} */",
            "<".repeat(100),
            "<".repeat(100),
            "<".repeat(100)
        );
        assert!(prescan(&text).is_ok());
    }

    #[test]
    fn statements_reset_depth() {
        let text = "1: list<u32 a;\n".repeat(100);
        assert!(prescan(&text).is_ok());
    }

    #[test]
    fn unterminated_block_comment() {
        assert!(matches!(
            prescan("struct A {} /* open"),
            Err(DiagnosticKind::Syntax { .. })
        ));
    }
}
