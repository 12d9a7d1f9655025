//! pest errors as [`DiagnosticKind::Syntax`]: what was expected (in words a
//! user knows: "`;`", "a type"), what was found, and where.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::grammar::Rule;
use super::unclosed_brace::unclosed_brace;
use crate::diagnostic::DiagnosticKind;
use crate::source::{floor_char_boundary, span};

/// Keywords that cannot name a type.
const RESERVED: &[&str] = &[
    "bool", "i32", "i64", "u32", "u64", "f32", "f64", "string", "bytes", "list", "map", "optional",
    "void", "struct", "error", "enum", "union", "service", "const", "import", "package", "oneway",
    "throws", "true", "false",
];

/// Converts a pest error from parsing `text[base..]` into a diagnostic, and
/// returns the absolute byte offset of the error.
pub(crate) fn syntax_error(
    error: &Error<Rule>,
    text: &str,
    base: usize,
) -> (DiagnosticKind, usize) {
    let relative = match error.location {
        InputLocation::Pos(pos) => pos,
        InputLocation::Span((start, _)) => start,
    };
    let pos = floor_char_boundary(text, base.saturating_add(relative));
    let (found, found_len) = found_token(text, pos);
    let kind = match &error.variant {
        // A missing `}` shows where the body was opened.
        ErrorVariant::ParsingError { positives, .. } => {
            let expects_close = positives.contains(&Rule::rbrace);
            unclosed_brace(text, base, pos, expects_close).unwrap_or_else(|| {
                let expected = describe_expected(positives);
                let help = reserved_word_help(positives, text, pos, found_len)
                    .or_else(|| streaming_field_help(text, pos));
                DiagnosticKind::Syntax {
                    message: format!("expected {expected}, found {found}"),
                    label: format!("unexpected {found}"),
                    span: span(pos, pos + found_len),
                    help,
                }
            })
        }
        ErrorVariant::CustomError { message } => DiagnosticKind::Syntax {
            message: message.clone(),
            label: "here".to_owned(),
            span: span(pos, pos + found_len),
            help: None,
        },
    };
    (kind, pos)
}

/// Describes the token at `pos` and its length in bytes.
fn found_token(text: &str, pos: usize) -> (String, usize) {
    let rest = &text[pos..];
    let Some(first) = rest.chars().next() else {
        return ("end of file".to_owned(), 0);
    };
    if first.is_ascii_alphanumeric() || first == '_' {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        return (format!("`{}`", &rest[..len]), len);
    }
    let shown = match first {
        '\n' | '\r' => "end of line".to_owned(),
        '`' => "a backtick".to_owned(),
        c if c.is_control() => format!("character U+{:04X}", u32::from(c)),
        c => format!("`{c}`"),
    };
    (shown, first.len_utf8())
}

/// A help line when a keyword stands where a name was expected.
fn reserved_word_help(positives: &[Rule], text: &str, pos: usize, len: usize) -> Option<String> {
    let wanted_name = positives
        .iter()
        .any(|rule| matches!(rule, Rule::type_name | Rule::type_path | Rule::ident));
    let word = &text[pos..pos + len];
    (wanted_name && RESERVED.contains(&word)).then(|| {
        format!("`{word}` is a keyword and cannot be used as a type name here; choose another name")
    })
}

/// A help line when a field of a struct, error or union is written as a
/// stream (`1: stream u32 x;`), which only methods can be.
fn streaming_field_help(text: &str, pos: usize) -> Option<String> {
    let before = &text[..pos];
    let member = before
        .rfind([';', '{'])
        .map_or(before, |start| &before[start + 1..]);
    let (_, after_tag) = member.split_once(':')?;
    let streams = after_tag
        .trim_start()
        .strip_prefix("stream")
        .is_some_and(|rest| rest.starts_with(char::is_whitespace));
    (streams && !member.contains('(')).then(|| {
        "a field cannot stream: only a method's result (`stream T name(..)`) and parameter (`N: stream T name`) can"
            .to_owned()
    })
}

fn describe_expected(positives: &[Rule]) -> String {
    let starts_declaration = |rule: &Rule| {
        matches!(
            rule,
            Rule::decl_step
                | Rule::package_decl
                | Rule::import_decl
                | Rule::const_decl
                | Rule::struct_decl
                | Rule::enum_decl
                | Rule::service_decl
                | Rule::kw_package
                | Rule::kw_import
                | Rule::kw_const
                | Rule::struct_keyword
                | Rule::kw_struct
                | Rule::kw_error
                | Rule::kw_union
                | Rule::kw_enum
                | Rule::kw_service
        )
    };
    let mut words: Vec<&'static str> = Vec::new();
    if positives.iter().any(starts_declaration) {
        words.push(
            "a declaration (`struct`, `error`, `union`, `enum`, `service`, `const` or `import`)",
        );
    }
    for rule in positives {
        // Doc comments and annotations may precede almost anything; listing
        // them next to a declaration keyword only adds noise.
        let noise = matches!(rule, Rule::doc | Rule::annotation | Rule::at_name);
        if starts_declaration(rule) || (noise && !words.is_empty()) {
            continue;
        }
        let word = describe(*rule);
        if !words.contains(&word) {
            words.push(word);
        }
    }
    match words.as_slice() {
        [] => "something else".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn describe(rule: Rule) -> &'static str {
    match rule {
        Rule::semi => "`;`",
        Rule::colon => "`:`",
        Rule::comma => "`,`",
        Rule::eq => "`=`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::lparen | Rule::annotation_args => "`(`",
        Rule::rparen => "`)`",
        Rule::langle => "`<`",
        Rule::rangle => "`>`",
        Rule::string_end => "a closing `\"`",
        Rule::kw_package => "`package`",
        Rule::kw_import => "`import`",
        Rule::kw_const => "`const`",
        Rule::kw_struct => "`struct`",
        Rule::kw_error => "`error`",
        Rule::kw_union => "`union`",
        Rule::kw_enum => "`enum`",
        Rule::kw_service => "`service`",
        Rule::struct_keyword => "`struct`, `error` or `union`",
        Rule::kw_oneway => "`oneway`",
        Rule::kw_void => "`void`",
        Rule::kw_stream => "`stream`",
        Rule::kw_throws | Rule::throws_clause => "`throws`",
        Rule::kw_optional => "`optional`",
        Rule::kw_list => "`list`",
        Rule::kw_map => "`map`",
        Rule::ident => "a name",
        Rule::type_name => "a type name",
        Rule::package_path => "a package name",
        Rule::doc => "a doc comment",
        Rule::annotation | Rule::at_name => "an annotation",
        Rule::annotation_arg => "an annotation argument",
        Rule::int_lit => "an integer",
        Rule::tag => "a field tag (a number)",
        Rule::string_lit | Rule::string_body => "a string",
        Rule::float_lit | Rule::bool_lit | Rule::value => "a value",
        Rule::default_value => "`=` and a default value",
        Rule::scalar_type
        | Rule::list_type
        | Rule::map_type
        | Rule::field_type
        | Rule::type_path => "a type",
        Rule::return_type => "a result type or `void`",
        Rule::field => "a field (`1: type name;`)",
        Rule::variant => "a variant (`NAME = 0;`)",
        Rule::method => "a method (`Result name(1: type param);`)",
        Rule::param | Rule::param_list => "a parameter (`1: type name`)",
        Rule::EOI => "end of file",
        Rule::package_decl
        | Rule::import_decl
        | Rule::const_decl
        | Rule::struct_decl
        | Rule::enum_decl
        | Rule::service_decl
        | Rule::decl_step => "a declaration",
        Rule::WHITESPACE
        | Rule::COMMENT
        | Rule::block_comment
        | Rule::line_comment
        | Rule::ident_char
        | Rule::reserved
        | Rule::exponent
        | Rule::decl => "something else",
    }
}
