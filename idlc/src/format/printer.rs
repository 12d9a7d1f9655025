//! The canonical layout: which token starts a line, where spaces go, how
//! bodies are indented and when a parameter list is written one parameter
//! per line. Comments are placed by the [`Writer`].

use super::tree::{Node, Tree};
use super::writer::{Blank, Writer};
use crate::parse::grammar::Rule;

/// The widest a method signature may be on one line before its parameters
/// are written one per line.
pub(super) const MAX_WIDTH: usize = 100;

/// Prints a whole file.
pub(super) fn print(tree: &Tree<'_>, writer: Writer<'_, '_>) -> String {
    let mut printer = Printer {
        w: writer,
        prev: None,
    };
    let mut previous: Option<Rule> = None;
    for (index, item) in tree.items.iter().enumerate() {
        let Some(first) = item.first_token() else {
            continue;
        };
        if item.is(Rule::EOI) {
            let blank = if index == 0 { Blank::None } else { Blank::Keep };
            printer.w.item_start(first, blank, true);
            continue;
        }
        let blank = match previous {
            None => Blank::None,
            // Runs of imports and of constants are groups.
            Some(rule @ (Rule::import_decl | Rule::const_decl)) if item.is(rule) => Blank::Keep,
            Some(_) => Blank::One,
        };
        printer.w.item_start(first, blank, false);
        printer.declaration(item);
        previous = Some(item.rule);
    }
    printer.w.finish()
}

/// Whether tokens are written as they are or without their comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// With comments.
    Normal,
    /// Without comments: the token was moved, and its comments were written
    /// where it stood.
    Bare,
}

/// How a parameter list is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Params {
    /// `(1: u32 a, 2: u32 b)`.
    Flat,
    /// One parameter per line, each followed by a comma.
    Vertical,
}

struct Printer<'t, 'a> {
    w: Writer<'t, 'a>,
    /// The rule of the last token written (for spacing).
    prev: Option<Rule>,
}

/// Whether a space separates a token of rule `rule` from the token before
/// it on the same line.
fn space_between(prev: Option<Rule>, rule: Rule) -> bool {
    let tight = matches!(
        rule,
        Rule::semi
            | Rule::comma
            | Rule::colon
            | Rule::lparen
            | Rule::rparen
            | Rule::langle
            | Rule::rangle
    ) || matches!(prev, None | Some(Rule::lparen | Rule::langle))
        || (prev == Some(Rule::lbrace) && rule == Rule::rbrace);
    !tight
}

/// The tokens under a node, in order, with their rules (iterative).
fn leaves(node: &Node) -> Vec<(Rule, usize)> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(node) = stack.pop() {
        match node.token {
            Some(token) => out.push((node.rule, token)),
            None => stack.extend(node.children.iter().rev()),
        }
    }
    out
}

/// A `///` line as written canonically: `///`, one space, the text without
/// trailing whitespace (the syntax tree's doc line, unchanged).
fn doc_text(raw: &str) -> String {
    let content = raw.strip_prefix("///").unwrap_or(raw);
    let content = content.strip_prefix(' ').unwrap_or(content).trim_end();
    if content.is_empty() {
        "///".to_owned()
    } else {
        format!("/// {content}")
    }
}

/// Splits the children of an item into its head (doc lines and
/// annotations before the item proper) and the rest.
fn split_head(node: &Node) -> (&[Node], &[Node]) {
    let split = node
        .children
        .iter()
        .position(|c| !c.is(Rule::doc) && !c.is(Rule::annotation))
        .unwrap_or(node.children.len());
    node.children.split_at(split)
}

impl Printer<'_, '_> {
    fn leaf(&mut self, rule: Rule, token: usize, mode: Mode) {
        let space = space_between(self.prev, rule);
        match mode {
            Mode::Normal => self.w.token(token, space),
            Mode::Bare => self.w.bare(token, space),
        }
        self.prev = Some(rule);
    }

    /// Leaves out a token (keeping its comments in `Normal` mode).
    fn drop_leaf(&mut self, token: usize, mode: Mode) {
        if mode == Mode::Normal {
            self.w.skip(token);
        }
    }

    /// Every token of a node, inline.
    fn inline(&mut self, node: &Node, mode: Mode) {
        if node.is(Rule::annotation) {
            self.annotation(node, mode);
            return;
        }
        for (rule, token) in leaves(node) {
            self.leaf(rule, token, mode);
        }
    }

    fn doc(&mut self, node: &Node) {
        let Some(token) = node.token else { return };
        self.w.line();
        let text = doc_text(self.w.text(token));
        self.w.token_as(token, &text, false);
        self.prev = Some(Rule::doc);
    }

    /// `@name` or `@name(key = value, ...)`: empty parentheses and a
    /// trailing comma are left out.
    fn annotation(&mut self, node: &Node, mode: Mode) {
        for child in &node.children {
            if !child.is(Rule::annotation_args) {
                self.inline(child, mode);
                continue;
            }
            let args = &child.children;
            let has_args = args.iter().any(|a| a.is(Rule::annotation_arg));
            for (i, arg) in args.iter().enumerate() {
                let trailing_comma =
                    arg.is(Rule::comma) && args.get(i + 1).is_none_or(|n| n.is(Rule::rparen));
                let empty_parens = !has_args && (arg.is(Rule::lparen) || arg.is(Rule::rparen));
                match arg.token {
                    Some(token) if trailing_comma || empty_parens => self.drop_leaf(token, mode),
                    _ => self.inline(arg, mode),
                }
            }
        }
    }

    /// Doc lines and annotations, each on its own line.
    fn head(&mut self, head: &[Node]) {
        for child in head {
            if child.is(Rule::doc) {
                self.doc(child);
            } else {
                self.w.line();
                self.annotation(child, Mode::Normal);
            }
        }
        self.w.line();
    }

    fn declaration(&mut self, node: &Node) {
        let (head, rest) = split_head(node);
        self.head(head);
        let body_rule = match node.rule {
            Rule::struct_decl => Some(Rule::field),
            Rule::enum_decl => Some(Rule::variant),
            Rule::service_decl => Some(Rule::method),
            _ => None,
        };
        let Some(member_rule) = body_rule else {
            for child in rest {
                self.inline(child, Mode::Normal);
            }
            return;
        };
        let open = rest.iter().position(|c| c.is(Rule::lbrace));
        let close = rest.iter().rposition(|c| c.is(Rule::rbrace));
        let (Some(open), Some(close)) = (open, close.filter(|&close| Some(close) > open)) else {
            // Not the shape of the grammar; print it as it comes.
            for child in rest {
                self.inline(child, Mode::Normal);
            }
            return;
        };
        for child in &rest[..=open] {
            self.inline(child, Mode::Normal);
        }
        let members: Vec<&Node> = rest[open + 1..close]
            .iter()
            .filter(|c| c.is(member_rule))
            .collect();
        let (Some(lbrace), Some(rbrace)) = (rest[open].token, rest[close].token) else {
            return;
        };
        if members.is_empty() && !self.w.comments_between(lbrace, rbrace) {
            self.leaf(Rule::rbrace, rbrace, Mode::Normal);
            return;
        }
        self.w.indent();
        for (i, member) in members.iter().enumerate() {
            let Some(first) = member.first_token() else {
                continue;
            };
            let blank = if i == 0 { Blank::None } else { Blank::Keep };
            self.w.item_start(first, blank, false);
            match member_rule {
                Rule::field => self.member(member, Rule::ident, true),
                Rule::variant => self.member(member, Rule::int_lit, true),
                _ => self.method(member),
            }
        }
        let blank = if members.is_empty() {
            Blank::None
        } else {
            Blank::Keep
        };
        self.w.item_start(rbrace, blank, true);
        self.w.dedent();
        self.w.line();
        self.leaf(Rule::rbrace, rbrace, Mode::Normal);
    }

    /// A field, parameter or enum variant. Annotations written before it
    /// move after its `anchor` (the name, or a variant's value); their
    /// comments stay where they were, on lines of their own. `own_lines`:
    /// the member starts a line (not a parameter of a flat list).
    fn member(&mut self, node: &Node, anchor: Rule, own_lines: bool) {
        let (head, rest) = split_head(node);
        let moved: Vec<&Node> = head.iter().filter(|c| c.is(Rule::annotation)).collect();
        if own_lines {
            for doc in head.iter().filter(|c| c.is(Rule::doc)) {
                self.doc(doc);
            }
            self.w.line();
        }
        for annotation in &moved {
            for (_, token) in leaves(annotation) {
                self.w.comments_on_own_lines(token);
            }
        }
        let mut placed = moved.is_empty();
        for child in rest {
            self.inline(child, Mode::Normal);
            if !placed && child.is(anchor) {
                for annotation in &moved {
                    self.annotation(annotation, Mode::Bare);
                }
                placed = true;
            }
        }
        if !placed {
            for annotation in &moved {
                self.annotation(annotation, Mode::Bare);
            }
        }
    }

    fn method(&mut self, node: &Node) {
        let (head, rest) = split_head(node);
        self.head(head);
        let layout = self.params_layout(rest);
        self.signature(rest, layout);
    }

    /// Vertical when a comment or doc line is inside the parentheses, or
    /// when the flat signature is wider than [`MAX_WIDTH`].
    fn params_layout(&self, signature: &[Node]) -> Params {
        let Some(list) = signature.iter().find(|c| c.is(Rule::param_list)) else {
            return Params::Flat;
        };
        let lparen = signature
            .iter()
            .find(|c| c.is(Rule::lparen))
            .and_then(|c| c.token);
        let rparen = signature
            .iter()
            .find(|c| c.is(Rule::rparen))
            .and_then(|c| c.token);
        let commented = match (lparen, rparen) {
            (Some(open), Some(close)) => self.w.comments_between(open, close),
            _ => false,
        };
        let documented = list
            .children
            .iter()
            .any(|param| param.children.iter().any(|c| c.is(Rule::doc)));
        if commented || documented {
            return Params::Vertical;
        }
        let mut scratch = Printer {
            w: self.w.scratch(),
            prev: None,
        };
        scratch.signature(signature, Params::Flat);
        if scratch.w.max_width() > MAX_WIDTH {
            Params::Vertical
        } else {
            Params::Flat
        }
    }

    /// `[oneway] Result name(params) [throws A, B];`
    fn signature(&mut self, signature: &[Node], layout: Params) {
        for child in signature {
            match child.rule {
                Rule::param_list => self.params(child, layout),
                Rule::rparen if layout == Params::Vertical => {
                    let Some(token) = child.token else { continue };
                    self.w.item_start(token, Blank::Keep, true);
                    self.w.dedent();
                    self.w.line();
                    self.leaf(Rule::rparen, token, Mode::Normal);
                }
                _ => self.inline(child, Mode::Normal),
            }
        }
    }

    fn params(&mut self, list: &Node, layout: Params) {
        let children = &list.children;
        if layout == Params::Flat {
            for (i, child) in children.iter().enumerate() {
                match (child.rule, child.token) {
                    (Rule::comma, Some(token)) if i + 1 == children.len() => {
                        self.w.skip(token);
                    }
                    (Rule::param, _) => self.member(child, Rule::ident, false),
                    _ => self.inline(child, Mode::Normal),
                }
            }
            return;
        }
        self.w.indent();
        let mut first = true;
        for (i, child) in children.iter().enumerate() {
            if !child.is(Rule::param) {
                if let Some(token) = child.token {
                    self.leaf(child.rule, token, Mode::Normal);
                }
                continue;
            }
            let Some(start) = child.first_token() else {
                continue;
            };
            let blank = if first { Blank::None } else { Blank::Keep };
            first = false;
            self.w.item_start(start, blank, false);
            self.member(child, Rule::ident, true);
            if !children.get(i + 1).is_some_and(|next| next.is(Rule::comma)) {
                self.w.append_to_last_token(",");
            }
        }
        // The closing parenthesis dedents (see `signature`).
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_lines_get_one_space() {
        assert_eq!(doc_text("///x  "), "/// x");
        assert_eq!(doc_text("///   x"), "///   x");
        assert_eq!(doc_text("///"), "///");
        assert_eq!(doc_text("///   "), "///");
    }

    #[test]
    fn spacing() {
        assert!(!space_between(Some(Rule::ident), Rule::semi));
        assert!(!space_between(Some(Rule::at_name), Rule::lparen));
        assert!(!space_between(Some(Rule::langle), Rule::scalar_type));
        assert!(space_between(Some(Rule::comma), Rule::scalar_type));
        assert!(space_between(Some(Rule::type_name), Rule::lbrace));
        assert!(!space_between(Some(Rule::lbrace), Rule::rbrace));
    }
}
