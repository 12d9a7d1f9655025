//! What a user can change about the generated code (from build.rs through
//! `idlc::Builder::codegen_options`).

use proc_macro2::TokenStream;

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

    /// The extra attributes of the type `name` declared in `package`.
    pub(crate) fn attributes_for(&self, package: Option<&str>, name: &str) -> TokenStream {
        let qualified = match package {
            Some(package) => format!("{package}.{name}"),
            None => name.to_owned(),
        };
        self.type_attributes
            .iter()
            .filter(|(path, _)| path == "." || path == name || *path == qualified)
            .map(|(_, attribute)| {
                parse_attributes(attribute).unwrap_or_else(|error| {
                    let message = format!("idlc: invalid type attribute `{attribute}`: {error}");
                    quote::quote!(#[doc = #message])
                })
            })
            .collect()
    }
}

/// Parses one or more outer attributes (`#[a] #[b]`).
fn parse_attributes(source: &str) -> Result<TokenStream, syn::Error> {
    let attributes = syn::parse::Parser::parse_str(syn::Attribute::parse_outer, source)?;
    Ok(attributes
        .iter()
        .map(quote::ToTokens::to_token_stream)
        .collect())
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
        let attrs = options.attributes_for(Some("shop"), "Order").to_string();
        assert!(attrs.contains("Eq") && attrs.contains('a') && attrs.contains('b'));
        assert!(!attrs.contains('c'), "{attrs}");
        assert!(
            options
                .attributes_for(Some("shop"), "Item")
                .to_string()
                .contains("Eq")
        );
    }

    #[test]
    fn invalid_attributes_are_reported() {
        let options = CodegenOptions::default().type_attribute(".", "derive(Eq)");
        let error = options.validate().expect_err("not an attribute");
        assert!(error.contains("derive(Eq)"), "{error}");
    }
}
