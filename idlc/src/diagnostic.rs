//! Diagnostics: one typed kind per problem (with a code such as
//! `idl::unknown_type`, a labelled span and a one-line fix hint), wrapped
//! with the source it points into, and rendered with miette's ASCII,
//! colorless graphical handler.

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, Severity, SourceCode, SourceSpan,
};

use crate::source::SourceText;

/// What went wrong, where (a span in the file the diagnostic belongs to),
/// and how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The text does not follow the grammar.
    #[error("syntax error: {message}")]
    #[diagnostic(code(idl::syntax))]
    Syntax {
        /// What was expected and found.
        message: String,
        /// Short label under the spot.
        label: String,
        /// Where.
        #[label("{label}")]
        span: SourceSpan,
        /// Fix hint.
        #[help]
        help: Option<String>,
    },

    /// A declaration's `{` that is never closed: the next declaration, or
    /// the end of the file, comes first.
    #[error("{what} is not closed: expected `}}`, found {found}")]
    #[diagnostic(code(idl::unclosed_brace))]
    UnclosedBrace {
        /// `struct `Order``, or `the declaration`.
        what: String,
        /// What came instead: `` `service` ``, `end of file`.
        found: String,
        /// Short label where the `}` was due.
        label: String,
        /// The token found instead of `}` (empty at the end of the file).
        #[label(primary, "{label}")]
        span: SourceSpan,
        /// The `{` left open.
        #[label("this `{{` of {what} is never closed")]
        open: SourceSpan,
        /// Where to put the `}`.
        #[help]
        help: Option<String>,
    },

    /// Types nested deeper than the parser accepts.
    #[error("type nesting is deeper than {max} levels")]
    #[diagnostic(
        code(idl::nesting_too_deep),
        help("declare a struct for an inner level instead of nesting further")
    )]
    NestingTooDeep {
        /// The limit.
        max: usize,
        /// The `<` that goes past the limit.
        #[label("this level is too deep")]
        span: SourceSpan,
    },

    /// A file named on the command line (or to the builder) cannot be read.
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(code(idl::unreadable_file))]
    UnreadableFile {
        /// The path.
        path: String,
        /// The I/O error.
        reason: String,
    },

    /// An `import` names a file that cannot be found or read.
    #[error("cannot import `{path}`: {reason}")]
    #[diagnostic(code(idl::unresolved_import))]
    UnresolvedImport {
        /// The path as written.
        path: String,
        /// Why.
        reason: String,
        /// The import's path literal.
        #[label("imported here")]
        span: SourceSpan,
        /// Where it was looked for.
        #[help]
        help: Option<String>,
    },

    /// Files import each other in a circle.
    #[error("import cycle: {cycle}")]
    #[diagnostic(
        code(idl::import_cycle),
        help("move the shared declarations into a file that both can import")
    )]
    ImportCycle {
        /// `a.rpc -> b.rpc -> a.rpc`.
        cycle: String,
        /// The import that closes the cycle.
        #[label("this import closes the cycle")]
        span: SourceSpan,
    },

    /// Two loaded files have the same stem, so they would generate the same
    /// module.
    #[error("`{path}` and `{other}` would both generate the module `{module}`")]
    #[diagnostic(
        code(idl::duplicate_module),
        help("rename one of the files: the generated module is named after the file stem")
    )]
    DuplicateModule {
        /// The module name.
        module: String,
        /// This file.
        path: String,
        /// The file loaded first.
        other: String,
        /// Where this file was imported (empty span at the start of the file
        /// when it was named directly).
        #[label("second file with this stem")]
        span: SourceSpan,
    },

    /// A file stem that is not a Rust module name.
    #[error("file name `{path}` does not give a Rust module name (`{module}`)")]
    #[diagnostic(
        code(idl::invalid_module_name),
        help("name the file with letters, digits and `_`, e.g. `{suggestion}.rpc`")
    )]
    InvalidModuleName {
        /// The file.
        path: String,
        /// Its stem.
        module: String,
        /// A usable stem.
        suggestion: String,
        /// Where it was imported, or the start of the file.
        #[label("this file")]
        span: SourceSpan,
    },

    /// A type name that no visible declaration has.
    #[error("unknown type `{name}`")]
    #[diagnostic(code(idl::unknown_type))]
    UnknownType {
        /// The name as written.
        name: String,
        /// Where.
        #[label("not declared or imported")]
        span: SourceSpan,
        /// A close name, a missing import or a service used as a type.
        #[help]
        help: Option<String>,
    },

    /// Two declarations with the same name in one package (or two constants
    /// in one file).
    #[error("`{name}` is declared twice")]
    #[diagnostic(code(idl::duplicate_type))]
    DuplicateType {
        /// The name.
        name: String,
        /// The second declaration.
        #[label(primary, "declared again here")]
        span: SourceSpan,
        /// The first, when it is in the same file.
        #[label("first declared here")]
        first: Option<SourceSpan>,
        /// Rename hint (and where the first one is when in another file).
        #[help]
        help: Option<String>,
    },

    /// Two fields (or union arms) with the same name.
    #[error("field `{name}` is declared twice in `{container}`")]
    #[diagnostic(code(idl::duplicate_field), help("rename one of the fields"))]
    DuplicateField {
        /// The struct, error or union.
        container: String,
        /// The field name.
        name: String,
        /// The second field.
        #[label(primary, "declared again here")]
        span: SourceSpan,
        /// The first.
        #[label("first declared here")]
        first: Option<SourceSpan>,
    },

    /// Two fields, arms or parameters with the same tag.
    #[error("tag {tag} is used twice in {container}")]
    #[diagnostic(code(idl::duplicate_tag))]
    DuplicateTag {
        /// `struct Order`, `method get`...
        container: String,
        /// The tag.
        tag: i128,
        /// The second use.
        #[label(primary, "used again here")]
        span: SourceSpan,
        /// The first use.
        #[label("first used here")]
        first: Option<SourceSpan>,
        /// The next free tag.
        #[help]
        help: Option<String>,
    },

    /// Two enum variants with the same name.
    #[error("variant `{name}` is declared twice in enum `{enum_name}`")]
    #[diagnostic(code(idl::duplicate_variant), help("rename one of the variants"))]
    DuplicateVariant {
        /// The enum.
        enum_name: String,
        /// The variant name.
        name: String,
        /// The second one.
        #[label(primary, "declared again here")]
        span: SourceSpan,
        /// The first one.
        #[label("first declared here")]
        first: Option<SourceSpan>,
    },

    /// Two enum variants with the same number.
    #[error("value {value} is used twice in enum `{enum_name}`")]
    #[diagnostic(code(idl::duplicate_enum_value))]
    DuplicateEnumValue {
        /// The enum.
        enum_name: String,
        /// The value.
        value: i128,
        /// The second use.
        #[label(primary, "used again here")]
        span: SourceSpan,
        /// The first use.
        #[label("first used here")]
        first: Option<SourceSpan>,
        /// The next free value.
        #[help]
        help: Option<String>,
    },

    /// Two methods with the same name.
    #[error("method `{name}` is declared twice in service `{service}`")]
    #[diagnostic(code(idl::duplicate_method), help("rename one of the methods"))]
    DuplicateMethod {
        /// The service.
        service: String,
        /// The method.
        name: String,
        /// The second one.
        #[label(primary, "declared again here")]
        span: SourceSpan,
        /// The first one.
        #[label("first declared here")]
        first: Option<SourceSpan>,
    },

    /// Two parameters with the same name.
    #[error("parameter `{name}` is declared twice in method `{method}`")]
    #[diagnostic(code(idl::duplicate_parameter), help("rename one of the parameters"))]
    DuplicateParameter {
        /// The method.
        method: String,
        /// The parameter.
        name: String,
        /// The second one.
        #[label(primary, "declared again here")]
        span: SourceSpan,
        /// The first one.
        #[label("first declared here")]
        first: Option<SourceSpan>,
    },

    /// The same error type listed twice after `throws`.
    #[error("method `{method}` lists `{name}` twice after `throws`")]
    #[diagnostic(code(idl::duplicate_throws), help("remove the second `{name}`"))]
    DuplicateThrows {
        /// The method.
        method: String,
        /// The error type.
        name: String,
        /// The second one.
        #[label(primary, "listed again here")]
        span: SourceSpan,
        /// The first one.
        #[label("first listed here")]
        first: Option<SourceSpan>,
    },

    /// A tag of 0 or less, above 536,870,911, or in 19000-19999.
    #[error("tag {tag} is out of range: {reason}")]
    #[diagnostic(
        code(idl::tag_out_of_range),
        help("use a tag from 1 to 536870911, outside 19000-19999 (reserved by protobuf)")
    )]
    TagOutOfRange {
        /// The tag.
        tag: i128,
        /// Which rule it breaks.
        reason: String,
        /// Where.
        #[label("out of range")]
        span: SourceSpan,
    },

    /// A default or constant value of another type than its field or
    /// constant.
    #[error("{what} is {found}, but the type is `{expected}`")]
    #[diagnostic(code(idl::value_type_mismatch))]
    ValueTypeMismatch {
        /// `default value`, `constant value`, ...
        what: String,
        /// `a string`, `the integer 3`, ...
        found: String,
        /// The IDL type.
        expected: String,
        /// The value.
        #[label("expected a `{expected}` value")]
        span: SourceSpan,
        /// An example of a fitting value.
        #[help]
        help: Option<String>,
    },

    /// A number that does not fit its type.
    #[error("{value} does not fit in `{ty}`")]
    #[diagnostic(code(idl::value_out_of_range), help("use a value from {range}"))]
    ValueOutOfRange {
        /// The literal.
        value: String,
        /// The type.
        ty: String,
        /// The valid range.
        range: String,
        /// Where.
        #[label("out of range")]
        span: SourceSpan,
    },

    /// A default value where none can be given.
    #[error("{reason}")]
    #[diagnostic(code(idl::unexpected_default))]
    UnexpectedDefault {
        /// Why no default is allowed here.
        reason: String,
        /// The value.
        #[label("default not allowed here")]
        span: SourceSpan,
        /// What to do instead.
        #[help]
        help: Option<String>,
    },

    /// A map key that is not an integer, `string` or `bool`.
    #[error("`{found}` cannot be a map key")]
    #[diagnostic(
        code(idl::map_key_type),
        help("use an integer type, `string` or `bool` as the key")
    )]
    MapKeyType {
        /// The key type as written.
        found: String,
        /// Where.
        #[label("not allowed as a key")]
        span: SourceSpan,
    },

    /// `optional list<..>` or `optional map<..>`.
    #[error(
        "`optional {collection}<..>` is not allowed: a {collection} is already optional (absent means empty)"
    )]
    #[diagnostic(
        code(idl::optional_list),
        help("drop `optional`: write `{collection}<..>`")
    )]
    OptionalList {
        /// `list` or `map`.
        collection: String,
        /// Where.
        #[label("`optional` on a {collection}")]
        span: SourceSpan,
    },

    /// `list<optional T>` or `map<K, optional V>`.
    #[error("`{written}` is not allowed: {collection} elements cannot be absent")]
    #[diagnostic(
        code(idl::optional_element),
        help(
            "drop `optional` from the element type, or wrap it in a struct with an optional field"
        )
    )]
    OptionalElement {
        /// `list<optional T>` or `map<K, optional V>`.
        written: String,
        /// `list` or `map`.
        collection: String,
        /// The optional element type.
        #[label("optional element")]
        span: SourceSpan,
    },

    /// An `optional` union arm.
    #[error("union arm `{name}` cannot be `optional`: exactly one arm of a union is set")]
    #[diagnostic(code(idl::optional_union_arm), help("drop `optional`"))]
    OptionalUnionArm {
        /// The arm.
        name: String,
        /// Its type.
        #[label("optional arm")]
        span: SourceSpan,
    },

    /// `throws` naming something that is not declared with `error`.
    #[error("`{name}` is {kind}, not an error, so it cannot be thrown")]
    #[diagnostic(code(idl::throws_not_error))]
    ThrowsNotError {
        /// The type.
        name: String,
        /// `a struct`, `an enum`, `a union`.
        kind: String,
        /// Where it is named.
        #[label("not an `error` type")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },

    /// A `oneway` method that returns a value.
    #[error("oneway method `{method}` must return `void`")]
    #[diagnostic(
        code(idl::oneway_with_result),
        help("a oneway call gets no reply: return `void`, or drop `oneway`")
    )]
    OnewayWithResult {
        /// The method.
        method: String,
        /// The return type.
        #[label("a result is never sent back")]
        span: SourceSpan,
    },

    /// A `oneway` method with `throws`.
    #[error("oneway method `{method}` cannot throw")]
    #[diagnostic(
        code(idl::oneway_with_throws),
        help(
            "a oneway call gets no reply, so errors cannot reach the caller: drop `throws` or `oneway`"
        )
    )]
    OnewayWithThrows {
        /// The method.
        method: String,
        /// The `throws` clause.
        #[label("never sent back")]
        span: SourceSpan,
    },

    /// A `oneway` method with a `stream` result or parameter.
    #[error("oneway method `{method}` cannot stream")]
    #[diagnostic(
        code(idl::oneway_with_stream),
        help(
            "a oneway call is one request with no reply, so no items can flow: drop `stream`, or drop `oneway`"
        )
    )]
    OnewayWithStream {
        /// The method.
        method: String,
        /// The `stream` keyword.
        #[label("a oneway call cannot stream")]
        span: SourceSpan,
    },

    /// `stream void`: a stream without items.
    #[error("method `{method}` streams `void`: a stream needs an item type")]
    #[diagnostic(
        code(idl::stream_void),
        help("stream a type (`stream Event watch(..)`), or return `void` without `stream`")
    )]
    StreamVoid {
        /// The method.
        method: String,
        /// `stream void`.
        #[label("no items to send")]
        span: SourceSpan,
    },

    /// More than one `stream` parameter in a method.
    #[error("method `{method}` has more than one `stream` parameter")]
    #[diagnostic(
        code(idl::multiple_stream_params),
        help(
            "a method takes at most one stream parameter: stream a union (or a struct) that can hold each kind of item"
        )
    )]
    MultipleStreamParams {
        /// The method.
        method: String,
        /// The second stream parameter.
        #[label(primary, "second stream parameter")]
        span: SourceSpan,
        /// The first.
        #[label("first stream parameter")]
        first: Option<SourceSpan>,
    },

    /// A `stream` parameter followed by other parameters.
    #[error("stream parameter `{param}` of method `{method}` must be the last parameter")]
    #[diagnostic(
        code(idl::stream_param_not_last),
        help("move it after the other parameters (its tag can stay as it is)")
    )]
    StreamParamNotLast {
        /// The method.
        method: String,
        /// The stream parameter.
        param: String,
        /// The stream parameter.
        #[label(primary, "not the last parameter")]
        span: SourceSpan,
        /// The last parameter.
        #[label("comes after it")]
        last: Option<SourceSpan>,
    },

    /// A `stream` parameter (client or bidirectional streaming), which idlc
    /// does not generate code for yet.
    #[error("client and bidirectional streaming are not supported yet (only `stream` results)")]
    #[diagnostic(
        code(idl::streaming_not_supported),
        help(
            "for now, send the items as a `list<..>` parameter or over several calls; a `stream T` result (server streaming) is supported"
        )
    )]
    StreamingNotSupported {
        /// The method.
        method: String,
        /// The parameter's `stream` keyword.
        #[label("a stream parameter of `{method}`")]
        span: SourceSpan,
    },

    /// More than one `@hash_key` parameter in a method.
    #[error("method `{method}` has more than one `@hash_key` parameter")]
    #[diagnostic(
        code(idl::multiple_hash_keys),
        help("keep `@hash_key` on the one parameter the balancer should route on")
    )]
    MultipleHashKeys {
        /// The method.
        method: String,
        /// The second `@hash_key`.
        #[label(primary, "second hash key")]
        span: SourceSpan,
        /// The first.
        #[label("first hash key")]
        first: Option<SourceSpan>,
    },

    /// `@hash_key` on a parameter whose type cannot be a routing key.
    #[error(
        "`@hash_key` parameter `{param}` of method `{method}` is {ty}, which cannot be a routing key"
    )]
    #[diagnostic(
        code(idl::hash_key_type),
        help("put `@hash_key` on a bool, integer, string, bytes or enum parameter")
    )]
    HashKeyType {
        /// The method.
        method: String,
        /// The parameter.
        param: String,
        /// What its type is, with an article (`a struct`, `an `f64``).
        ty: String,
        /// The parameter's type.
        #[label("not a routing key")]
        span: SourceSpan,
    },

    /// A struct or union that contains itself without `optional` or `list`.
    #[error(
        "`{name}` contains itself without `optional` or `list`, so it would be infinitely large ({cycle})"
    )]
    #[diagnostic(
        code(idl::infinite_size),
        help("make a field on the cycle `optional` (it is then boxed) or a `list<..>`")
    )]
    InfiniteSize {
        /// The type.
        name: String,
        /// `A -> B -> A`.
        cycle: String,
        /// The field that starts the cycle.
        #[label("contains `{next}` directly")]
        span: SourceSpan,
        /// The type that field holds.
        next: String,
    },

    /// The first variant of an enum is not 0.
    #[error("the first variant of enum `{enum_name}` must be 0, not {value}")]
    #[diagnostic(
        code(idl::first_enum_value_not_zero),
        help("the first variant is the default: give it 0, e.g. add `UNSPECIFIED = 0;` first")
    )]
    FirstEnumValueNotZero {
        /// The enum.
        enum_name: String,
        /// Its first value.
        value: i128,
        /// Where.
        #[label("must be 0")]
        span: SourceSpan,
    },

    /// An enum without variants.
    #[error("enum `{name}` has no variants")]
    #[diagnostic(code(idl::empty_enum), help("add a first variant with value 0"))]
    EmptyEnum {
        /// The enum.
        name: String,
        /// Its name.
        #[label("empty enum")]
        span: SourceSpan,
    },

    /// A union without arms.
    #[error("union `{name}` has no arms")]
    #[diagnostic(code(idl::empty_union), help("add an arm, e.g. `1: string text;`"))]
    EmptyUnion {
        /// The union.
        name: String,
        /// Its name.
        #[label("empty union")]
        span: SourceSpan,
    },

    /// Two different IDL names that become the same Rust name.
    #[error("`{name}` and `{other}` both become `{rust}` in Rust ({scope})")]
    #[diagnostic(code(idl::rust_name_collision), help("rename one of them"))]
    RustNameCollision {
        /// This name.
        name: String,
        /// The name declared first.
        other: String,
        /// The shared Rust name.
        rust: String,
        /// Where both live: `fields of Order`, ...
        scope: String,
        /// This one.
        #[label(primary, "becomes `{rust}`")]
        span: SourceSpan,
        /// The first one.
        #[label("also becomes `{rust}`")]
        first: Option<SourceSpan>,
    },

    /// An IDL name without a usable Rust form (`_`, `_1`).
    #[error("`{name}` has no valid Rust name (it becomes `{rust}`)")]
    #[diagnostic(code(idl::invalid_rust_name), help("start the name with a letter"))]
    InvalidRustName {
        /// The IDL name.
        name: String,
        /// What it maps to.
        rust: String,
        /// Where.
        #[label("no Rust name")]
        span: SourceSpan,
    },

    /// Two things the generator writes for one file would get the same Rust
    /// name in one scope (`Foo2barArgs` for methods `foo2bar` and
    /// `foo_2bar`), which generated code cannot avoid.
    #[error(
        "the generated Rust name `{rust}` would be used twice in {scope}: for {what} and for {other}"
    )]
    #[diagnostic(code(idl::generated_name_collision), help("rename one of them"))]
    GeneratedNameCollision {
        /// The shared Rust name.
        rust: String,
        /// Where both would live (`module \`store\``).
        scope: String,
        /// What this one is (`the args message of method \`foo_2bar\``).
        what: String,
        /// What the first one is.
        other: String,
        /// This one.
        #[label(primary, "becomes `{rust}`")]
        span: SourceSpan,
        /// The first one, if it is in the file.
        #[label("also becomes `{rust}`")]
        first: Option<SourceSpan>,
    },

    /// `idlc fmt` could not produce a layout that keeps the file's meaning
    /// and comments (an idlc bug; the file is left as it is).
    #[error("cannot format this file safely: {reason}")]
    #[diagnostic(
        code(idl::format_failed),
        help("the file was left unchanged; please report this as an idlc bug, with the file")
    )]
    FormatFailed {
        /// What went wrong.
        reason: String,
    },

    /// A known annotation with wrong arguments, or given twice.
    #[error("invalid `@{name}`: {message}")]
    #[diagnostic(code(idl::bad_annotation))]
    BadAnnotation {
        /// The annotation.
        name: String,
        /// What is wrong.
        message: String,
        /// Where.
        #[label("here")]
        span: SourceSpan,
        /// The right form.
        #[help]
        help: Option<String>,
    },

    /// An unknown annotation that is a near miss of a known one (`@idempotnet`,
    /// `@time_out`, `@Version`): an error, because ignoring it would
    /// silently drop what the known one does.
    #[error("unknown annotation `@{name}`: did you mean `@{known}`?")]
    #[diagnostic(
        code(idl::misspelled_annotation),
        help(
            "write `@{known}`: an annotation this close to a known one is an error, since ignoring it would silently drop {effect}"
        )
    )]
    MisspelledAnnotation {
        /// The annotation as written.
        name: String,
        /// The known annotation it is a near miss of.
        known: String,
        /// What the known annotation does.
        effect: String,
        /// Where.
        #[label("did you mean `@{known}`?")]
        span: SourceSpan,
    },

    /// An annotation `idlc` does not know (a warning: it is ignored).
    #[error("unknown annotation `@{name}` on {target} is ignored")]
    #[diagnostic(code(idl::unknown_annotation), severity(Warning))]
    UnknownAnnotation {
        /// The annotation.
        name: String,
        /// `a service`, `a field`, ...
        target: String,
        /// Where.
        #[label("unknown annotation")]
        span: SourceSpan,
        /// A close known name, or the known set.
        #[help]
        help: Option<String>,
    },

    /// A known annotation on an element it means nothing on (a warning).
    #[error("`@{name}` has no effect on {target}; it applies to {applies_to}")]
    #[diagnostic(
        code(idl::misplaced_annotation),
        severity(Warning),
        help("move it to {applies_to}, or remove it")
    )]
    MisplacedAnnotation {
        /// The annotation.
        name: String,
        /// Where it was found.
        target: String,
        /// Where it belongs.
        applies_to: String,
        /// Where.
        #[label("ignored here")]
        span: SourceSpan,
    },
}

/// One diagnostic: a [`DiagnosticKind`] with the source text its spans point
/// into (none for files that could not be read at all).
#[derive(Debug, Clone)]
pub struct Diagnostic {
    kind: DiagnosticKind,
    source: Option<SourceText>,
    order: (usize, usize),
}

impl Diagnostic {
    /// A diagnostic about `source` (`file_order` sorts diagnostics of
    /// different files: load order).
    pub fn new(kind: DiagnosticKind, source: Option<SourceText>, file_order: usize) -> Self {
        let offset = miette::Diagnostic::labels(&kind)
            .and_then(|mut labels| labels.next())
            .map_or(0, |label| label.offset());
        Diagnostic {
            kind,
            source,
            order: (file_order, offset),
        }
    }

    /// What the problem is.
    pub fn kind(&self) -> &DiagnosticKind {
        &self.kind
    }

    /// The diagnostic code, such as `idl::unknown_type`.
    pub fn code(&self) -> String {
        miette::Diagnostic::code(&self.kind).map_or_else(String::new, |code| code.to_string())
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        !matches!(
            miette::Diagnostic::severity(&self.kind),
            Some(Severity::Warning | Severity::Advice)
        )
    }

    /// The name of the file it is about, if it has a source.
    pub fn file_name(&self) -> Option<&str> {
        self.source.as_ref().map(|source| source.name())
    }

    /// 1-based line and column of the primary label, if any.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let source = self.source.as_ref()?;
        let label = miette::Diagnostic::labels(&self.kind)?.next()?;
        Some(crate::source::line_col(source.inner(), label.offset()))
    }

    /// One line: `file:line:col: code: message` (for cargo warnings).
    pub fn one_line(&self) -> String {
        let place = match (self.file_name(), self.line_col()) {
            (Some(file), Some((line, column))) => format!("{file}:{line}:{column}: "),
            (Some(file), None) => format!("{file}: "),
            _ => String::new(),
        };
        format!("{place}{}: {}", self.code(), self.kind)
    }

    /// Renders this diagnostic alone (ASCII, no colors).
    pub fn render(&self) -> String {
        let mut out = String::new();
        render_into(&mut out, self);
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.kind.code()
    }

    fn severity(&self) -> Option<Severity> {
        self.kind.severity()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.kind.help()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|source| source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.kind.labels()
    }
}

/// All diagnostics of one run, errors and warnings, sorted by file and
/// position. `Display` renders them all (ASCII, no colors), as does `Debug`
/// so that `.unwrap()` shows something readable.
#[derive(Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Diagnostics::default()
    }

    /// Diagnostics sorted by file order and position (stable for equal keys).
    pub fn from_vec(mut items: Vec<Diagnostic>) -> Self {
        items.sort_by_key(|diagnostic| diagnostic.order);
        Diagnostics { items }
    }

    /// Adds one, keeping the order.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        let at = self
            .items
            .partition_point(|existing| existing.order <= diagnostic.order);
        self.items.insert(at, diagnostic);
    }

    /// All of them, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many are errors.
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    /// How many are warnings.
    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    /// Whether any is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The codes, in order (handy in tests).
    pub fn codes(&self) -> Vec<String> {
        self.items.iter().map(Diagnostic::code).collect()
    }

    /// Renders every diagnostic (ASCII art, no colors, carets under the
    /// spot, `[file:line:col]`), one after another.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for diagnostic in &self.items {
            render_into(&mut out, diagnostic);
        }
        out
    }

    /// `2 errors, 1 warning`.
    pub fn summary(&self) -> String {
        let errors = self.error_count();
        let warnings = self.warning_count();
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        format!(
            "{}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }
}

fn render_into(out: &mut String, diagnostic: &Diagnostic) {
    if render_report(out, diagnostic).is_err() {
        // Rendering into a String cannot fail on I/O; fall back to one line.
        out.push_str(&diagnostic.one_line());
        out.push('\n');
    }
}

/// Renders any miette diagnostic the way idlc renders its own (ASCII, no
/// colors, 100 columns), for tools that report with their own types.
pub(crate) fn render_report(out: &mut String, diagnostic: &dyn miette::Diagnostic) -> fmt::Result {
    GraphicalReportHandler::new_themed(GraphicalTheme::none())
        .with_links(false)
        .with_width(100)
        // Wrap at spaces only: a path or a code span stays on one line.
        .with_word_separator(textwrap::WordSeparator::AsciiSpace)
        .with_show_related_as_nested(true)
        .render_report(out, diagnostic)
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:", self.summary())?;
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}
