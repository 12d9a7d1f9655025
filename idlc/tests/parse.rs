//! Parser tests: every construct of the language, comments and docs,
//! literals, spans, error recovery, and deep nesting.

use idlc::parse::MAX_NESTING;
use idlc::parse::ast::*;
use idlc::parse::parse;

/// Parses text that must be valid.
fn ok(text: &str) -> File {
    let parsed = parse(text);
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    parsed.file
}

/// The source text under a span.
fn at(text: &str, span: miette::SourceSpan) -> &str {
    &text[span.offset()..span.offset() + span.len()]
}

fn only_struct(file: &File) -> &StructDecl {
    match file.decls.as_slice() {
        [Decl::Struct(s)] => s,
        other => panic!("expected one struct, got {other:#?}"),
    }
}

fn only_service(file: &File) -> &ServiceDecl {
    match file.decls.as_slice() {
        [Decl::Service(s)] => s,
        other => panic!("expected one service, got {other:#?}"),
    }
}

fn literal(text: &str) -> LiteralKind {
    let file = ok(&format!("const i64 X = {text};"));
    match file.decls.as_slice() {
        [Decl::Const(c)] => c.value.kind.clone(),
        other => panic!("{other:#?}"),
    }
}

#[test]
fn empty_file_and_comments_only() {
    assert_eq!(ok(""), File::default());
    assert_eq!(ok("  // nothing\n/* at all */\n"), File::default());
}

#[test]
fn package_and_imports() {
    let text = "/// File docs are accepted.\npackage shop.orders;\nimport \"common.rpc\";\nimport \"dir/other.rpc\";";
    let file = ok(text);
    let package = file.package.expect("package");
    assert_eq!(package.name, "shop.orders");
    assert_eq!(at(text, package.span), "shop.orders");
    let paths: Vec<_> = file.imports.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["common.rpc", "dir/other.rpc"]);
    assert_eq!(at(text, file.imports[0].span), "\"common.rpc\"");
}

#[test]
fn package_must_come_first() {
    let parsed = parse("struct A {}\npackage late;");
    assert_eq!(parsed.errors.len(), 1);
    let parsed = parse("package a;\npackage b;");
    assert_eq!(parsed.errors.len(), 1);
}

#[test]
fn constants() {
    let text = "/// The limit.\nconst u32 MAX_ITEMS = 100;\nconst string NAME = \"x\";";
    let file = ok(text);
    let [Decl::Const(max), Decl::Const(name)] = file.decls.as_slice() else {
        panic!("{:#?}", file.decls)
    };
    assert_eq!(max.docs, ["The limit."]);
    assert_eq!(max.ty, Scalar::U32);
    assert_eq!(at(text, max.ty_span), "u32");
    assert_eq!(max.name.name, "MAX_ITEMS");
    assert_eq!(max.value.kind, LiteralKind::Int(100));
    assert_eq!(at(text, max.value.span), "100");
    assert_eq!(name.value.kind, LiteralKind::String("x".into()));
}

#[test]
fn structs_errors_and_unions() {
    let file =
        ok("struct A { 1: u32 a; }\nerror E { 1: string why; }\nunion U { 1: string s; 2: A a; }");
    let kinds: Vec<_> = file
        .decls
        .iter()
        .map(|d| match d {
            Decl::Struct(s) => s.kind,
            other => panic!("{other:#?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [StructKind::Struct, StructKind::Error, StructKind::Union]
    );
}

#[test]
fn fields_with_everything() {
    let text = "struct Order {\n  /// The id.\n  /// Unique.\n  @sensitive 1: u64 id @hash_key = 7 @other;\n  2: optional string note;\n}";
    let file = ok(text);
    let order = only_struct(&file);
    assert_eq!(order.name.name, "Order");
    assert_eq!(at(text, order.name.span), "Order");
    let id = &order.fields[0];
    assert_eq!(id.docs, ["The id.", "Unique."]);
    assert_eq!(id.tag.value, 1);
    assert_eq!(at(text, id.tag.span), "1");
    assert_eq!(id.ty.kind, TypeExprKind::Scalar(Scalar::U64));
    assert_eq!(at(text, id.ty.span), "u64");
    assert_eq!(id.name.name, "id");
    assert_eq!(at(text, id.name.span), "id");
    let names: Vec<_> = id
        .annotations
        .iter()
        .map(|a| a.name.name.as_str())
        .collect();
    assert_eq!(names, ["sensitive", "hash_key", "other"]);
    assert_eq!(at(text, id.annotations[1].span), "@hash_key");
    assert_eq!(
        id.default.as_ref().map(|d| &d.kind),
        Some(&LiteralKind::Int(7))
    );
    let note = &order.fields[1];
    assert_eq!(at(text, note.ty.span), "optional string");
    let TypeExprKind::Optional(inner) = &note.ty.kind else {
        panic!("{:#?}", note.ty)
    };
    assert_eq!(inner.kind, TypeExprKind::Scalar(Scalar::String));
}

#[test]
fn all_types() {
    let text = "struct T {\n 1: bool a; 2: i32 b; 3: i64 c; 4: u32 d; 5: u64 e; 6: f32 f; 7: f64 g;\n 8: string h; 9: bytes i; 10: list<Item> j; 11: map<string, list<u32>> k;\n 12: common.Money l; 13: a.b.C m;\n}";
    let file = ok(text);
    let fields = &only_struct(&file).fields;
    let scalars: Vec<_> = fields[..9]
        .iter()
        .map(|f| match f.ty.kind {
            TypeExprKind::Scalar(s) => s,
            ref other => panic!("{other:#?}"),
        })
        .collect();
    assert_eq!(
        scalars,
        [
            Scalar::Bool,
            Scalar::I32,
            Scalar::I64,
            Scalar::U32,
            Scalar::U64,
            Scalar::F32,
            Scalar::F64,
            Scalar::String,
            Scalar::Bytes
        ]
    );
    let TypeExprKind::List(element) = &fields[9].ty.kind else {
        panic!()
    };
    let TypeExprKind::Named(item) = &element.kind else {
        panic!()
    };
    assert_eq!(
        (item.package.as_deref(), item.name.as_str()),
        (None, "Item")
    );
    assert_eq!(at(text, fields[9].ty.span), "list<Item>");
    let TypeExprKind::Map(key, value) = &fields[10].ty.kind else {
        panic!()
    };
    assert_eq!(key.kind, TypeExprKind::Scalar(Scalar::String));
    assert!(matches!(value.kind, TypeExprKind::List(_)));
    assert_eq!(at(text, value.span), "list<u32>");
    let TypeExprKind::Named(money) = &fields[11].ty.kind else {
        panic!()
    };
    assert_eq!(
        (money.package.as_deref(), money.name.as_str()),
        (Some("common"), "Money")
    );
    assert_eq!(at(text, money.span), "common.Money");
    let TypeExprKind::Named(c) = &fields[12].ty.kind else {
        panic!()
    };
    assert_eq!(c.written(), "a.b.C");
}

#[test]
fn optional_collections_and_elements_parse() {
    // They are errors of the checker (with a clear message), not of the grammar.
    ok(
        "struct T { 1: optional list<u32> a; 2: list<optional u32> b; 3: map<string, optional u32> c; }",
    );
}

#[test]
fn enums() {
    let text = "/// Status.\nenum Status {\n  /// Waiting.\n  PENDING = 0;\n  PAID = 0x10;\n  GONE = -1;\n}";
    let file = ok(text);
    let [Decl::Enum(status)] = file.decls.as_slice() else {
        panic!()
    };
    assert_eq!(status.docs, ["Status."]);
    let values: Vec<_> = status
        .variants
        .iter()
        .map(|v| (v.name.name.as_str(), v.value))
        .collect();
    assert_eq!(values, [("PENDING", 0), ("PAID", 16), ("GONE", -1)]);
    assert_eq!(status.variants[0].docs, ["Waiting."]);
    assert_eq!(at(text, status.variants[1].value_span), "0x10");
}

#[test]
fn services_and_methods() {
    let text = r#"
/// Orders.
@version("2")
service OrderService {
  /// Places.
  Order place(1: list<LineItem> items, 2: optional string coupon) throws OutOfStock, common.Denied;

  @idempotent
  @timeout(ms = 200)
  Order get(1: u64 id @hash_key) throws NotFound;

  list<Order> search(1: string query, 2: u32 limit = 20,);

  void ping();

  oneway void track(1: string event);
}"#;
    let file = ok(text);
    let service = only_service(&file);
    assert_eq!(service.docs, ["Orders."]);
    assert_eq!(service.annotations[0].name.name, "version");
    assert_eq!(
        service.annotations[0].args[0].value.kind,
        LiteralKind::String("2".into())
    );
    let [place, get, search, ping, track] = service.methods.as_slice() else {
        panic!("{:#?}", service.methods)
    };
    assert_eq!(place.docs, ["Places."]);
    assert_eq!(place.params.len(), 2);
    let throws: Vec<_> = place.throws.iter().map(TypeName::written).collect();
    assert_eq!(throws, ["OutOfStock", "common.Denied"]);
    assert_eq!(
        at(text, place.throws_span.expect("throws")),
        "throws OutOfStock, common.Denied"
    );
    let timeout = &get.annotations[1];
    assert_eq!(timeout.name.name, "timeout");
    assert_eq!(
        timeout.args[0].key.as_ref().map(|k| k.name.as_str()),
        Some("ms")
    );
    assert_eq!(timeout.args[0].value.kind, LiteralKind::Int(200));
    assert_eq!(at(text, timeout.span), "@timeout(ms = 200)");
    assert_eq!(get.params[0].annotations[0].name.name, "hash_key");
    assert!(matches!(search.returns, ReturnType::Type(_)));
    assert_eq!(
        search.params[1].default.as_ref().map(|d| &d.kind),
        Some(&LiteralKind::Int(20))
    );
    assert!(matches!(ping.returns, ReturnType::Void(_)));
    assert!(ping.params.is_empty());
    assert!(ping.oneway.is_none());
    assert!(track.oneway.is_some());
}

#[test]
fn keywords_as_member_names() {
    // IDL keywords and Rust keywords are fine as field, method, parameter
    // and variant names.
    let file = ok(
        "struct S { 1: string error; 2: u32 type; 3: bool match; }\nenum E { struct = 0; }\nservice X { void service(1: u32 self); }",
    );
    assert_eq!(file.decls.len(), 3);
}

#[test]
fn stream_results_and_parameters() {
    let text = "service S {\n  stream u32 count(1: u32 n) throws TooMany;\n  u64 sum(1: string label, 2: stream u32 numbers);\n  stream string shout(1: stream string words);\n  oneway stream void nothing();\n}";
    let file = ok(text);
    let service = only_service(&file);
    let [count, sum, shout, nothing] = service.methods.as_slice() else {
        panic!("{:#?}", service.methods)
    };
    // `stream` has its own span; the result is the item type.
    assert_eq!(at(text, count.stream.expect("stream result")), "stream");
    assert!(count.stream.expect("span").offset() < count.name.span.offset());
    let ReturnType::Type(item) = &count.returns else {
        panic!("{:#?}", count.returns)
    };
    assert_eq!(item.kind, TypeExprKind::Scalar(Scalar::U32));
    assert_eq!(at(text, item.span), "u32");
    assert_eq!(count.throws.len(), 1);
    assert!(count.params[0].stream.is_none());
    // A stream parameter: `stream` before its type.
    assert!(sum.stream.is_none());
    assert!(sum.params[0].stream.is_none());
    let numbers = &sum.params[1];
    assert_eq!(
        at(text, numbers.stream.expect("stream parameter")),
        "stream"
    );
    assert_eq!(numbers.name.name, "numbers");
    assert_eq!(numbers.ty.kind, TypeExprKind::Scalar(Scalar::U32));
    assert_eq!(at(text, numbers.ty.span), "u32");
    // Both: bidirectional.
    assert!(shout.stream.is_some() && shout.params[0].stream.is_some());
    // `stream void` parses (the checker rejects it), after `oneway` too.
    assert!(nothing.oneway.is_some() && nothing.stream.is_some());
    assert!(matches!(nothing.returns, ReturnType::Void(_)));
}

/// `stream` is a contextual keyword: where no type and name follow it, it
/// is a name like any other, as it was before streams (a type, field,
/// method, parameter or variant called `stream`).
#[test]
fn stream_is_still_a_name() {
    let text = "struct stream { 1: u32 stream; 2: stream next; 3: list<stream> all; 4: stream.Item qualified; }\n\
                enum Mode { stream = 0; }\n\
                service stream {\n\
                  stream get(1: stream stream);\n\
                  stream stream(1: stream x, 2: u32 stream);\n\
                  stream stream stream(1: stream stream stream);\n\
                  stream u32 void();\n\
                  stream void(1: stream optional);\n\
                  stream stream.Item items(1: stream.Item stream);\n\
                  void stream();\n\
                }";
    let file = ok(text);
    let [Decl::Struct(s), Decl::Enum(e), Decl::Service(service)] = file.decls.as_slice() else {
        panic!("{:#?}", file.decls)
    };
    assert_eq!(s.name.name, "stream");
    let names: Vec<_> = s.fields.iter().map(|f| f.name.name.as_str()).collect();
    assert_eq!(names, ["stream", "next", "all", "qualified"]);
    let named = |ty: &TypeExpr| match &ty.kind {
        TypeExprKind::Named(name) => name.written(),
        other => panic!("{other:#?}"),
    };
    assert_eq!(named(&s.fields[1].ty), "stream");
    assert_eq!(named(&s.fields[3].ty), "stream.Item");
    assert!(s.fields.iter().all(|f| f.stream.is_none()));
    assert_eq!(e.variants[0].name.name, "stream");
    assert_eq!(service.name.name, "stream");
    let shape = |m: &MethodDecl| {
        let returns = match &m.returns {
            ReturnType::Void(_) => "void".to_owned(),
            ReturnType::Type(ty) => match &ty.kind {
                TypeExprKind::Named(name) => name.written(),
                TypeExprKind::Scalar(_) => "scalar".to_owned(),
                other => panic!("{other:#?}"),
            },
        };
        let params: Vec<String> = m
            .params
            .iter()
            .map(|p| {
                let stream = if p.stream.is_some() { "stream " } else { "" };
                let ty = match &p.ty.kind {
                    TypeExprKind::Named(name) => name.written(),
                    _ => "scalar".to_owned(),
                };
                format!("{stream}{ty} {}", p.name.name)
            })
            .collect();
        let stream = if m.stream.is_some() { "stream " } else { "" };
        format!("{stream}{returns} {}({})", m.name.name, params.join(", "))
    };
    let shapes: Vec<String> = service.methods.iter().map(shape).collect();
    assert_eq!(
        shapes,
        [
            "stream get(stream stream)",
            "stream stream(stream x, scalar stream)",
            "stream stream stream(stream stream stream)",
            "stream scalar void()",
            "stream void(stream optional)",
            "stream stream.Item items(stream.Item stream)",
            "void stream()",
        ]
    );
}

#[test]
fn fields_cannot_stream() {
    for text in [
        "struct A { 1: stream u32 x; }",
        "union A { 1: u32 a; 2: stream list<u32> x; }",
    ] {
        let errors = parse(text).errors;
        let [idlc::DiagnosticKind::Syntax { help, .. }] = errors.as_slice() else {
            panic!("{errors:#?}")
        };
        let help = help.as_deref().unwrap_or_default();
        assert!(help.starts_with("a field cannot stream"), "{help}");
    }
    // Not for other mistakes, nor in parameter lists.
    for text in [
        "struct A { 1: u32 x y; }",
        "service S { void f(1: stream u32 x y); }",
    ] {
        let errors = parse(text).errors;
        let [idlc::DiagnosticKind::Syntax { help, .. }] = errors.as_slice() else {
            panic!("{errors:#?}")
        };
        assert_eq!(help, &None, "{text}");
    }
}

#[test]
fn literals() {
    assert_eq!(literal("42"), LiteralKind::Int(42));
    assert_eq!(literal("-42"), LiteralKind::Int(-42));
    assert_eq!(literal("0xFF"), LiteralKind::Int(255));
    assert_eq!(literal("-0x10"), LiteralKind::Int(-16));
    assert_eq!(literal("1.5"), LiteralKind::Float(1.5));
    assert_eq!(literal("-2e10"), LiteralKind::Float(-2e10));
    assert_eq!(literal("2.5E-3"), LiteralKind::Float(2.5e-3));
    assert_eq!(literal("true"), LiteralKind::Bool(true));
    assert_eq!(literal("false"), LiteralKind::Bool(false));
    assert_eq!(literal("PENDING"), LiteralKind::Ident("PENDING".into()));
    assert_eq!(
        literal(r#""q\" b\\ n\n t\t u\u{e9}\u{1F600}""#),
        LiteralKind::String("q\" b\\ n\n t\t u\u{e9}\u{1F600}".into())
    );
    assert_eq!(literal("\"héllo\""), LiteralKind::String("héllo".into()));
}

#[test]
fn bad_literals_are_syntax_errors() {
    for text in [
        r#"const string X = "\q";"#,
        r#"const string X = "\u{D800}";"#,
        r#"const string X = "unterminated;"#,
        "const u64 X = 0x;",
        "const u64 X = 12abc;",
        "const u64 X = 1.;",
        "const u64 X = 999999999999999999999999999999999999999999;",
    ] {
        let parsed = parse(text);
        assert_eq!(parsed.errors.len(), 1, "{text}: {:#?}", parsed.errors);
    }
}

#[test]
fn comments_anywhere_whitespace_is() {
    let text = "struct /* a */ A /* b */ { // c\n 1 /* d */ : /* e */ list /* f */ < /* g */ u32 /* h */ > /* i */ xs /* j */ ; //// not a doc\n}";
    let file = ok(text);
    assert_eq!(only_struct(&file).fields.len(), 1);
}

#[test]
fn doc_comments_only_before_documented_things() {
    assert!(
        !parse("struct A { 1: u32 a; /// dangling\n}")
            .errors
            .is_empty()
    );
    assert!(
        !parse("struct A { 1: /// inside\n u32 a; }")
            .errors
            .is_empty()
    );
    assert!(!parse("/// at the end").errors.is_empty());
}

#[test]
fn every_broken_declaration_is_reported() {
    let text = "struct A { 1: u32 a }\nstruct B { 1: u32 b; }\nenum C { X = 0 }\n@tag\nstruct D { 1 u32 d; }\nstruct E { 1: u32 e; }";
    let parsed = parse(text);
    assert_eq!(parsed.errors.len(), 3, "{:#?}", parsed.errors);
    let names: Vec<_> = parsed
        .file
        .decls
        .iter()
        .map(|d| d.name().name.clone())
        .collect();
    assert_eq!(names, ["B", "E"]);
}

#[test]
fn syntax_error_messages_say_what_was_expected() {
    let message = |text: &str| match parse(text).errors.first() {
        Some(idlc::DiagnosticKind::Syntax { message, .. }) => message.clone(),
        other => panic!("{other:#?}"),
    };
    assert_eq!(
        message("struct A { 1: u32 a }"),
        "expected `;` or `=`, found `}`"
    );
    assert_eq!(
        message("struct A { 1 u32 a; }"),
        "expected `:`, found `u32`"
    );
    assert_eq!(
        message("struct A { 1: list<u32 a; }"),
        "expected `>`, found `a`"
    );
    assert!(message("strct A {}").starts_with("expected a declaration"));
}

#[test]
fn a_missing_closing_brace_names_the_open_one() {
    for (text, what, open) in [
        ("struct A {", "struct `A`", 9),
        ("struct A {\n  1: u32 a;\n", "struct `A`", 9),
        ("enum E {\n  A = 0;\n@x\nstruct B {}", "enum `E`", 7),
        (
            "service S {\n  void f();\n/// B.\nunion B { 1: u32 b; }",
            "service `S`",
            10,
        ),
    ] {
        match parse(text).errors.first() {
            Some(idlc::DiagnosticKind::UnclosedBrace {
                what: found_what,
                open: found_open,
                ..
            }) => {
                assert_eq!(found_what, what, "{text}");
                assert_eq!(found_open.offset(), open, "{text}");
            }
            other => panic!("{text}: {other:#?}"),
        }
    }
}

fn nested(levels: usize) -> String {
    format!(
        "struct Deep {{ 1: {}u32{} x; }}",
        "list<".repeat(levels),
        ">".repeat(levels)
    )
}

#[test]
fn nesting_up_to_the_limit_parses() {
    let text = nested(MAX_NESTING);
    // On a small stack, to show the limit leaves plenty of room.
    let errors = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || parse(&text).errors.len())
        .expect("spawn")
        .join()
        .expect("no stack overflow");
    assert_eq!(errors, 0);
}

#[test]
fn ten_thousand_nested_levels_give_an_error_not_a_stack_overflow() {
    let text = nested(10_000);
    // A thread with the default (normal) stack size.
    let errors = std::thread::spawn(move || parse(&text).errors)
        .join()
        .expect("no stack overflow");
    assert!(
        matches!(
            errors.as_slice(),
            [idlc::DiagnosticKind::NestingTooDeep {
                max: MAX_NESTING,
                ..
            }]
        ),
        "{errors:#?}"
    );
}

#[test]
fn deep_nesting_through_the_whole_front_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deep.rpc");
    std::fs::write(&path, nested(10_000)).expect("write");
    let diagnostics = std::thread::spawn(move || idlc::check_files(&[path]).err())
        .join()
        .expect("no stack overflow")
        .expect("an error");
    assert_eq!(diagnostics.codes(), ["idl::nesting_too_deep"]);
}
