//! IDL names to Rust identifiers, and the table of every identifier the
//! generator emits for one file.
//!
//! The table ([`RustNames`]) is filled by `check`, before any code is
//! written, from the same functions codegen names things with; a clash the
//! generated code cannot avoid becomes an `idl::rust_name_collision` at the
//! IDL line (never a rustc error in `OUT_DIR`), and codegen reads its names
//! from the table. Clashes are avoided by construction where possible:
//!
//! - everything generated for a service lives in its own module
//!   (`pub mod greeter`), so per-method names (`GetError`, `GetArgs`) of two
//!   services, or a user type named like one of them, never meet;
//! - user types are referred to from inside as `super::Type`, never through
//!   a glob import a generated name could shadow;
//! - a generated client's configuration (`new`, `with_timeout`, ...) comes
//!   from the runtime's `Stub` trait, so IDL methods of any name take
//!   precedence on the client;
//! - generated code names the standard library through the runtime
//!   (`__rt::Option`) wherever the module declares a type of that name, and
//!   names its own locals and generic parameters so no parameter or type
//!   can shadow them (`ctx` becomes `call_ctx`, a stream's `items` becomes
//!   `item_sender`, the adapter's `T` becomes `S`, `Unrecognized` becomes
//!   `UnrecognizedValue`, ...).
//!
//! A keyword becomes a raw identifier (`type` → `r#type`), except the four
//! that cannot be raw (`self`, `Self`, `super`, `crate`), which get a
//! trailing underscore (`self_`).

use std::collections::{BTreeMap, BTreeSet};

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

use crate::model::{FileModel, TypeDef};

/// Keywords of every edition (strict, reserved and weak-but-unusable).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate"];

/// The length of the longest keyword: a longer name is none.
const LONGEST_KEYWORD: usize = {
    let mut longest = 0;
    let mut i = 0;
    while i < KEYWORDS.len() {
        if KEYWORDS[i].len() > longest {
            longest = KEYWORDS[i].len();
        }
        i += 1;
    }
    longest
};

/// The identifier for an already-cased Rust name, escaping keywords.
pub fn ident(name: &str) -> String {
    escaped(name.to_owned())
}

/// [`ident`] of a name already owned (no copy when it is no keyword, as
/// almost every name is).
fn escaped(name: String) -> String {
    if name.len() > LONGEST_KEYWORD || !KEYWORDS.contains(&name.as_str()) {
        name
    } else if NOT_RAW.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        format!("r#{name}")
    }
}

/// An identifier without its `r#` (the name serde writes).
pub fn unraw(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// The `UpperCamelCase` form of an IDL name before keyword escaping (for
/// names derived from it: `SelfArgs`, not `Self_Args`): heck's, which a
/// name already in the plain form heck keeps as it is skips (most type
/// names: `Item12`, `OrderStatus`; codegen names types thousands of times
/// in a large file).
pub(crate) fn camel(idl: &str) -> String {
    if is_plain_upper_camel(idl) {
        idl.to_owned()
    } else {
        idl.to_upper_camel_case()
    }
}

/// Whether heck's `to_upper_camel_case` returns `name` unchanged because
/// of its plain shape: ASCII letters and digits, an uppercase first
/// letter, and every other uppercase letter right after a lowercase one.
/// (heck then finds one word per uppercase letter, each already an
/// uppercase letter and lowercase letters or digits; a name of another
/// shape may come back unchanged too, and takes heck's path.)
fn is_plain_upper_camel(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_uppercase)
        && bytes.iter().all(u8::is_ascii_alphanumeric)
        && bytes
            .windows(2)
            .all(|pair| !pair[1].is_ascii_uppercase() || pair[0].is_ascii_lowercase())
}

/// The `snake_case` form of an IDL name before keyword escaping
/// (`self_blocking`, not `self__blocking`): heck's, skipped for a name
/// already in plain `snake_case` (most field and method names).
pub(crate) fn snake(idl: &str) -> String {
    if is_plain_snake(idl) {
        idl.to_owned()
    } else {
        idl.to_snake_case()
    }
}

/// Whether heck's `to_snake_case` returns `name` unchanged because of its
/// plain shape: ASCII lowercase letters and digits in words joined by
/// single underscores (heck splits words only at underscores and before
/// uppercase letters, and lowercases them).
fn is_plain_snake(name: &str) -> bool {
    !name.is_empty()
        && name.split('_').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// The Rust name of a type, service or enum variant: `UpperCamelCase`.
pub fn type_name(idl: &str) -> String {
    escaped(camel(idl))
}

/// The identifier of a field, parameter or method: `snake_case`.
pub fn field_name(idl: &str) -> String {
    escaped(snake(idl))
}

/// The identifier of a constant or a method's descriptor:
/// `SCREAMING_SNAKE_CASE`.
pub fn const_name(idl: &str) -> String {
    escaped(idl.to_shouty_snake_case())
}

/// The name serde writes for a field (`r#` stripped): `Some(idl)` when it
/// differs from the IDL name, so the field needs `#[serde(rename)]`.
pub fn serde_rename(idl: &str, rust: &str) -> Option<String> {
    (unraw(rust) != idl).then(|| idl.to_owned())
}

/// Every Rust identifier generated for one file, by scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RustNames {
    /// The file's module, type namespace: declared types, service modules,
    /// `__rt`.
    pub module_types: BTreeSet<String>,
    /// The file's module, value namespace: constants and `IDL_SOURCE`.
    pub module_values: BTreeSet<String>,
    /// Each service's names, in declaration order.
    pub services: Vec<ServiceNames>,
    /// Each enum's catch-all variant (`Unrecognized`), by IDL type name.
    pub unrecognized: BTreeMap<String, String>,
}

/// The names generated for one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceNames {
    /// Its module (`greeter`).
    pub module: String,
    /// The module's type namespace: the trait, client, server, args
    /// messages and declared-error enums.
    pub types: BTreeSet<String>,
    /// The module's value namespace: the method descriptors.
    pub values: BTreeSet<String>,
    /// The server trait (`Greeter`).
    pub trait_name: String,
    /// The client (`GreeterClient`).
    pub client: String,
    /// The server adapter (`GreeterServer`).
    pub server: String,
    /// The adapter's type parameter (the user's implementation): `T`.
    pub implementation: String,
    /// The module's constant holding the service's wire name: `SERVICE`.
    pub wire_name: String,
    /// Each method's names, in declaration order.
    pub methods: Vec<MethodNames>,
}

/// The names generated for one method.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodNames {
    /// The trait and client method (`say_hello`).
    pub func: String,
    /// The client's `_blocking`, `_future` and `_with_callback` forms.
    pub blocking: String,
    /// See [`MethodNames::blocking`].
    pub future: String,
    /// See [`MethodNames::blocking`].
    pub with_callback: String,
    /// The args message (`SayHelloArgs`).
    pub args: String,
    /// The declared-error enum (`SayHelloError`), if the method throws.
    pub error: Option<String>,
    /// Each declared error's variant in it, in `throws` order.
    pub error_variants: Vec<String>,
    /// The method descriptor (`SAY_HELLO`).
    pub descriptor: String,
    /// The parameters, in order.
    pub params: Vec<String>,
    /// The trait method's call-context parameter: `ctx` unless taken.
    pub ctx: String,
    /// The callback form's callback parameter: `on_result` unless taken.
    pub on_result: String,
    /// The trait method's item sender of a server-streaming method:
    /// `items` unless taken.
    pub items: String,
}

impl ServiceNames {
    /// How generated code inside the service's module names the standard
    /// item `name` (`String`, `Option`, `Send`, `Into`, ...): bare, unless
    /// an item of the module shadows it, else through the runtime
    /// (`__rt::Option`).
    pub fn std(&self, name: &str) -> String {
        if self.types.contains(name) {
            format!("__rt::{name}")
        } else {
            name.to_owned()
        }
    }
}

/// The first of `candidates`, then `candidates[0]` with a number, that is
/// not taken.
fn free_name(candidates: &[&str], taken: impl Fn(&str) -> bool) -> String {
    if let Some(free) = candidates.iter().find(|c| !taken(c)) {
        return (*free).to_owned();
    }
    (2..)
        .map(|n| format!("{}{n}", candidates[0]))
        .find(|c| !taken(c))
        .unwrap_or_default()
}

/// One generated name and what it comes from (for clash reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The IDL element, as the diagnostic names it (`method \`get\``).
    pub what: String,
    /// Where it is in the file, if it is in it.
    pub span: Option<miette::SourceSpan>,
}

/// A clash found while filling the table: `name` was generated for
/// `second`, and already for `first`, in `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clash {
    pub name: String,
    pub scope: String,
    pub first: Origin,
    pub second: Origin,
}

/// One scope of the table while it is filled.
struct Scope {
    description: String,
    names: BTreeMap<String, Origin>,
    clashes: Vec<Clash>,
}

impl Scope {
    fn new(description: String) -> Self {
        Scope {
            description,
            names: BTreeMap::new(),
            clashes: Vec::new(),
        }
    }

    /// Declares `name`; a second declaration is a clash (reported when
    /// `report` is set: scopes the other checks of `check` already cover
    /// are only recorded).
    fn declare(&mut self, name: &str, origin: Origin, report: bool) {
        match self.names.get(name) {
            Some(first) if report => self.clashes.push(Clash {
                name: name.to_owned(),
                scope: self.description.clone(),
                first: first.clone(),
                second: origin,
            }),
            Some(_) => {}
            None => {
                self.names.insert(name.to_owned(), origin);
            }
        }
    }

    fn set(&self) -> BTreeSet<String> {
        self.names.keys().cloned().collect()
    }
}

/// Fills the table of `file` and returns the clashes generated code could
/// not avoid.
pub(crate) fn table(file: &FileModel) -> (RustNames, Vec<Clash>) {
    let spans = &file.spans;
    let origin = |what: String, span: Option<miette::SourceSpan>| Origin { what, span };
    let module = &file.module_name;
    let mut clashes = Vec::new();
    let mut names = RustNames::default();

    let mut types = Scope::new(format!("module `{module}`"));
    types.declare(
        "__rt",
        origin("the runtime's path alias".into(), None),
        true,
    );
    for def in &file.types {
        let name = def.name();
        // Duplicate type names are `check`'s (`idl::duplicate_type`,
        // `idl::rust_name_collision`).
        types.declare(
            &type_name(name),
            origin(format!("type `{name}`"), spans.type_name(name)),
            false,
        );
    }
    for service in &file.services {
        let name = &service.name;
        types.declare(
            &field_name(name),
            origin(
                format!("the module of service `{name}`"),
                spans.service(name).map(|s| s.name),
            ),
            true,
        );
    }
    let mut values = Scope::new(format!("constants of module `{module}`"));
    values.declare(
        "IDL_SOURCE",
        origin("the embedded .rpc source".into(), None),
        false,
    );
    for constant in &file.constants {
        values.declare(
            &const_name(&constant.name),
            origin(format!("constant `{}`", constant.name), None),
            false,
        );
    }

    for def in &file.types {
        match def {
            TypeDef::Enum(e) => {
                let taken =
                    |candidate: &str| e.variants.iter().any(|v| type_name(&v.name) == candidate);
                let catch_all = free_name(&["Unrecognized", "UnrecognizedValue"], taken);
                names.unrecognized.insert(e.name.clone(), catch_all);
            }
            // Union arms (variants) are `check`'s (`idl::rust_name_collision`).
            TypeDef::Union(_) | TypeDef::Struct(_) => {}
        }
    }

    for service in &file.services {
        let service_span = spans.service(&service.name).map(|s| s.name);
        let trait_name = type_name(&service.name);
        let service_camel = camel(&service.name);
        let mut scope = Scope::new(format!("module `{}`", field_name(&service.name)));
        let mut descriptors = Scope::new(format!("module `{}`", field_name(&service.name)));
        scope.declare(
            "__rt",
            origin("the runtime's path alias".into(), None),
            true,
        );
        let service_origin = |what: &str| {
            origin(
                format!("{what} of service `{}`", service.name),
                service_span,
            )
        };
        scope.declare(&trait_name, service_origin("the trait"), true);
        let client = format!("{service_camel}Client");
        let server = format!("{service_camel}Server");
        scope.declare(&client, service_origin("the client"), true);
        scope.declare(&server, service_origin("the server adapter"), true);
        let mut methods = Vec::with_capacity(service.methods.len());
        let mut seen_methods: Vec<String> = Vec::new();
        for method in &service.methods {
            // A method named like an earlier one is `check`'s
            // (`idl::duplicate_method`, `idl::rust_name_collision`): its
            // generated names are recorded, not reported again.
            let func = field_name(&method.name);
            let report = !seen_methods.contains(&func);
            seen_methods.push(func);
            let method_span = spans.method(&service.name, &method.name).map(|m| m.name);
            let method_origin =
                |what: &str| origin(format!("{what} of method `{}`", method.name), method_span);
            let func = field_name(&method.name);
            let base = snake(&method.name);
            let method_camel = camel(&method.name);
            let args = format!("{method_camel}Args");
            scope.declare(&args, method_origin("the args message"), report);
            let error = (!method.throws.is_empty()).then(|| format!("{method_camel}Error"));
            if let Some(error) = &error {
                scope.declare(error, method_origin("the declared-error enum"), report);
            }
            let descriptor = const_name(&method.name);
            descriptors.declare(&descriptor, method_origin("the descriptor"), report);
            let mut variants = Scope::new(format!(
                "declared errors of `{}.{}`",
                service.name, method.name
            ));
            let method_spans = spans.method(&service.name, &method.name);
            let error_variants = method
                .throws
                .iter()
                .enumerate()
                .map(|(position, thrown)| {
                    let variant = type_name(&thrown.name);
                    let span = method_spans.and_then(|m| m.throws.get(position).copied());
                    variants.declare(&variant, origin(format!("`{}`", thrown.name), span), true);
                    variant
                })
                .collect();
            clashes.append(&mut variants.clashes);
            let params: Vec<String> = method.params.iter().map(|p| field_name(&p.name)).collect();
            let taken = |candidate: &str| params.iter().any(|p| p == candidate);
            methods.push(MethodNames {
                blocking: format!("{base}_blocking"),
                future: format!("{base}_future"),
                with_callback: format!("{base}_with_callback"),
                func,
                args,
                error,
                error_variants,
                descriptor,
                ctx: free_name(&["ctx", "call_ctx"], taken),
                on_result: free_name(&["on_result", "callback"], taken),
                items: free_name(&["items", "item_sender"], taken),
                params,
            });
        }
        let implementation = free_name(&["T", "S", "Impl"], |c| scope.names.contains_key(c));
        let wire_name = free_name(&["SERVICE", "SERVICE_WIRE_NAME"], |c| {
            descriptors.names.contains_key(c)
        });
        descriptors.declare(&wire_name, service_origin("the wire name"), false);
        clashes.append(&mut scope.clashes);
        clashes.append(&mut descriptors.clashes);
        names.services.push(ServiceNames {
            module: field_name(&service.name),
            types: scope.set(),
            values: descriptors.set(),
            trait_name,
            client,
            server,
            implementation,
            wire_name,
            methods,
        });
    }
    clashes.append(&mut types.clashes);
    clashes.append(&mut values.clashes);
    names.module_types = types.set();
    names.module_values = values.set();
    (names, clashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_is_escaped() {
        // `escaped` looks in NOT_RAW only for keywords.
        assert!(NOT_RAW.iter().all(|name| KEYWORDS.contains(name)));
        for keyword in KEYWORDS {
            assert_ne!(ident(keyword), *keyword);
        }
        assert_eq!(ident("continue1"), "continue1");
    }

    #[test]
    fn keywords_become_raw_or_suffixed() {
        assert_eq!(field_name("type"), "r#type");
        assert_eq!(field_name("self"), "self_");
        assert_eq!(type_name("Self"), "Self_");
        assert_eq!(field_name("crate"), "crate_");
        assert_eq!(field_name("userName"), "user_name");
        assert_eq!(type_name("PENDING"), "Pending");
        assert_eq!(const_name("maxItems"), "MAX_ITEMS");
    }

    /// Names of every shape the fast paths must get right: heck's own
    /// boundaries (`XMLHttp`, `A1B`, `a__b`), digits, underscores at the
    /// ends, non-ASCII letters.
    fn name_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("[A-Za-z0-9_ ßΣσ-]{0,10}").expect("a valid regex")
    }

    proptest::proptest! {
        #[test]
        fn camel_is_hecks(name in name_strategy()) {
            proptest::prop_assert_eq!(camel(&name), name.to_upper_camel_case());
        }

        #[test]
        fn snake_is_hecks(name in name_strategy()) {
            proptest::prop_assert_eq!(snake(&name), name.to_snake_case());
        }
    }

    #[test]
    fn plain_names_take_the_fast_path_and_others_hecks() {
        for plain in ["Item12", "OrderStatus", "A", "Ab1cDe", "X9"] {
            assert!(is_plain_upper_camel(plain), "{plain}");
            assert_eq!(camel(plain), plain.to_upper_camel_case());
        }
        for other in [
            "A1B", "Ab1Cd", "XMLHttp", "AB", "item", "Item_1", "", "Ärger",
        ] {
            assert!(!is_plain_upper_camel(other), "{other}");
            assert_eq!(camel(other), other.to_upper_camel_case());
        }
        for plain in ["id", "user_name", "a_1b", "foo2bar", "x"] {
            assert!(is_plain_snake(plain), "{plain}");
            assert_eq!(snake(plain), plain.to_snake_case());
        }
        for other in ["a__b", "_a", "a_", "userName", "", "ß"] {
            assert!(!is_plain_snake(other), "{other}");
            assert_eq!(snake(other), other.to_snake_case());
        }
    }

    #[test]
    fn serde_rename_only_when_the_wire_name_differs() {
        assert_eq!(serde_rename("type", &field_name("type")), None);
        assert_eq!(
            serde_rename("self", &field_name("self")),
            Some("self".into())
        );
        assert_eq!(
            serde_rename("userName", &field_name("userName")),
            Some("userName".into())
        );
        assert_eq!(serde_rename("sku", &field_name("sku")), None);
    }

    #[test]
    fn free_names_skip_taken_ones() {
        assert_eq!(free_name(&["ctx", "call_ctx"], |c| c == "ctx"), "call_ctx");
        assert_eq!(
            free_name(&["ctx", "call_ctx"], |c| c.contains("ctx") && c != "ctx3"),
            "ctx3"
        );
    }
}
