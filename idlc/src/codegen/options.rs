//! What a user can change about the generated code (from build.rs through
//! `idlc::Builder::codegen_options`).

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// The Rust type of IDL `map<K, V>` fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MapType {
    /// `std::collections::HashMap` (the default, as in prost).
    #[default]
    HashMap,
    /// `std::collections::BTreeMap`: ordered, deterministic iteration.
    BTreeMap,
}

/// Options that change the generated code.
///
/// ```
/// use idlc::codegen::{CodegenOptions, MapType};
///
/// let options = CodegenOptions::default()
///     .map_type(MapType::BTreeMap)
///     .type_attribute(".", "#[derive(Eq)]")            // every declared type
///     .type_attribute("shop.Order", "#[non_exhaustive]"); // one type
/// assert!(options.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CodegenOptions {
    pub(crate) map_type: MapType,
    type_attributes: Vec<(String, String)>,
    /// `embed_idl_source(false)` was called (embedding is on by default).
    omit_idl_source: bool,
}

impl CodegenOptions {
    /// Chooses the Rust type of `map<K, V>` fields.
    pub fn map_type(mut self, map_type: MapType) -> Self {
        self.map_type = map_type;
        self
    }

    /// Whether each generated module embeds the `.rpc` source it was
    /// generated from (default `true`): a `pub const IDL_SOURCE`, and per
    /// service adapter a `ServiceHandler::idl` that returns it with the
    /// sources of every file it imports, for server reflection. `false`
    /// leaves both out (the adapters then answer `None`).
    pub fn embed_idl_source(mut self, embed: bool) -> Self {
        self.omit_idl_source = !embed;
        self
    }

    /// Whether the `.rpc` source is embedded (see
    /// [`embed_idl_source`](Self::embed_idl_source)).
    pub fn embeds_idl_source(&self) -> bool {
        !self.omit_idl_source
    }

    /// Adds `attribute` (Rust source, such as `#[derive(Hash)]`) to the
    /// declared types that `path` matches: `"."` matches every struct,
    /// error, enum and union; `"Order"` the type of that IDL name in any
    /// package; `"shop.Order"` the type `Order` of package `shop`.
    pub fn type_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.type_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Checks that every attribute is valid Rust attribute syntax; the error
    /// names the first that is not.
    pub fn validate(&self) -> Result<(), String> {
        for (path, attribute) in &self.type_attributes {
            parse_attributes(attribute).map_err(|error| {
                format!(
                    "type attribute `{attribute}` for `{path}` is not a Rust attribute: {error}"
                )
            })?;
        }
        Ok(())
    }

    /// The extra attributes of the type `name` declared in `package`, one
    /// line each.
    pub(crate) fn attributes_for(&self, package: Option<&str>, name: &str) -> Vec<String> {
        let qualified = match package {
            Some(package) => format!("{package}.{name}"),
            None => name.to_owned(),
        };
        self.type_attributes
            .iter()
            .filter(|(path, _)| path == "." || path == name || *path == qualified)
            .flat_map(|(_, attribute)| {
                parse_attributes(attribute).unwrap_or_else(|error| {
                    let message = format!("idlc: invalid type attribute `{attribute}`: {error}");
                    vec![format!("#[doc = {message:?}]")]
                })
            })
            .collect()
    }
}

/// Parses one or more outer attributes (`#[a] #[b]`) and prints each on a
/// line of its own, as prettyplease prints attributes.
fn parse_attributes(source: &str) -> Result<Vec<String>, String> {
    let tokens: TokenStream = source
        .parse()
        .map_err(|e: proc_macro2::LexError| e.to_string())?;
    let mut tokens = tokens.into_iter().peekable();
    let mut attributes = Vec::new();
    while let Some(token) = tokens.next() {
        let is_pound = matches!(&token, TokenTree::Punct(p) if p.as_char() == '#');
        let body = match tokens.next() {
            Some(TokenTree::Group(group))
                if is_pound && group.delimiter() == Delimiter::Bracket =>
            {
                group.stream()
            }
            _ => return Err("expected an attribute such as `#[derive(Hash)]`".to_owned()),
        };
        if body.is_empty() {
            return Err("an empty attribute".to_owned());
        }
        attributes.push(format!("#[{}]", print_tokens(body)));
    }
    if attributes.is_empty() {
        return Err("no attribute".to_owned());
    }
    Ok(attributes)
}

/// Tokens as Rust source, spaced the way rustfmt and prettyplease space
/// attribute arguments: `derive(Eq, Hash)`, `serde(rename = "x")`,
/// `a::b`.
fn print_tokens(tokens: TokenStream) -> String {
    let mut out = String::new();
    let mut previous: Option<TokenTree> = None;
    for token in tokens {
        let joint_before =
            matches!(&previous, Some(TokenTree::Punct(p)) if p.spacing() == Spacing::Joint);
        let space = match (&previous, &token) {
            (None, _) => false,
            (_, _) if joint_before => false,
            (Some(TokenTree::Punct(p)), _)
                if p.as_char() == ':' || p.as_char() == '#' || p.as_char() == '&' =>
            {
                false
            }
            (_, TokenTree::Punct(p)) if matches!(p.as_char(), ',' | ':' | ';' | '.') => false,
            (Some(TokenTree::Punct(p)), _) if p.as_char() == '.' => false,
            (_, TokenTree::Group(g)) if g.delimiter() != Delimiter::Brace => {
                matches!(&previous, Some(TokenTree::Punct(p)) if p.as_char() == '=' || p.as_char() == ',')
            }
            _ => true,
        };
        if space {
            out.push(' ');
        }
        match &token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                out.push_str(&print_tokens(group.stream()));
                out.push_str(close);
            }
            other => out.push_str(&other.to_string()),
        }
        previous = Some(token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_all_bare_or_qualified_names() {
        let options = CodegenOptions::default()
            .type_attribute(".", "#[derive(Eq)]")
            .type_attribute("Order", "#[a]")
            .type_attribute("shop.Order", "#[b]")
            .type_attribute("other.Order", "#[c]");
        let attrs = options.attributes_for(Some("shop"), "Order").join(" ");
        assert!(attrs.contains("Eq") && attrs.contains('a') && attrs.contains('b'));
        assert!(!attrs.contains('c'), "{attrs}");
        assert!(
            options
                .attributes_for(Some("shop"), "Item")
                .join(" ")
                .contains("Eq")
        );
    }

    #[test]
    fn attributes_print_one_per_line() {
        let options = CodegenOptions::default().type_attribute(
            ".",
            "#[derive( Eq,Hash )] #[serde(rename_all = \"camelCase\")]",
        );
        assert_eq!(
            options.attributes_for(None, "A"),
            [
                "#[derive(Eq, Hash)]",
                "#[serde(rename_all = \"camelCase\")]"
            ]
        );
    }

    #[test]
    fn invalid_attributes_are_reported() {
        let options = CodegenOptions::default().type_attribute(".", "derive(Eq)");
        let error = options.validate().expect_err("not an attribute");
        assert!(error.contains("derive(Eq)"), "{error}");
    }
}
