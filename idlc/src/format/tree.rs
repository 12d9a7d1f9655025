//! The concrete syntax tree the formatter prints: the pest parse tree of a
//! file that is known to parse, with every token (keyword, name, literal,
//! punctuation, doc line) as a leaf that points into one flat token list.
//! Comments and whitespace are not tokens; they live in the gaps between
//! tokens (see `trivia`).

use pest::Parser as _;
use pest::iterators::Pair;

use crate::parse::grammar::{IdlParser, Rule};

/// One token: a leaf of the tree, with its text and absolute byte range.
#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    /// The text as written (atomic: it contains no comment).
    pub text: &'a str,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset after the last character.
    pub end: usize,
}

/// A node of the tree: a grammar rule with either children or one token.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// The grammar rule that matched.
    pub rule: Rule,
    /// Children, in source order (empty for a leaf).
    pub children: Vec<Node>,
    /// For a leaf: its index in [`Tree::tokens`].
    pub token: Option<usize>,
}

impl Node {
    /// The index of the first token under this node. Iterative, and every
    /// inner node of a tree built here has at least one child.
    pub fn first_token(&self) -> Option<usize> {
        let mut node = self;
        loop {
            if let Some(token) = node.token {
                return Some(token);
            }
            node = node.children.first()?;
        }
    }

    /// Whether this node is of `rule`.
    pub fn is(&self, rule: Rule) -> bool {
        self.rule == rule
    }
}

/// A whole file: its top-level declarations (in order, ending with the
/// end-of-input leaf, which carries the comments at the end of the file)
/// and the tokens they point into.
#[derive(Debug, Clone, Default)]
pub(super) struct Tree<'a> {
    /// Top-level nodes: `package_decl`, `import_decl`, `const_decl`,
    /// `struct_decl`, `enum_decl`, `service_decl`, then one `EOI` leaf.
    pub items: Vec<Node>,
    /// Every token, in source order.
    pub tokens: Vec<Token<'a>>,
}

/// Why the tree could not be built (only for text that does not parse,
/// which the caller has ruled out: this is a safety net, not a diagnostic
/// path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TreeError {
    /// Where parsing stopped.
    pub offset: usize,
}

/// Rules whose pairs are printed as one token even though pest gives them
/// inner pairs (compound-atomic rules).
fn is_token_rule(rule: Rule) -> bool {
    matches!(rule, Rule::string_lit | Rule::at_name)
}

/// Builds the tree of `text`, which must parse without errors (see
/// [`crate::parse::parse`]; its prescan bounds the nesting depth, and so the
/// recursion here).
pub(super) fn build(text: &str) -> Result<Tree<'_>, TreeError> {
    let mut tree = Tree::default();
    let mut pos = 0usize;
    loop {
        let slice = text.get(pos..).ok_or(TreeError { offset: pos })?;
        let mut pairs =
            IdlParser::parse(Rule::decl_step, slice).map_err(|_| TreeError { offset: pos })?;
        let step = pairs.next().ok_or(TreeError { offset: pos })?;
        let consumed = step.as_span().end();
        let mut at_end = false;
        for pair in step.into_inner() {
            at_end |= pair.as_rule() == Rule::EOI;
            let node = node(pair, pos, &mut tree.tokens);
            tree.items.push(node);
        }
        if at_end {
            return Ok(tree);
        }
        if consumed == 0 {
            return Err(TreeError { offset: pos });
        }
        pos += consumed;
    }
}

/// Converts one pair (of a slice starting at byte `base`) and its children.
fn node<'a>(pair: Pair<'a, Rule>, base: usize, tokens: &mut Vec<Token<'a>>) -> Node {
    let rule = pair.as_rule();
    let mut inner = pair.clone().into_inner().peekable();
    if is_token_rule(rule) || inner.peek().is_none() {
        let span = pair.as_span();
        tokens.push(Token {
            text: span.as_str(),
            start: base + span.start(),
            end: base + span.end(),
        });
        return Node {
            rule,
            children: Vec::new(),
            token: Some(tokens.len() - 1),
        };
    }
    let children = inner.map(|child| node(child, base, tokens)).collect();
    Node {
        rule,
        children,
        token: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_is_a_leaf_in_source_order() {
        let text = "struct A { 1: list<u32> x = 5 @a(b = \"c\"); }";
        let tree = build(text).expect("parses");
        let texts: Vec<&str> = tree.tokens.iter().map(|t| t.text).collect();
        assert_eq!(
            texts,
            [
                "struct", "A", "{", "1", ":", "list", "<", "u32", ">", "x", "=", "5", "@a", "(",
                "b", "=", "\"c\"", ")", ";", "}", ""
            ]
        );
        assert!(tree.tokens.windows(2).all(|w| w[0].end <= w[1].start));
        assert_eq!(tree.items.len(), 2, "the struct and the end of input");
    }

    #[test]
    fn an_empty_file_is_just_the_end() {
        let tree = build("  // nothing\n").expect("parses");
        assert_eq!(tree.items.len(), 1);
        assert!(tree.items[0].is(Rule::EOI));
    }
}
