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

/// A piece of code that is written flat when it fits, else broken.
#[derive(Debug, Clone)]
pub(super) enum Doc {
    /// Text that is never broken.
    Text(String),
    /// `head` `open` items `close`: flat `Vec<String>`, or broken with one
    /// item per line and a trailing comma.
    List {
        head: String,
        open: &'static str,
        items: Vec<Doc>,
        close: &'static str,
    },
    /// Pieces one after the other.
    Cat(Vec<Doc>),
}

impl Doc {
    /// Unbreakable text.
    pub(super) fn text(text: impl Into<String>) -> Doc {
        Doc::Text(text.into())
    }

    /// A delimited list.
    pub(super) fn list(
        head: impl Into<String>,
        open: &'static str,
        items: Vec<Doc>,
        close: &'static str,
    ) -> Doc {
        Doc::List {
            head: head.into(),
            open,
            items,
            close,
        }
    }

    /// The text when nothing breaks.
    pub(super) fn flat(&self) -> String {
        let mut out = String::new();
        self.write_flat(&mut out);
        out
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

/// Lines being laid out: the finished ones and the one being written.
struct Lines {
    done: Vec<String>,
    current: String,
    /// The indentation the current line started with.
    indent: usize,
}

impl Lines {
    fn newline(&mut self, indent: usize) {
        self.done.push(std::mem::take(&mut self.current));
        self.current = " ".repeat(indent);
        self.indent = indent;
    }

    /// Whether `len` more characters (and `tail` after them) fit on the
    /// current line.
    fn fits(&self, len: usize, tail: usize) -> bool {
        self.current.len() + len + tail <= limit(self.indent)
    }
}

/// Lays `doc` out from the current position, with `tail` characters that
/// must follow it on its last line.
fn layout(doc: &Doc, lines: &mut Lines, indent: usize, tail: usize) {
    match doc {
        Doc::Text(text) => lines.current.push_str(text),
        Doc::Cat(parts) => {
            for (i, part) in parts.iter().enumerate() {
                let rest: usize = parts[i + 1..].iter().map(Doc::flat_len).sum();
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
                doc.write_flat(&mut lines.current);
                return;
            }
            lines.current.push_str(head);
            lines.current.push_str(open);
            for (i, item) in items.iter().enumerate() {
                lines.newline(indent + INDENT);
                // The last item's comma is written only when the list
                // breaks: it does not count for the item's fit.
                let comma = usize::from(i + 1 < items.len());
                layout(item, lines, indent + INDENT, comma);
                lines.current.push(',');
            }
            lines.newline(indent);
            lines.current.push_str(close);
        }
    }
}

/// `doc` laid out at `indent`, `tail` appended: its lines (indented).
pub(super) fn lay_out(doc: &Doc, indent: usize, tail: &str) -> Vec<String> {
    let mut lines = Lines {
        done: Vec::new(),
        current: " ".repeat(indent),
        indent,
    };
    layout(doc, &mut lines, indent, tail.len());
    lines.current.push_str(tail);
    lines.done.push(lines.current);
    lines.done
}

/// Whether `text` fits on one line at `indent`.
pub(super) fn fits(indent: usize, text: &str) -> bool {
    indent + text.len() <= limit(indent)
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

    /// The current indentation.
    pub(super) fn indent(&self) -> usize {
        self.indent
    }

    /// One line at the current indentation.
    pub(super) fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref();
        if text.is_empty() {
            self.out.push('\n');
            return;
        }
        for _ in 0..self.indent {
            self.out.push(' ');
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// One line built with `format_args!`.
    pub(super) fn line_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        for _ in 0..self.indent {
            self.out.push(' ');
        }
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
            !fits(self.indent, &format!("{text}{end}")),
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
        for line in lay_out(doc, self.indent, tail) {
            self.out.push_str(&line);
            self.out.push('\n');
        }
    }

    /// `doc {` (laid out) and one level deeper.
    pub(super) fn open_doc(&mut self, doc: &Doc) {
        self.doc(doc, " {");
        self.indent += INDENT;
    }

    /// Lines already laid out (indented).
    pub(super) fn lines(&mut self, lines: Vec<String>) {
        for line in lines {
            self.out.push_str(&line);
            self.out.push('\n');
        }
    }
}

/// An attribute with a list, `#[allow(a, b)]`: flat when it fits, else one
/// item per line (attributes take no trailing comma).
pub(super) fn attribute_list(indent: usize, name: &str, items: &[&str]) -> Vec<String> {
    let flat = format!("#[{name}({})]", items.join(", "));
    let pad = " ".repeat(indent);
    if fits(indent, &flat) {
        return vec![format!("{pad}{flat}")];
    }
    let mut lines = vec![format!("{pad}#[{name}(")];
    for (i, item) in items.iter().enumerate() {
        let comma = if i + 1 < items.len() { "," } else { "" };
        lines.push(format!("{pad}    {item}{comma}"));
    }
    lines.push(format!("{pad})]"));
    lines
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

/// A struct literal `Path { a, b: c }`: flat when it is short (35
/// characters at most) and fits, else one field per line.
pub(super) fn struct_literal(
    indent: usize,
    path: &str,
    fields: &[String],
    tail: &str,
) -> Vec<String> {
    let flat = if fields.is_empty() {
        format!("{path} {{}}")
    } else {
        format!("{path} {{ {} }}", fields.join(", "))
    };
    if fields.is_empty() || (flat.len() <= 35 && fits(indent, &format!("{flat}{tail}"))) {
        return vec![format!("{}{flat}{tail}", " ".repeat(indent))];
    }
    let pad = " ".repeat(indent);
    let mut lines = vec![format!("{pad}{path} {{")];
    for field in fields {
        lines.push(format!("{pad}    {field},"));
    }
    lines.push(format!("{pad}}}{tail}"));
    lines
}

/// A method call on a receiver, `receiver.method(args)` with an optional
/// `.await`: flat when it fits, else a chain with one segment per line.
pub(super) fn method_call(
    indent: usize,
    receiver: &str,
    method: &str,
    args: Vec<Doc>,
    awaited: bool,
    tail: &str,
) -> Vec<String> {
    let call = Doc::list(format!(".{method}"), "(", args, ")");
    let await_text = if awaited { ".await" } else { "" };
    let flat = format!("{receiver}{}{await_text}{tail}", call.flat());
    if fits(indent, &flat) {
        return vec![format!("{}{flat}", " ".repeat(indent))];
    }
    let mut lines = vec![format!("{}{receiver}", " ".repeat(indent))];
    let inner = indent + INDENT;
    if awaited {
        lines.extend(lay_out(&call, inner, ""));
        lines.push(format!("{}.await{tail}", " ".repeat(inner)));
    } else {
        lines.extend(lay_out(&call, inner, tail));
    }
    lines
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

/// A macro invocation item, `path!(tokens);`: on one line when it fits,
/// else the tokens on lines of their own, filled as far as each line goes
/// (prettyplease's layout of macro arguments).
pub(super) fn macro_call(indent: usize, path: &str, tokens: &[Tok]) -> Vec<String> {
    let spaces = spaced(tokens);
    let mut flat = String::new();
    for (token, space) in tokens.iter().zip(&spaces) {
        if *space {
            flat.push(' ');
        }
        flat.push_str(token.text());
    }
    let pad = " ".repeat(indent);
    let open = format!("{path}!(");
    if indent + open.len() + flat.len() + 2 <= limit(indent) {
        return vec![format!("{pad}{open}{flat});")];
    }
    let inner = indent + INDENT;
    let mut lines = vec![format!("{pad}{open}")];
    let mut current = " ".repeat(inner);
    let mut i = 0;
    while i < tokens.len() {
        // The chunk up to the next possible break.
        let mut end = i + 1;
        while end < tokens.len() && !spaces[end] {
            end += 1;
        }
        let chunk: String = tokens[i..end].iter().map(Tok::text).collect();
        if i > 0 && spaces[i] {
            if current.len() + 1 + chunk.len() <= limit(inner) {
                current.push(' ');
            } else {
                lines.push(std::mem::take(&mut current));
                current = " ".repeat(inner);
            }
        }
        current.push_str(&chunk);
        i = end;
    }
    lines.push(current);
    lines.push(format!("{pad});"));
    lines
}
