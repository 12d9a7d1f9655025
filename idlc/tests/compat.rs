//! `idlc compat`: one fixture pair per rule, both ways, under
//! `tests/fixtures/compat/<rule>/{breaking,tolerated}/{old,new}.rpc` (an
//! optional `serializers` file names the serializers the case is checked
//! for; otherwise the default set). Each case's rendered findings are
//! snapshotted.

use std::path::{Path, PathBuf};

use idlc::compat::{self, Incompatibility, Rule, Serializer, SerializerSet};

/// The path relative to the crate, so snapshots do not depend on where the
/// repository is.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .to_path_buf()
}

fn serializers_of(case: &Path) -> SerializerSet {
    match std::fs::read_to_string(case.join("serializers")) {
        Ok(text) => SerializerSet::of(text.trim().split(',').map(|id| {
            Serializer::from_id(id.trim()).unwrap_or_else(|| panic!("unknown serializer {id:?}"))
        })),
        Err(_) => SerializerSet::DEFAULT,
    }
}

fn compare_case(case: &Path, serializers: SerializerSet) -> Vec<Incompatibility> {
    let case = relative(case);
    let (old, new) = compat::load_pair(&case.join("old.rpc"), &case.join("new.rpc"))
        .unwrap_or_else(|error| panic!("{}: {error}", case.display()));
    compat::compare(&old, &new, serializers)
}

fn render(findings: &[Incompatibility], serializers: SerializerSet) -> String {
    let mut out = format!("checked for {serializers}\n");
    if findings.is_empty() {
        out.push_str("compatible: nothing to report\n");
    }
    for finding in findings {
        out.push_str(&finding.render());
    }
    out
}

#[test]
fn one_breaking_and_one_tolerated_case_per_rule() {
    insta::glob!("fixtures/compat/*/*/old.rpc", |path| {
        let case = path.parent().expect("case dir");
        let kind = case
            .file_name()
            .expect("kind")
            .to_string_lossy()
            .into_owned();
        let rule_dir = case.parent().expect("rule dir");
        let id = rule_dir
            .file_name()
            .expect("rule")
            .to_string_lossy()
            .into_owned();
        let rule = Rule::from_id(&id).unwrap_or_else(|| panic!("no rule `{id}`"));
        let serializers = serializers_of(case);
        let findings = compare_case(case, serializers);
        let rendered = render(&findings, serializers);
        let rules: Vec<Rule> = findings.iter().map(Incompatibility::rule).collect();
        match kind.as_str() {
            "breaking" => {
                assert!(
                    rules.contains(&rule),
                    "{id}: expected the rule, got {rules:?}\n{rendered}"
                );
                let finding = findings.iter().find(|f| f.rule() == rule).expect("found");
                assert_eq!(finding.is_breaking(), rule.is_breaking());
                assert!(finding.old_location().is_some(), "{rendered}");
                assert!(rendered.contains(&format!("compat::{id}")), "{rendered}");
            }
            "tolerated" => assert!(
                findings.is_empty(),
                "{id}: expected nothing, got {rules:?}\n{rendered}"
            ),
            other => panic!("unexpected case kind `{other}`"),
        }
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn every_rule_has_both_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compat");
    for rule in Rule::ALL {
        for kind in ["breaking", "tolerated"] {
            let case = root.join(rule.id()).join(kind);
            assert!(case.join("old.rpc").is_file(), "missing {}", case.display());
            assert!(case.join("new.rpc").is_file(), "missing {}", case.display());
        }
    }
    let dirs = std::fs::read_dir(&root).expect("fixtures").count();
    assert_eq!(dirs, Rule::ALL.len(), "a fixture directory names no rule");
}

#[test]
fn rule_ids_round_trip_and_are_kebab_case() {
    for rule in Rule::ALL {
        assert_eq!(Rule::from_id(rule.id()), Some(rule));
        assert!(
            rule.id()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-'),
            "{}",
            rule.id()
        );
    }
    assert_eq!(Rule::from_id("no-such-rule"), None);
}

/// postcard encodes fields by position: a field appended to a struct breaks
/// it, and the default set (without postcard) lets it pass.
#[test]
fn postcard_rules_only_when_asked_for() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compat/postcard-layout-changed/breaking");
    assert!(compare_case(&case, SerializerSet::DEFAULT).is_empty());
    let rules: Vec<Rule> = compare_case(&case, SerializerSet::ALL)
        .iter()
        .map(Incompatibility::rule)
        .collect();
    assert_eq!(
        rules,
        [Rule::PostcardLayoutChanged, Rule::PostcardLayoutChanged]
    );
}

/// Whole trees: files paired by what they declare (package and name), a
/// file gone from the new tree takes its services with it, a service moved
/// to another file is not a change, and a file only in the new tree is an
/// addition.
#[test]
fn directory_trees() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compat-trees");
    let (old, new) = compat::load_pair(&relative(&root.join("old")), &relative(&root.join("new")))
        .unwrap_or_else(|error| panic!("{error}"));
    let findings = compat::compare(&old, &new, SerializerSet::DEFAULT);
    let rules: Vec<Rule> = findings.iter().map(Incompatibility::rule).collect();
    assert_eq!(
        rules,
        [Rule::FieldRemoved, Rule::ServiceRemoved],
        "{findings:#?}"
    );
    insta::assert_snapshot!(render(&findings, SerializerSet::DEFAULT));
}

#[test]
fn versions_with_errors_are_not_compared() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("old.rpc"), "struct A { 1: u32 a; }\n").expect("write");
    std::fs::write(dir.path().join("new.rpc"), "struct A { 1: Missing a; }\n").expect("write");
    match compat::load_pair(&dir.path().join("old.rpc"), &dir.path().join("new.rpc")) {
        Err(compat::LoadError::Invalid { which, diagnostics }) => {
            assert_eq!(which, "new");
            assert_eq!(diagnostics.codes(), ["idl::unknown_type"]);
        }
        other => panic!("expected IDL errors, got {other:?}"),
    }
    match compat::load_pair(&dir.path().join("old.rpc"), dir.path()) {
        Err(compat::LoadError::Mismatch { .. }) => {}
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

fn compare_texts(old: &str, new: &str, serializers: SerializerSet) -> Vec<Incompatibility> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_path, new_path) = (dir.path().join("old.rpc"), dir.path().join("new.rpc"));
    std::fs::write(&old_path, old).expect("write");
    std::fs::write(&new_path, new).expect("write");
    let (old, new) = compat::load_pair(&old_path, &new_path).unwrap_or_else(|e| panic!("{e}"));
    compat::compare(&old, &new, serializers)
}

/// A field whose type is renamed: the new type's members are compared with
/// the old type's, and reported in the new type.
#[test]
fn a_renamed_type_is_compared_member_by_member() {
    let old =
        "struct Money { 1: string currency; 2: i64 cents; }\nstruct Order { 1: Money total; }\n";
    let new = "struct Price { 1: string currency; }\nstruct Order { 1: Price total; }\n";
    let findings = compare_texts(old, new, SerializerSet::DEFAULT);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].rule(), Rule::FieldRemoved);
    assert_eq!(
        findings[0].to_string(),
        "field `Money.cents` (tag 2) was removed"
    );
    let at = findings[0].new_location().expect("new side");
    assert_eq!(at.line_col(), (1, 8), "points at `Price`");
}

/// Recursive types (`Order.parent`) and every construct of the example
/// file compare with themselves without a finding.
#[test]
fn the_shop_example_is_compatible_with_itself() {
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../idl-examples/idl/shop.rpc");
    let (old, new) = compat::load_pair(&shop, &shop).unwrap_or_else(|e| panic!("{e}"));
    assert!(compat::compare(&old, &new, SerializerSet::ALL).is_empty());
}

/// Warnings are reported but are not breaking.
#[test]
fn integer_width_is_a_warning() {
    let findings = compare_texts(
        "struct C { 1: u32 n; }\n",
        "struct C { 1: u64 n; }\n",
        SerializerSet::DEFAULT,
    );
    assert_eq!(findings.len(), 1);
    assert!(!findings[0].is_breaking());
    assert!(
        findings[0]
            .render()
            .contains("compat::integer-width-changed")
    );
}

fn rules_of(findings: &[Incompatibility]) -> Vec<Rule> {
    findings.iter().map(Incompatibility::rule).collect()
}

/// postcard pairs fields by position: two fields of different struct types
/// that swap places put `Address` where old peers read `Money`, unless the
/// two types are laid out alike.
#[test]
fn swapped_fields_of_different_struct_types_break_postcard() {
    let types = "struct Money { 1: string currency; 2: i64 cents; }\nstruct Address { 1: string street; }\n";
    let old = format!("{types}struct Order {{ 1: Money total; 2: Address ship_to; }}\n");
    let new = format!("{types}struct Order {{ 2: Address ship_to; 1: Money total; }}\n");
    let findings = compare_texts(&old, &new, SerializerSet::POSTCARD);
    assert_eq!(
        rules_of(&findings),
        [Rule::PostcardLayoutChanged],
        "{findings:#?}"
    );
    assert_eq!(
        findings[0].to_string(),
        "`Order` changed at position 1: `Address ship_to`, was `Money total` \
         (`Address` is laid out differently from `Money`)"
    );
    // protobuf, JSON and MessagePack find the fields by tag or name.
    assert!(compare_texts(&old, &new, SerializerSet::DEFAULT).is_empty());
    // Two types laid out alike may stand at each other's position.
    let alike = "struct Money { 1: string currency; }\nstruct Note { 1: string text; }\n";
    let old = format!("{alike}struct Order {{ 1: Money total; 2: Note note; }}\n");
    let new = format!("{alike}struct Order {{ 2: Note note; 1: Money total; }}\n");
    assert!(compare_texts(&old, &new, SerializerSet::POSTCARD).is_empty());
    // Nested: the difference may sit one level further down.
    let nested = "struct Inner { 1: u32 n; }\nstruct Other { 1: string s; }\n\
                  struct A { 1: Inner x; }\nstruct B { 1: Other x; }\n";
    let old = format!("{nested}struct Order {{ 1: A a; 2: B b; }}\n");
    let new = format!("{nested}struct Order {{ 2: B b; 1: A a; }}\n");
    let findings = compare_texts(&old, &new, SerializerSet::POSTCARD);
    assert_eq!(
        rules_of(&findings),
        [Rule::PostcardLayoutChanged],
        "{findings:#?}"
    );
}

/// A new enum variant sent by a new peer is an unknown name to old JSON and
/// MessagePack readers: a warning for those, nothing for protobuf.
#[test]
fn an_added_enum_value_warns_for_by_name_serializers() {
    let old = "enum Status { PENDING = 0; PAID = 1; }\n";
    let new = "enum Status { PENDING = 0; PAID = 1; SHIPPED = 2; }\n";
    let findings = compare_texts(old, new, SerializerSet::DEFAULT);
    assert_eq!(rules_of(&findings), [Rule::EnumValueAdded], "{findings:#?}");
    assert!(!findings[0].is_breaking());
    assert_eq!(findings[0].breaks(), SerializerSet::BY_NAME);
    assert_eq!(
        findings[0].new_location().expect("new side").line_col(),
        (1, 38)
    );
    assert!(compare_texts(old, new, SerializerSet::PROTOBUF).is_empty());
    // A renamed variant keeps its number: that is `enum-value-renamed`.
    let renamed = "enum Status { PENDING = 0; PAYED = 1; }\n";
    let rules = rules_of(&compare_texts(old, renamed, SerializerSet::DEFAULT));
    assert_eq!(rules, [Rule::EnumValueRenamed]);
}

/// Declared errors travel as a union: protobuf and postcard by position,
/// JSON and MessagePack by the snake_case type name.
#[test]
fn throws_compares_errors_by_position_and_by_name() {
    let errors = "error NotFound { 1: u64 id; }\nerror Missing { 1: u64 id; }\n\
                  error Other { 1: string why; }\n";
    let with = |throws: &str| format!("{errors}service S {{ void f() throws {throws}; }}\n");
    // Renamed at the same position: only the by-name serializers break.
    let findings = compare_texts(&with("NotFound"), &with("Missing"), SerializerSet::ALL);
    assert_eq!(rules_of(&findings), [Rule::ThrowsAdded], "{findings:#?}");
    assert_eq!(findings[0].breaks(), SerializerSet::BY_NAME);
    let protobuf = SerializerSet::PROTOBUF.union(SerializerSet::POSTCARD);
    assert!(compare_texts(&with("NotFound"), &with("Missing"), protobuf).is_empty());
    // ... and its members are compared like any renamed type's.
    let findings = compare_texts(&with("NotFound"), &with("Other"), SerializerSet::PROTOBUF);
    assert_eq!(rules_of(&findings), [Rule::TagTypeChanged], "{findings:#?}");
}

/// An error type moved to another package keeps its position and its
/// snake_case name: nothing changes on any wire.
#[test]
fn an_error_moved_to_another_package_is_compatible() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (side, package) in [("old", "a"), ("new", "b")] {
        let root = dir.path().join(side);
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::write(
            root.join("errors.rpc"),
            format!("package {package};\n\nerror NotFound {{\n  1: u64 id;\n}}\n"),
        )
        .expect("write");
        std::fs::write(
            root.join("svc.rpc"),
            format!(
                "package svc;\n\nimport \"errors.rpc\";\n\nservice S {{\n  void f() throws {package}.NotFound;\n}}\n"
            ),
        )
        .expect("write");
    }
    let (old, new) = compat::load_pair(&dir.path().join("old"), &dir.path().join("new"))
        .unwrap_or_else(|e| panic!("{e}"));
    let findings = compat::compare(&old, &new, SerializerSet::ALL);
    assert!(findings.is_empty(), "{findings:#?}");
}
