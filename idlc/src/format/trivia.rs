//! Comments between tokens, and which token each belongs to.
//!
//! The gap between two tokens holds only whitespace and comments (the
//! grammar's silent `WHITESPACE` and `COMMENT` rules). A comment that starts
//! on the line of the token before it *trails* that token
//! (`1: u32 x; // note`); every other comment *leads* the token after it
//! (own-line comments above a field, and the comments at the end of a body
//! or of the file, which lead `}` or the end of input).

use super::tree::Token;

/// One comment, normalized: trailing whitespace removed from each line, and
/// `\r\n` line ends made `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Comment {
    /// The text, `//` or `/*` included.
    pub text: String,
    /// A `//` comment: it runs to the end of the line, so nothing can follow
    /// it on that line.
    pub is_line: bool,
    /// A blank line (two or more line breaks) comes right before it.
    pub blank_before: bool,
}

/// The comments around one token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Trivia {
    /// Comments on lines of their own before the token, in order.
    pub leading: Vec<Comment>,
    /// Comments after the token on its line, in order.
    pub trailing: Vec<Comment>,
    /// A blank line comes right before the token (after its leading
    /// comments, if any).
    pub blank_before: bool,
}

/// Something other than whitespace or a comment between two tokens: the
/// token list does not cover the text (a formatter bug, never user error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StrayText {
    /// Where.
    pub offset: usize,
}

/// The trivia of every token of `tokens` (which must be in source order and
/// cover every non-comment character of `text`).
pub(super) fn scan(text: &str, tokens: &[Token<'_>]) -> Result<Vec<Trivia>, StrayText> {
    let mut trivia = vec![Trivia::default(); tokens.len()];
    let mut previous_end = 0usize;
    for (index, token) in tokens.iter().enumerate() {
        let gap_start = previous_end.min(token.start);
        let gap = text
            .get(gap_start..token.start)
            .ok_or(StrayText { offset: gap_start })?;
        let (items, newlines_after) = gap_items(gap).map_err(|at| StrayText {
            offset: gap_start + at,
        })?;
        let mut items = items.into_iter().peekable();
        if index > 0 {
            // Comments on the previous token's line trail it.
            while let Some((comment, _)) = items.next_if(|(_, newlines)| *newlines == 0) {
                trivia[index - 1].trailing.push(comment);
            }
        }
        let own = &mut trivia[index];
        own.leading = items
            .map(|(mut comment, newlines)| {
                comment.blank_before = newlines >= 2;
                comment
            })
            .collect();
        own.blank_before = newlines_after >= 2;
        previous_end = previous_end.max(token.end);
    }
    Ok(trivia)
}

/// The comments of one gap, each with the number of line breaks before it,
/// and the number of line breaks after the last one. `Err` holds the offset
/// of the first character that is neither whitespace nor comment.
fn gap_items(gap: &str) -> Result<(Vec<(Comment, usize)>, usize), usize> {
    let mut items = Vec::new();
    let mut newlines = 0usize;
    let mut rest = gap;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| {
            if c == '\n' {
                newlines += 1;
            }
            matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{FEFF}')
        });
        rest = trimmed;
        if rest.is_empty() {
            return Ok((items, newlines));
        }
        let at = gap.len() - rest.len();
        let (raw, is_line) = if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            (&rest[..end], true)
        } else if let Some(body) = rest.strip_prefix("/*") {
            let end = body.find("*/").ok_or(at)? + 4;
            (&rest[..end], false)
        } else {
            return Err(at);
        };
        items.push((
            Comment {
                text: normalize(raw),
                is_line,
                blank_before: false,
            },
            newlines,
        ));
        newlines = 0;
        rest = &rest[raw.len()..];
    }
}

/// Removes trailing whitespace from every line and `\r` line ends.
pub(super) fn normalize(comment: &str) -> String {
    let mut out = String::with_capacity(comment.len());
    for (i, line) in comment.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree;

    fn trivia(text: &str) -> (Vec<String>, Vec<Trivia>) {
        let tree = tree::build(text).expect("parses");
        let texts = tree.tokens.iter().map(|t| t.text.to_owned()).collect();
        (
            texts,
            scan(text, &tree.tokens).expect("only comments between tokens"),
        )
    }

    #[test]
    fn same_line_comments_trail_and_others_lead() {
        let text = "// head\n\nstruct A { /* a */ // b\n  // c\n\n  /* d */ 1: u32 x; // e\n  // f\n}\n// end\n";
        let (tokens, trivia) = trivia(text);
        let at = |token: &str| tokens.iter().position(|t| t == token).expect("token");
        let texts = |comments: &[Comment]| -> Vec<String> {
            comments.iter().map(|c| c.text.clone()).collect()
        };
        assert_eq!(texts(&trivia[at("struct")].leading), ["// head"]);
        assert!(trivia[at("struct")].blank_before);
        assert_eq!(texts(&trivia[at("{")].trailing), ["/* a */", "// b"]);
        assert_eq!(texts(&trivia[at("1")].leading), ["// c", "/* d */"]);
        assert!(trivia[at("1")].leading[1].blank_before);
        assert!(!trivia[at("1")].blank_before);
        assert_eq!(texts(&trivia[at(";")].trailing), ["// e"]);
        assert_eq!(texts(&trivia[at("}")].leading), ["// f"]);
        assert_eq!(texts(&trivia[tokens.len() - 1].leading), ["// end"]);
    }

    #[test]
    fn comments_are_normalized() {
        assert_eq!(normalize("/* a  \r\n   b */"), "/* a\n   b */");
        assert_eq!(normalize("// x \r"), "// x");
    }

    #[test]
    fn stray_text_is_reported() {
        let tokens = [Token {
            text: "a",
            start: 4,
            end: 5,
        }];
        assert_eq!(scan("  x a", &tokens), Err(StrayText { offset: 2 }));
    }
}
