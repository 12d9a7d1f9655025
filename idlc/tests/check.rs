//! Checker tests: the models it produces (resolution, boxing, wire names,
//! annotations, defaults), imports, and robustness on broken input.

use std::path::{Path, PathBuf};

use idlc::model::*;
use idlc::{CheckOptions, analyze, check_files, check_files_with};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ok")
        .join(name)
}

/// Writes files into a temporary directory.
fn files(contents: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in contents {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn check_one(text: &str) -> Result<FileModel, idlc::Diagnostics> {
    let dir = files(&[("main.rpc", text)]);
    let checked = check_files(&[dir.path().join("main.rpc")])?;
    Ok(checked.files.into_iter().next().expect("one model"))
}

fn codes(text: &str) -> Vec<String> {
    match check_one(text) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics.codes(),
    }
}

fn struct_def<'a>(model: &'a FileModel, name: &str) -> &'a StructDef {
    model
        .types
        .iter()
        .find_map(|t| match t {
            TypeDef::Struct(s) if s.name == name => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no struct {name}"))
}

fn field<'a>(def: &'a StructDef, name: &str) -> &'a Field {
    def.fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

#[test]
fn the_idl_md_example_checks() {
    let checked = check_files(&[fixture("orders.rpc")]).expect("no errors");
    assert!(checked.warnings.is_empty(), "{}", checked.warnings);
    let modules: Vec<_> = checked
        .files
        .iter()
        .map(|f| f.module_name.as_str())
        .collect();
    assert_eq!(modules, ["orders", "common"]);
    assert_eq!(checked.files_read.len(), 2);
    let orders = &checked.files[0];
    assert_eq!(orders.package.as_deref(), Some("shop.orders"));
    assert_eq!(
        orders.constants,
        [ConstDef {
            name: "MAX_ITEMS".into(),
            ty: Scalar::U32,
            value: Value::Int(100),
            docs: vec![],
        }]
    );

    let line_item = struct_def(orders, "LineItem");
    assert_eq!(field(line_item, "quantity").default, Some(Value::Int(1)));
    assert_eq!(
        field(line_item, "price").ty,
        FieldType::Named(TypeRef {
            package: Some("common".into()),
            module_name: "common".into(),
            name: "Money".into(),
            kind: TypeKind::Struct,
        })
    );

    let order = struct_def(orders, "Order");
    let parent = field(order, "parent");
    assert!(parent.boxed, "optional Order inside Order is boxed");
    assert!(!field(order, "note").boxed);
    assert_eq!(
        field(order, "labels").ty,
        FieldType::Map(Scalar::String, Box::new(FieldType::Scalar(Scalar::String)))
    );
    assert!(
        matches!(&field(order, "payment").ty, FieldType::Named(t) if t.kind == TypeKind::Union)
    );

    let out_of_stock = struct_def(orders, "OutOfStock");
    assert!(out_of_stock.is_error);
    assert_eq!(out_of_stock.docs, ["Raised when stock is short."]);

    let service = &orders.services[0];
    assert_eq!(service.wire_name, "shop.orders.OrderService:2");
    assert_eq!(service.version.as_deref(), Some("2"));
    assert_eq!(service.docs, ["Order management."]);
    let [place, get, search, cancel, track] = service.methods.as_slice() else {
        panic!("{:#?}", service.methods)
    };
    assert_eq!(place.docs, ["Places an order."]);
    assert_eq!(place.throws[0].name, "OutOfStock");
    assert_eq!(place.throws[0].kind, TypeKind::Error);
    assert!(get.idempotent);
    assert_eq!(get.timeout_ms, Some(200));
    assert!(get.params[0].hash_key);
    assert!(!search.idempotent);
    assert_eq!(search.params[1].default, Some(Value::Int(20)));
    assert!(matches!(search.returns, Some(FieldType::List(_))));
    assert_eq!(cancel.returns, None);
    assert!(track.oneway);
    assert!(track.throws.is_empty());

    let common = &checked.files[1];
    let card = struct_def(common, "Card");
    assert!(!field(card, "limit").boxed);
    assert_eq!(
        field(struct_def(common, "Money"), "currency").default,
        Some(Value::String("EUR".into()))
    );
}

#[test]
fn boxing_follows_cycles_through_structs_and_unions() {
    let model = check_one(
        "struct A { 1: optional B b; 2: optional C c; 3: optional A me; }\n\
         union B { 1: A a; 2: string s; }\n\
         struct C { 1: list<A> all; }\n\
         struct D { 1: optional C c; }",
    )
    .expect("no errors");
    let a = struct_def(&model, "A");
    assert!(field(a, "b").boxed, "A -> B -> A");
    assert!(!field(a, "c").boxed, "C holds A only through a list");
    assert!(field(a, "me").boxed);
    assert!(!field(struct_def(&model, "D"), "c").boxed);
}

#[test]
fn infinite_size_through_several_types() {
    assert_eq!(
        codes("struct A { 1: B b; }\nstruct B { 1: C c; }\nstruct C { 1: A a; }"),
        ["idl::infinite_size"]
    );
    assert!(codes("struct A { 1: list<A> a; 2: map<string, A> m; 3: optional A o; }").is_empty());
}

#[test]
fn collections_nest_to_any_depth() {
    for ty in [
        "list<list<u32>>",
        "list<map<string, u32>>",
        "map<string, list<string>>",
        "map<u32, map<bool, bytes>>",
        "list<list<list<map<u32, list<u32>>>>>",
    ] {
        for text in [
            format!("struct A {{ 1: {ty} a; }}"),
            format!("union U {{ 1: {ty} a; }}"),
            format!("service S {{ {ty} m(1: {ty} p); }}"),
        ] {
            assert!(codes(&text).is_empty(), "{text}: {:?}", codes(&text));
        }
    }
    // Optional elements and optional collections stay errors, at any depth.
    assert_eq!(
        codes("struct A { 1: list<optional list<u32>> a; }"),
        ["idl::optional_element", "idl::optional_list"]
    );
    assert_eq!(
        codes("struct A { 1: map<u32, list<optional u32>> a; }"),
        ["idl::optional_element"]
    );
    // Map keys are still scalars only.
    assert_eq!(
        codes("struct A { 1: map<list<u32>, u32> a; }"),
        ["idl::map_key_type"]
    );
}

/// Names generated code could not keep apart are reported at the IDL line
/// (never a rustc error in `OUT_DIR`); everything else is kept apart by
/// construction (IDL.md: every valid file compiles).
#[test]
fn generated_name_collisions_are_reported_where_construction_cannot_avoid_them() {
    // Two methods whose args messages are both `Foo2barArgs`.
    assert_eq!(
        codes("service S { void foo2bar(); void foo_2bar(); }"),
        ["idl::generated_name_collision"]
    );
    // The trait of service `GetError` and the error enum of its `get`.
    assert_eq!(
        codes("error E {}\nservice GetError { void get() throws E; }"),
        ["idl::generated_name_collision"]
    );
    // Union arms whose variants are both `A1b` (arms are checked as
    // variants).
    assert_eq!(
        codes("union U { 1: u32 a1b; 2: u32 a_1b; }"),
        ["idl::rust_name_collision"]
    );
    // Two declared errors named alike in different packages.
    let diagnostics = idlc::check_sources(
        &[
            ("a.rpc".into(), "package a;\nerror NotFound {}".into()),
            (
                "b.rpc".into(),
                "package b;\nimport \"a.rpc\";\nerror NotFound {}\nservice S { void get() throws NotFound, a.NotFound; }".into(),
            ),
        ],
        &["b.rpc"],
    )
    .expect_err("a clash");
    assert_eq!(diagnostics.codes(), ["idl::generated_name_collision"]);
    // Kept apart by construction: two services' `get` errors, a user type
    // named like a generated one, client methods named like the client's
    // own API, keywords, prelude names.
    for text in [
        "error E {}\nservice A { void get() throws E; }\nservice B { void get() throws E; }",
        "error NotFound {}\nstruct LookupError {}\nstruct StoreClient {}\nservice Store { void lookup() throws NotFound; }",
        "service Tricky { void new(); void clone(); void options(); void with_timeout(1: u32 ctx); void channel(); void core(); }",
        "struct String { 1: string s; }\nstruct Option { 1: list<String> v; }\nservice Result { Option get(1: optional String ctx, 2: string call_ctx); }",
        "struct type { 1: u32 self; }\nservice loop { type fn(1: type impl); }",
    ] {
        assert!(codes(text).is_empty(), "{text}: {:?}", codes(text));
    }
}

fn method<'a>(model: &'a FileModel, name: &str) -> &'a Method {
    model.services[0]
        .methods
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no method {name}"))
}

#[test]
fn server_streaming_methods_are_modelled() {
    let model = check_one(
        "error TooMany { 1: u32 max; }\n\
         struct Quote { 1: string symbol; }\n\
         service Greeter {\n\
           @idempotent @timeout(ms = 5000)\n\
           stream u32 count(1: u32 n, 2: u32 interval_ms) throws TooMany;\n\
           stream list<Quote> pages(1: string symbol);\n\
           u32 plain();\n\
         }",
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    let count = method(&model, "count");
    assert_eq!(
        count.streaming,
        Streaming::Server {
            item: FieldType::Scalar(Scalar::U32)
        }
    );
    assert_eq!(count.streaming.shape(), "server streaming");
    // The response of a stream carries the empty message.
    assert_eq!(count.returns, None);
    assert_eq!(count.throws.len(), 1);
    assert!(count.idempotent);
    assert_eq!(count.timeout_ms, Some(5000));
    let names: Vec<&str> = count.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["n", "interval_ms"]);
    assert!(count.streaming.client_param().is_none());
    let pages = method(&model, "pages");
    assert!(matches!(
        pages.streaming.server_item(),
        Some(FieldType::List(item)) if matches!(item.as_ref(), FieldType::Named(r) if r.name == "Quote")
    ));
    let plain = method(&model, "plain");
    assert!(plain.streaming.is_unary());
    assert_eq!(plain.returns, Some(FieldType::Scalar(Scalar::U32)));
    let spans = model.spans.method("Greeter", "count").expect("spans");
    assert!(spans.stream.is_some());
    assert!(
        model
            .spans
            .method("Greeter", "plain")
            .expect("spans")
            .stream
            .is_none()
    );
}

/// Everything about streams that `check` rejects, each with its code.
#[test]
fn stream_mistakes() {
    let service = |body: &str| format!("service S {{ {body} }}");
    let cases: &[(&str, &[&str])] = &[
        ("oneway stream u32 a();", &["idl::oneway_with_stream"]),
        (
            "oneway void a(1: stream u32 x);",
            &["idl::streaming_not_supported", "idl::oneway_with_stream"],
        ),
        ("stream void a();", &["idl::stream_void"]),
        (
            "u64 a(1: stream u32 x, 2: stream u32 y);",
            &[
                "idl::streaming_not_supported",
                "idl::multiple_stream_params",
            ],
        ),
        (
            "u64 a(1: stream u32 x, 2: u32 y);",
            &["idl::streaming_not_supported", "idl::stream_param_not_last"],
        ),
        (
            "u64 a(1: u32 x, 2: stream u32 y);",
            &["idl::streaming_not_supported"],
        ),
        (
            "stream string a(1: stream string words);",
            &["idl::streaming_not_supported"],
        ),
        (
            "u64 a(1: stream u32 x @hash_key);",
            &["idl::streaming_not_supported", "idl::hash_key_type"],
        ),
        (
            "u64 a(1: stream u32 x = 4);",
            &["idl::streaming_not_supported", "idl::unexpected_default"],
        ),
        (
            "u64 a(1: u32 x, 1: stream u32 y);",
            &["idl::duplicate_tag", "idl::streaming_not_supported"],
        ),
        ("stream a();", &["idl::unknown_type"]),
    ];
    for (body, expected) in cases {
        assert_eq!(&codes(&service(body)), expected, "{body}");
    }
}

/// A streaming method's client forms are its name and `_blocking`; it
/// reserves `_future` and `_with_callback` too, like every method, so a
/// change of shape never makes a clash.
#[test]
fn streaming_methods_reserve_their_client_forms() {
    for other in ["count_blocking", "count_future", "countWithCallback"] {
        let text = format!("service S {{ stream u32 count(); u32 {other}(); }}");
        assert_eq!(codes(&text), ["idl::rust_name_collision"], "{other}");
    }
}

/// `stream` stays a name: files that used it before streams still check.
#[test]
fn stream_as_a_name_still_checks() {
    let model = check_one(
        "struct stream { 1: u32 stream; }\n\
         service Streams {\n\
           stream stream(1: stream stream);\n\
           stream stream items(1: u32 stream);\n\
         }",
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    let unary = method(&model, "stream");
    assert!(unary.streaming.is_unary());
    assert!(matches!(&unary.returns, Some(FieldType::Named(r)) if r.name == "stream"));
    assert_eq!(unary.params[0].name, "stream");
    let items = method(&model, "items");
    assert!(matches!(
        items.streaming.server_item(),
        Some(FieldType::Named(r)) if r.name == "stream"
    ));
}

#[test]
fn defaults_of_each_type() {
    let model = check_one(
        "enum Color { RED = 0; BLUE = 1; }\n\
         struct S { 1: bool b = true; 2: i32 i = -5; 3: f32 f = 1; 4: f64 g = -2e10;\n\
         5: string s = \"x\"; 6: Color c = BLUE; 7: u64 big = 0xFFFFFFFFFFFFFFFF; 8: bytes raw = \"ab\"; }",
    )
    .expect("no errors");
    let s = struct_def(&model, "S");
    let defaults: Vec<_> = s.fields.iter().map(|f| f.default.clone()).collect();
    assert_eq!(
        defaults,
        [
            Some(Value::Bool(true)),
            Some(Value::Int(-5)),
            Some(Value::Float(1.0)),
            Some(Value::Float(-2e10)),
            Some(Value::String("x".into())),
            Some(Value::EnumVariant("BLUE".into())),
            Some(Value::Int(i128::from(u64::MAX))),
            Some(Value::String("ab".into())),
        ]
    );
}

#[test]
fn wire_names() {
    let model = check_one("service Plain {}\n@version(\"v3\") service Versioned {}").expect("ok");
    let names: Vec<_> = model
        .services
        .iter()
        .map(|s| s.wire_name.as_str())
        .collect();
    assert_eq!(names, ["Plain", "Versioned:v3"]);
}

#[test]
fn rust_keywords_are_legal_names() {
    let model = check_one(
        "struct type { 1: u32 match; 2: string self; }\nservice async { void fn(1: u32 type); }",
    );
    assert!(model.is_ok(), "{:?}", model.err());
}

#[test]
fn unknown_annotations_only_warn() {
    let dir = files(&[("main.rpc", "@shiny struct A { 1: u32 a; }")]);
    let checked = check_files(&[dir.path().join("main.rpc")]).expect("warnings pass");
    assert_eq!(checked.warnings.codes(), ["idl::unknown_annotation"]);
    assert!(checked.warnings.render().contains("shiny"));
}

#[test]
fn near_misses_of_known_annotations_are_errors() {
    for (text, meant) in [
        ("service S { @idempotnet void f(); }", "@idempotent"),
        ("service S { @time_out(ms = 5) void f(); }", "@timeout"),
        ("service S { void f(1: u64 id @hashkey); }", "@hash_key"),
        ("@Version(\"2\") service S { void f(); }", "@version"),
    ] {
        let diagnostics = check_one(text).expect_err(text);
        assert_eq!(
            diagnostics.codes(),
            ["idl::misspelled_annotation"],
            "{diagnostics}"
        );
        assert_eq!(diagnostics.error_count(), 1, "{diagnostics}");
        assert!(
            diagnostics
                .render()
                .contains(&format!("did you mean `{meant}`?")),
            "{diagnostics}"
        );
    }
    // Far from every known name: a warning, the file still checks.
    let model = check_one("service S { @deprecated @since(\"2\") void f(); }");
    assert!(model.is_ok(), "{:?}", model.err());
}

#[test]
fn did_you_mean_counts_a_swap_of_two_letters_as_one_edit() {
    let diagnostics = check_one("struct Item { 1: u32 x; }\nstruct Order { 1: Itme item; }")
        .expect_err("unknown");
    assert_eq!(diagnostics.codes(), ["idl::unknown_type"]);
    assert!(
        diagnostics.render().contains("did you mean `Item`?"),
        "{diagnostics}"
    );
}

#[test]
fn imports_are_relative_transitive_and_qualified() {
    let dir = files(&[
        (
            "api/main.rpc",
            "package api;\nimport \"../lib/mid.rpc\";\nstruct A { 1: mid.M m; 2: base.B b; }",
        ),
        (
            "lib/mid.rpc",
            "package mid;\nimport \"base.rpc\";\nstruct M { 1: base.B b; }",
        ),
        ("lib/base.rpc", "package base;\nstruct B { 1: u32 x; }"),
    ]);
    let checked = check_files(&[dir.path().join("api/main.rpc")]).expect("no errors");
    let modules: Vec<_> = checked
        .files
        .iter()
        .map(|f| f.module_name.as_str())
        .collect();
    assert_eq!(modules, ["main", "mid", "base"]);
    assert_eq!(checked.files_read.len(), 3);
    let a = struct_def(&checked.files[0], "A");
    assert!(matches!(&field(a, "b").ty, FieldType::Named(t) if t.module_name == "base"));
}

#[test]
fn bare_names_only_within_the_package() {
    let dir = files(&[
        (
            "main.rpc",
            "package app;\nimport \"money.rpc\";\nstruct A { 1: Money m; }",
        ),
        ("money.rpc", "package pay;\nstruct Money { 1: i64 units; }"),
    ]);
    let diagnostics =
        check_files(&[dir.path().join("main.rpc")]).expect_err("bare name of another package");
    assert_eq!(diagnostics.codes(), ["idl::unknown_type"]);
    assert!(
        diagnostics.render().contains("`pay.Money`"),
        "{diagnostics}"
    );
}

#[test]
fn a_type_in_a_file_of_the_same_run_that_is_not_imported_suggests_the_import() {
    let dir = files(&[
        (
            "idl/shop/orders.rpc",
            "package shop;\nstruct A { 1: Money m; }",
        ),
        (
            "idl/common/money.rpc",
            "package common;\nstruct Money { 1: i64 units; }",
        ),
    ]);
    let roots = [
        dir.path().join("idl/shop/orders.rpc"),
        dir.path().join("idl/common/money.rpc"),
    ];
    let diagnostics = check_files(&roots).expect_err("not imported");
    assert_eq!(diagnostics.codes(), ["idl::unknown_type"]);
    let rendered = diagnostics.render();
    assert!(
        rendered.contains("`Money` is declared in package `common`"),
        "{rendered}"
    );
    assert!(
        rendered.contains("`import \"../common/money.rpc\";`"),
        "{rendered}"
    );
    assert!(rendered.contains("write `common.Money`"), "{rendered}");
    // Following the hint fixes the file.
    std::fs::write(
        &roots[0],
        "package shop;\nimport \"../common/money.rpc\";\nstruct A { 1: common.Money m; }",
    )
    .expect("write");
    check_files(&roots).expect("fixed");
    // Checked alone, the other file is not part of the run: no such hint.
    std::fs::write(&roots[0], "package shop;\nstruct A { 1: Money m; }").expect("write");
    let alone = check_files(&roots[..1]).expect_err("unknown");
    assert!(!alone.render().contains("import \""), "{alone}");
}

#[test]
fn same_package_across_files_and_files_without_package() {
    let dir = files(&[
        (
            "a.rpc",
            "package shop;\nimport \"b.rpc\";\nimport \"plain.rpc\";\nstruct A { 1: B b; 2: shop.B b2; 3: P p; }",
        ),
        ("b.rpc", "package shop;\nstruct B { 1: u32 x; }"),
        ("plain.rpc", "struct P { 1: u32 x; }"),
    ]);
    check_files(&[dir.path().join("a.rpc")]).expect("no errors");
}

#[test]
fn duplicate_types_across_files_of_one_package() {
    let dir = files(&[
        (
            "a.rpc",
            "package shop;\nimport \"b.rpc\";\nstruct Dup { 1: u32 x; }",
        ),
        ("b.rpc", "package shop;\nstruct Dup { 1: u32 x; }"),
    ]);
    let diagnostics = check_files(&[dir.path().join("a.rpc")]).expect_err("duplicate");
    assert_eq!(diagnostics.codes(), ["idl::duplicate_type"]);
}

#[test]
fn include_directories() {
    let dir = files(&[
        (
            "src/main.rpc",
            "import \"common.rpc\";\nstruct A { 1: C c; }",
        ),
        ("inc/common.rpc", "struct C { 1: u32 x; }"),
    ]);
    let main = dir.path().join("src/main.rpc");
    let diagnostics = check_files(&[&main]).expect_err("not found without -I");
    assert_eq!(diagnostics.codes(), ["idl::unresolved_import"]);
    let options = CheckOptions::new().include(dir.path().join("inc"));
    check_files_with(&[&main], &options).expect("found with -I");
}

#[test]
fn files_read_are_known_even_with_errors() {
    let dir = files(&[
        (
            "main.rpc",
            "import \"other.rpc\";\nstruct A { 1: Missing m; }",
        ),
        ("other.rpc", "struct B { 1: u32 x; }"),
    ]);
    let analysis = analyze(&[dir.path().join("main.rpc")], &CheckOptions::new());
    assert!(analysis.has_errors());
    assert!(analysis.files.is_empty());
    assert_eq!(analysis.files_read.len(), 2);
}

#[test]
fn a_missing_named_file_is_an_error_without_source() {
    let analysis = analyze(&["/definitely/not/here.rpc"], &CheckOptions::new());
    assert_eq!(analysis.diagnostics.codes(), ["idl::unreadable_file"]);
}

#[test]
fn never_panics_on_any_prefix_of_a_valid_file() {
    let text = std::fs::read_to_string(fixture("orders.rpc")).expect("read");
    let common = std::fs::read_to_string(fixture("common.rpc")).expect("read");
    let dir = files(&[("common.rpc", &common)]);
    let path = dir.path().join("orders.rpc");
    let mut cut = 0;
    while cut <= text.len() {
        if text.is_char_boundary(cut) {
            std::fs::write(&path, &text[..cut]).expect("write");
            let _ = analyze(&[&path], &CheckOptions::new());
        }
        cut += 7;
    }
}

#[test]
fn never_panics_on_mutated_input() {
    let text = std::fs::read_to_string(fixture("orders.rpc")).expect("read");
    let dir = files(&[]);
    let path = dir.path().join("m.rpc");
    let alphabet = b"{}<>();:=,.@\"/*\\ \nabcXYZ019-_";
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut bytes = text.as_bytes().to_vec();
        for _ in 0..(next() % 8 + 1) {
            let at = (next() as usize) % bytes.len();
            let with = alphabet[(next() as usize) % alphabet.len()];
            match next() % 3 {
                0 => bytes[at] = with,
                1 => bytes.insert(at, with),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        std::fs::write(&path, &bytes).expect("write");
        let analysis = analyze(&[&path], &CheckOptions::new());
        let _ = analysis.diagnostics.render();
    }
}
