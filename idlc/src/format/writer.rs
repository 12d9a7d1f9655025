//! The output side of the formatter: lines, indentation, spaces between
//! tokens, blank lines, and the comments that travel with each token.
//!
//! The printer decides the layout (which token starts a line, where a space
//! goes); the writer places every comment so that it keeps its meaning on
//! the next run: a trailing comment stays on its token's line, a leading
//! comment gets a line of its own. When a `//` comment ends a line in the
//! middle of a construct, the rest continues on the next line, indented one
//! more step.

use super::tree::Token;
use super::trivia::{Comment, Trivia};

/// Spaces per indentation level.
const INDENT: usize = 2;

/// Whether blank lines before an item are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blank {
    /// Never a blank line before it (the first item of a body).
    None,
    /// A blank line if the source had one (members of a body).
    Keep,
    /// Always exactly one blank line (top-level declarations).
    One,
}

/// Builds the formatted text.
#[derive(Debug)]
pub(super) struct Writer<'t, 'a> {
    tokens: &'t [Token<'a>],
    trivia: &'t [Trivia],
    out: String,
    /// Indentation level of the current statement.
    indent: usize,
    /// Nothing has been written on the current line yet.
    line_start: bool,
    /// The current statement broke onto another line: indent one more.
    continuation: bool,
    /// A `//` comment ended the current line: the next token starts a new
    /// one.
    break_pending: bool,
    /// The token whose leading comments were already written by
    /// [`Writer::item_start`].
    leading_done: Option<usize>,
    /// Where in `out` the last token's text ended (before its trailing
    /// comments), for [`Writer::append_to_last_token`].
    last_token_end: usize,
    /// Comments are left out (a scratch writer that measures a layout).
    without_comments: bool,
    /// Comments that go on lines of their own before whatever comes next:
    /// at the statement's indentation when a statement starts next, on
    /// continuation lines when the current statement goes on.
    pending: Vec<&'t Comment>,
}

impl<'t, 'a> Writer<'t, 'a> {
    /// A writer for the tokens of one file and their trivia.
    pub fn new(tokens: &'t [Token<'a>], trivia: &'t [Trivia]) -> Self {
        Writer {
            tokens,
            trivia,
            out: String::new(),
            indent: 0,
            line_start: true,
            continuation: false,
            break_pending: false,
            leading_done: None,
            last_token_end: 0,
            without_comments: false,
            pending: Vec::new(),
        }
    }

    /// An empty writer at the same indentation that leaves comments out
    /// (to measure the width of a layout).
    pub fn scratch(&self) -> Writer<'t, 'a> {
        let mut scratch = Writer::new(self.tokens, self.trivia);
        scratch.indent = self.indent;
        scratch.without_comments = true;
        scratch
    }

    /// The text, ending with exactly one line break (or empty).
    pub fn finish(mut self) -> String {
        self.line();
        while self.out.ends_with("\n\n") {
            self.out.pop();
        }
        self.out
    }

    /// The widest line written so far, in characters.
    pub fn max_width(&self) -> usize {
        self.out
            .lines()
            .map(|line| line.chars().count())
            .max()
            .unwrap_or(0)
    }

    /// One level deeper.
    pub fn indent(&mut self) {
        self.indent += 1;
    }

    /// One level shallower.
    pub fn dedent(&mut self) {
        self.indent = self.indent.saturating_sub(1);
    }

    /// The text of a token.
    pub fn text(&self, token: usize) -> &'a str {
        self.tokens.get(token).map_or("", |t| t.text)
    }

    fn trivia_of(&self, token: usize) -> &'t Trivia {
        static EMPTY: Trivia = Trivia {
            leading: Vec::new(),
            trailing: Vec::new(),
            blank_before: false,
        };
        match self.trivia.get(token) {
            Some(trivia) if !self.without_comments => trivia,
            _ => &EMPTY,
        }
    }

    /// Whether any comment lies strictly between tokens `from` and `to`.
    pub fn comments_between(&self, from: usize, to: usize) -> bool {
        (from..to).any(|i| !self.trivia_of(i).trailing.is_empty())
            || (from + 1..=to).any(|i| !self.trivia_of(i).leading.is_empty())
    }

    /// Ends the current line (if anything is on it): the next token starts
    /// a statement.
    pub fn line(&mut self) {
        if !self.line_start {
            self.out.push('\n');
            self.line_start = true;
        }
        self.continuation = false;
        self.break_pending = false;
        self.flush_pending();
    }

    /// Ends the current line and leaves one blank line (none at the start of
    /// the output).
    fn blank_line(&mut self) {
        self.line();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn write_indent(&mut self) {
        let width = (self.indent + usize::from(self.continuation)) * INDENT;
        self.out.extend(std::iter::repeat_n(' ', width));
    }

    /// Prepares for text: a new line if a `//` comment ended the last one,
    /// indentation at the start of a line, else a space if `space`.
    fn begin_text(&mut self, space: bool) {
        if !self.pending.is_empty() {
            if !self.line_start {
                self.out.push('\n');
                self.line_start = true;
                self.continuation = true;
            }
            self.break_pending = false;
            self.flush_pending();
        }
        if self.break_pending {
            self.out.push('\n');
            self.line_start = true;
            self.continuation = true;
            self.break_pending = false;
        }
        if self.line_start {
            self.write_indent();
            self.line_start = false;
        } else if space {
            self.out.push(' ');
        }
    }

    /// A comment on a line of its own, before whatever is written next.
    fn own_line_comment(&mut self, comment: &'t Comment) {
        self.pending.push(comment);
    }

    /// Writes the pending comments, each on a line of its own (the current
    /// line is empty).
    fn flush_pending(&mut self) {
        for comment in std::mem::take(&mut self.pending) {
            self.comment_line(comment);
        }
    }

    /// Writes a comment on the current (empty) line and ends the line.
    fn comment_line(&mut self, comment: &Comment) {
        self.write_indent();
        self.out.push_str(&comment.text);
        self.out.push('\n');
        self.line_start = true;
    }

    /// A comment after the last token, on its line (or on a line of its
    /// own when a `//` comment or own-line comments came first, which
    /// happens after a dropped token).
    fn trailing_comment(&mut self, comment: &'t Comment) {
        if self.break_pending || !self.pending.is_empty() {
            self.own_line_comment(comment);
            return;
        }
        self.begin_text(true);
        self.out.push_str(&comment.text);
        if comment.is_line {
            self.break_pending = true;
        }
    }

    fn leading_comments(&mut self, token: usize) {
        if self.leading_done == Some(token) {
            return;
        }
        for comment in &self.trivia_of(token).leading {
            self.own_line_comment(comment);
        }
    }

    fn trailing_comments(&mut self, token: usize) {
        for comment in &self.trivia_of(token).trailing {
            self.trailing_comment(comment);
        }
    }

    /// Starts an item (a declaration, a member of a body, a parameter on a
    /// line of its own, or the comments before a closing `}` or the end of
    /// the file) whose first token is `token`: a new line, the blank line
    /// `blank` asks for, then the token's leading comments, keeping single
    /// blank lines between them. With `closing`, the token itself is a
    /// closing `}` (or the end of input): nothing is written when it has no
    /// comments, and no blank line follows them.
    pub fn item_start(&mut self, token: usize, blank: Blank, closing: bool) {
        self.line();
        let trivia = self.trivia_of(token);
        if closing && trivia.leading.is_empty() {
            return;
        }
        let source_blank = trivia
            .leading
            .first()
            .map_or(trivia.blank_before, |c| c.blank_before);
        match blank {
            Blank::One => self.blank_line(),
            Blank::Keep if source_blank => self.blank_line(),
            Blank::Keep | Blank::None => {}
        }
        for (i, comment) in trivia.leading.iter().enumerate() {
            if i > 0 && comment.blank_before {
                self.blank_line();
            }
            self.comment_line(comment);
        }
        if !closing && !trivia.leading.is_empty() && trivia.blank_before {
            self.blank_line();
        }
        self.leading_done = Some(token);
    }

    /// Writes a token with its comments; `space`: separated from the token
    /// before it on the same line by a space.
    pub fn token(&mut self, token: usize, space: bool) {
        let text = self.text(token);
        self.token_as(token, text, space);
    }

    /// Writes `text` in place of a token's own text, with the token's
    /// comments.
    pub fn token_as(&mut self, token: usize, text: &str, space: bool) {
        self.leading_comments(token);
        self.begin_text(space);
        self.out.push_str(text);
        self.last_token_end = self.out.len();
        self.trailing_comments(token);
    }

    /// Writes a token without its comments (they were written where the
    /// token stood, by [`Writer::comments_on_own_lines`]).
    pub fn bare(&mut self, token: usize, space: bool) {
        self.begin_text(space);
        self.out.push_str(self.text(token));
        self.last_token_end = self.out.len();
    }

    /// Writes the comments of a token that is moved elsewhere (and written
    /// with [`Writer::bare`]) on lines of their own, here.
    pub fn comments_on_own_lines(&mut self, token: usize) {
        self.leading_comments(token);
        for comment in &self.trivia_of(token).trailing {
            self.own_line_comment(comment);
        }
    }

    /// Drops a token (a trailing comma, empty parentheses) but keeps its
    /// comments where it stood.
    pub fn skip(&mut self, token: usize) {
        self.leading_comments(token);
        self.trailing_comments(token);
    }

    /// Writes `text` right after the last token, before its trailing
    /// comments (a comma the layout adds after a parameter).
    pub fn append_to_last_token(&mut self, text: &str) {
        let at = self.last_token_end.min(self.out.len());
        if self.out.is_char_boundary(at) {
            self.out.insert_str(at, text);
            self.last_token_end = at + text.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(text: &str) -> Comment {
        Comment {
            text: text.to_owned(),
            is_line: text.starts_with("//"),
            blank_before: false,
        }
    }

    #[test]
    fn a_line_comment_in_the_middle_continues_on_the_next_line() {
        let tokens = [
            Token {
                text: "a",
                start: 0,
                end: 1,
            },
            Token {
                text: "b",
                start: 2,
                end: 3,
            },
        ];
        let mut trivia = vec![Trivia::default(); 2];
        trivia[0].trailing.push(comment("// x"));
        let mut w = Writer::new(&tokens, &trivia);
        w.token(0, false);
        w.token(1, true);
        w.append_to_last_token(",");
        assert_eq!(w.finish(), "a // x\n  b,\n");
    }

    #[test]
    fn blank_lines_are_single_and_never_first() {
        let tokens = [Token {
            text: "a",
            start: 0,
            end: 1,
        }];
        let trivia = vec![Trivia {
            leading: vec![comment("// c")],
            trailing: Vec::new(),
            blank_before: true,
        }];
        let mut w = Writer::new(&tokens, &trivia);
        w.item_start(0, Blank::One, false);
        w.token(0, false);
        assert_eq!(w.finish(), "// c\n\na\n");
    }
}
