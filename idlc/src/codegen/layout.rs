//! Text output: a line writer for the generated module, and the layout of
//! the few constructs whose line breaks depend on the length of the names
//! in them (signatures, long types, calls, struct literals, sums).
//!
//! The layout is prettyplease's (the formatter of generated Rust that most
//! code generators use): a group is written on one line when it fits in the
//! margin, else broken with one item per line, a trailing comma, and the
//! closing delimiter back at the group's indent. The tests format every
//! snapshot with prettyplease and compare, so the text written here is
//! already formatted without a parse and print round trip.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The margin lines are laid out for.
const MARGIN: usize = 89;

/// The room a line always has after its indentation, however deep.
const MIN_SPACE: usize = 60;

/// The indentation step.
pub(super) const INDENT: usize = 4;

/// The last column a line that starts at `indent` may reach.
fn limit(indent: usize) -> usize {
    indent + MARGIN.saturating_sub(indent).max(MIN_SPACE)
}

/// A piece of code that is written flat when it fits, else broken. Its
/// text is borrowed where it can be (fixed text, names from the table).
#[derive(Debug, Clone)]
pub(super) enum Doc<'a> {
    /// Text that is never broken.
    Text(Cow<'a, str>),
    /// `head` `open` items `close`: flat `Vec<String>`, or broken with one
    /// item per line and a trailing comma.
    List {
        head: Cow<'a, str>,
        open: &'static str,
        items: Vec<Doc<'a>>,
        close: &'static str,
    },
    /// Pieces one after the other.
    Cat(Vec<Doc<'a>>),
}

impl<'a> Doc<'a> {
    /// Unbreakable text.
    pub(super) fn text(text: impl Into<Cow<'a, str>>) -> Self {
        Doc::Text(text.into())
    }

    /// A delimited list.
    pub(super) fn list(
        head: impl Into<Cow<'a, str>>,
        open: &'static str,
        items: Vec<Doc<'a>>,
        close: &'static str,
    ) -> Self {
        Doc::List {
            head: head.into(),
            open,
            items,
            close,
        }
    }

    fn write_flat(&self, out: &mut String) {
        match self {
            Doc::Text(text) => out.push_str(text),
            Doc::List {
                head,
                open,
                items,
                close,
            } => {
                out.push_str(head);
                out.push_str(open);
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_flat(out);
                }
                out.push_str(close);
            }
            Doc::Cat(parts) => parts.iter().for_each(|part| part.write_flat(out)),
        }
    }

    fn flat_len(&self) -> usize {
        match self {
            Doc::Text(text) => text.len(),
            Doc::List {
                head,
                open,
                items,
                close,
            } => {
                head.len()
                    + open.len()
                    + close.len()
                    + items.iter().map(Doc::flat_len).sum::<usize>()
                    + 2 * items.len().saturating_sub(1)
            }
            Doc::Cat(parts) => parts.iter().map(Doc::flat_len).sum(),
        }
    }
}

/// Appends `n` spaces.
fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Lines being laid out, written straight into the output: the current
/// line is `out[start..]`.
struct Lines<'a> {
    out: &'a mut String,
    /// Where the current line starts in `out`.
    start: usize,
    /// The indentation the current line started with.
    indent: usize,
}

impl Lines<'_> {
    fn newline(&mut self, indent: usize) {
        self.out.push('\n');
        self.start = self.out.len();
        pad(self.out, indent);
        self.indent = indent;
    }

    /// Whether `len` more characters (and `tail` after them) fit on the
    /// current line.
    fn fits(&self, len: usize, tail: usize) -> bool {
        self.out.len() - self.start + len + tail <= limit(self.indent)
    }
}

/// Lays `doc` out from the current position, with `tail` characters that
/// must follow it on its last line.
fn layout(doc: &Doc, lines: &mut Lines<'_>, indent: usize, tail: usize) {
    match doc {
        Doc::Text(text) => lines.out.push_str(text),
        Doc::Cat(parts) => {
            // What follows each part on the line: the parts after it.
            let mut rest: usize = parts.iter().map(Doc::flat_len).sum();
            for part in parts {
                rest -= part.flat_len();
                layout(part, lines, indent, rest + tail);
            }
        }
        Doc::List {
            head,
            open,
            items,
            close,
        } => {
            if items.is_empty() || lines.fits(doc.flat_len(), tail) {
                doc.write_flat(lines.out);
                return;
            }
            lines.out.push_str(head);
            lines.out.push_str(open);
            for (i, item) in items.iter().enumerate() {
                lines.newline(indent + INDENT);
                // The last item's comma is written only when the list
                // breaks: it does not count for the item's fit.
                let comma = usize::from(i + 1 < items.len());
                layout(item, lines, indent + INDENT, comma);
                lines.out.push(',');
            }
            lines.newline(indent);
            lines.out.push_str(close);
        }
    }
}

/// Writes `doc` laid out at `indent`, `tail` appended, as whole lines
/// (indented, each ending in a newline).
fn write_laid_out(out: &mut String, doc: &Doc, indent: usize, tail: &str) {
    let start = out.len();
    pad(out, indent);
    let mut lines = Lines { out, start, indent };
    layout(doc, &mut lines, indent, tail.len());
    out.push_str(tail);
    out.push('\n');
}

/// Whether `len` characters fit on one line at `indent`.
fn fits_len(indent: usize, len: usize) -> bool {
    indent + len <= limit(indent)
}

/// The generated module, written line by line.
pub(super) struct Writer {
    out: String,
    indent: usize,
}

impl Writer {
    /// An empty module.
    pub(super) fn new() -> Self {
        Writer {
            out: String::with_capacity(4096),
            indent: 0,
        }
    }

    /// The text written.
    pub(super) fn finish(self) -> String {
        self.out
    }

    /// One line at the current indentation.
    pub(super) fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref();
        if text.is_empty() {
            self.out.push('\n');
            return;
        }
        pad(&mut self.out, self.indent);
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// One line built with `format_args!`.
    pub(super) fn line_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        pad(&mut self.out, self.indent);
        let _ = self.out.write_fmt(args);
        self.out.push('\n');
    }

    /// A blank line between items (never two, never at the start of a
    /// block).
    pub(super) fn blank(&mut self) {
        if !(self.out.is_empty() || self.out.ends_with("\n\n") || self.out.ends_with("{\n")) {
            self.out.push('\n');
        }
    }

    /// `text {` and one level deeper. An `impl Trait for Type` header that
    /// does not fit is broken before `for`.
    pub(super) fn open(&mut self, text: impl AsRef<str>) {
        self.header(text.as_ref(), " {");
        self.indent += INDENT;
    }

    fn header(&mut self, text: &str, end: &str) {
        if let (true, Some(split)) = (
            !fits_len(self.indent, text.len() + end.len()),
            impl_for_split(text),
        ) {
            self.line(&text[..split]);
            self.line_fmt(format_args!("{}{end}", &text[split + 1..]));
        } else {
            self.line_fmt(format_args!("{text}{end}"));
        }
    }

    /// One level out, and `}` followed by `suffix` (`,`, `;` or nothing).
    pub(super) fn close(&mut self, suffix: &str) {
        self.indent -= INDENT;
        self.line_fmt(format_args!("}}{suffix}"));
    }

    /// `doc` laid out at the current indentation, `tail` appended.
    pub(super) fn doc(&mut self, doc: &Doc, tail: &str) {
        write_laid_out(&mut self.out, doc, self.indent, tail);
    }

    /// `doc {` (laid out) and one level deeper.
    pub(super) fn open_doc(&mut self, doc: &Doc) {
        self.doc(doc, " {");
        self.indent += INDENT;
    }

    /// An attribute with a list, `#[allow(a, b)]`: flat when it fits, else
    /// one item per line (attributes take no trailing comma).
    pub(super) fn attribute_list(&mut self, name: &str, items: &[&str]) {
        let flat_len = "#[(".len()
            + name.len()
            + items.iter().map(|item| item.len()).sum::<usize>()
            + 2 * items.len().saturating_sub(1)
            + ")]".len();
        if fits_len(self.indent, flat_len) {
            self.line_fmt(format_args!("#[{name}({})]", items.join(", ")));
            return;
        }
        self.line_fmt(format_args!("#[{name}("));
        for (i, item) in items.iter().enumerate() {
            let comma = if i + 1 < items.len() { "," } else { "" };
            self.line_fmt(format_args!("    {item}{comma}"));
        }
        self.line(")]");
    }

    /// A struct literal `Path { a, b: c }`: flat when it is short (35
    /// characters at most) and fits, else one field per line.
    pub(super) fn struct_literal(&mut self, path: &str, fields: &[String], tail: &str) {
        let flat = if fields.is_empty() {
            format!("{path} {{}}")
        } else {
            format!("{path} {{ {} }}", fields.join(", "))
        };
        if fields.is_empty() || (flat.len() <= 35 && fits_len(self.indent, flat.len() + tail.len()))
        {
            self.line_fmt(format_args!("{flat}{tail}"));
            return;
        }
        self.line_fmt(format_args!("{path} {{"));
        for field in fields {
            self.line_fmt(format_args!("    {field},"));
        }
        self.line_fmt(format_args!("}}{tail}"));
    }

    /// A method call on a receiver, `receiver.method(args)` with an
    /// optional `.await`: flat when it fits, else a chain with one segment
    /// per line.
    pub(super) fn method_call(
        &mut self,
        receiver: &str,
        method: &str,
        args: Vec<Doc<'_>>,
        awaited: bool,
        tail: &str,
    ) {
        let call = Doc::list(format!(".{method}"), "(", args, ")");
        let await_text = if awaited { ".await" } else { "" };
        let flat_len = receiver.len() + call.flat_len() + await_text.len() + tail.len();
        if fits_len(self.indent, flat_len) {
            pad(&mut self.out, self.indent);
            self.out.push_str(receiver);
            call.write_flat(&mut self.out);
            self.out.push_str(await_text);
            self.out.push_str(tail);
            self.out.push('\n');
            return;
        }
        self.line(receiver);
        let inner = self.indent + INDENT;
        if awaited {
            write_laid_out(&mut self.out, &call, inner, "");
            pad(&mut self.out, inner);
            self.out.push_str(".await");
            self.out.push_str(tail);
            self.out.push('\n');
        } else {
            write_laid_out(&mut self.out, &call, inner, tail);
        }
    }

    /// A macro invocation item, `path!(tokens);`: on one line when it
    /// fits, else the tokens on lines of their own, filled as far as each
    /// line goes (prettyplease's layout of macro arguments).
    pub(super) fn macro_call(&mut self, path: &str, tokens: &[Tok]) {
        let spaces = spaced(tokens);
        let indent = self.indent;
        let out = &mut self.out;
        let flat_len = tokens
            .iter()
            .zip(&spaces)
            .map(|(token, space)| usize::from(*space) + token.text().len())
            .sum::<usize>();
        // `path!(` .. `);`
        if indent + path.len() + 2 + flat_len + 2 <= limit(indent) {
            pad(out, indent);
            out.push_str(path);
            out.push_str("!(");
            for (token, space) in tokens.iter().zip(&spaces) {
                if *space {
                    out.push(' ');
                }
                out.push_str(token.text());
            }
            out.push_str(");\n");
            return;
        }
        pad(out, indent);
        out.push_str(path);
        out.push_str("!(\n");
        let inner = indent + INDENT;
        let mut line_start = out.len();
        pad(out, inner);
        let mut i = 0;
        while i < tokens.len() {
            // The chunk up to the next possible break.
            let mut end = i + 1;
            while end < tokens.len() && !spaces[end] {
                end += 1;
            }
            let chunk = &tokens[i..end];
            let chunk_len: usize = chunk.iter().map(|token| token.text().len()).sum();
            if i > 0 && spaces[i] {
                if out.len() - line_start + 1 + chunk_len <= limit(inner) {
                    out.push(' ');
                } else {
                    out.push('\n');
                    line_start = out.len();
                    pad(out, inner);
                }
            }
            chunk.iter().for_each(|token| out.push_str(token.text()));
            i = end;
        }
        out.push('\n');
        pad(out, indent);
        out.push_str(");\n");
    }
}

/// Where an `impl Trait for Type` header breaks: the space before `for`
/// (outside any `<..>`).
fn impl_for_split(text: &str) -> Option<usize> {
    if !text.starts_with("impl") {
        return None;
    }
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ' ' if depth == 0 && text[i..].starts_with(" for ") => return Some(i),
            _ => {}
        }
    }
    None
}

/// A token of a macro invocation's arguments (the kinds generated code
/// writes there).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// An identifier or a literal.
    Word(String),
    /// `,`
    Comma,
    /// `;`
    Semi,
    /// `=`
    Eq,
    /// `-` (of a negative number)
    Minus,
    /// `::`
    PathSep,
    /// `<` (of `<f64>::NAN`)
    Lt,
    /// `>` right before `::`
    GtJoint,
    /// `(`
    Open,
    /// `)`
    Close,
}

impl Tok {
    fn text(&self) -> &str {
        match self {
            Tok::Word(word) => word,
            Tok::Comma => ",",
            Tok::Semi => ";",
            Tok::Eq => "=",
            Tok::Minus => "-",
            Tok::PathSep => "::",
            Tok::Lt => "<",
            Tok::GtJoint => ">",
            Tok::Open => "(",
            Tok::Close => ")",
        }
    }
}

/// A path (`super::Status::Active`) as tokens.
pub(super) fn path_tokens(path: &str, out: &mut Vec<Tok>) {
    for (i, segment) in path.split("::").enumerate() {
        if i > 0 {
            out.push(Tok::PathSep);
        }
        out.push(Tok::Word(segment.to_owned()));
    }
}

/// Which tokens of a macro invocation's arguments have a space (a
/// possible line break) before them, as prettyplease spaces the tokens of
/// macro calls it cannot parse: identifiers and literals apart, `,` and
/// `;` attached, `::` tight.
fn spaced(tokens: &[Tok]) -> Vec<bool> {
    let mut after_path_sep = false;
    let mut after_word = false;
    // The first token, and the first inside `(..)`, take no space.
    let mut previous_joint = true;
    tokens
        .iter()
        .map(|token| {
            let needs_space = match token {
                Tok::Word(_) => !after_path_sep,
                Tok::Comma | Tok::Semi | Tok::Close => false,
                Tok::PathSep => !after_word,
                Tok::Open => !after_word,
                Tok::Eq | Tok::Minus | Tok::Lt | Tok::GtJoint => true,
            };
            let space = needs_space && !previous_joint;
            after_path_sep = *token == Tok::PathSep;
            after_word = matches!(token, Tok::Word(_));
            previous_joint = matches!(token, Tok::GtJoint | Tok::Open);
            space
        })
        .collect()
}
