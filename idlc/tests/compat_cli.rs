//! `idlc compat OLD NEW`: exit codes 0 (compatible), 1 (breaking), 2 (bad
//! usage, I/O, IDL errors in a version), `--allow` and `--serializer`.

use std::path::Path;
use std::process::{Command, Output};

fn idlc(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_idlc"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run idlc")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `old.rpc`, and `new.rpc` with `note` renumbered from tag 2 to 3.
fn renumbered() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write(
        "old.rpc",
        "struct Order {\n  1: u64 id;\n  2: string note;\n}\n",
    );
    write(
        "new.rpc",
        "struct Order {\n  1: u64 id;\n  3: string note;\n}\n",
    );
    write(
        "added.rpc",
        "struct Order {\n  1: u64 id;\n  2: string note;\n  3: u32 count;\n}\n",
    );
    write("broken.rpc", "struct Order {\n  1: Missing id;\n}\n");
    std::fs::create_dir(dir.path().join("tree")).expect("mkdir");
    dir
}

#[test]
fn breaking_change_exits_1_with_both_spans() {
    let dir = renumbered();
    let out = idlc(&["compat", "old.rpc", "new.rpc"], dir.path());
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("compat::field-renumbered"), "{text}");
    assert!(text.contains("[new.rpc:3:3]"), "{text}");
    assert!(text.contains("[old.rpc:3:3]"), "{text}");
    assert!(text.contains("idlc: 1 breaking change ("), "{text}");
}

#[test]
fn tolerated_change_exits_0_with_a_summary() {
    let dir = renumbered();
    let out = idlc(&["compat", "old.rpc", "added.rpc"], dir.path());
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("idlc: compatible: no breaking change from `old.rpc` to `added.rpc`"),
        "{text}"
    );
}

#[test]
fn allow_accepts_a_rule_and_validates_its_id() {
    let dir = renumbered();
    let out = idlc(
        &[
            "compat",
            "old.rpc",
            "new.rpc",
            "--allow",
            "field-renumbered",
        ],
        dir.path(),
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1 allowed"), "{text}");

    let unknown = idlc(
        &["compat", "old.rpc", "new.rpc", "--allow", "field-moved"],
        dir.path(),
    );
    let text = stderr(&unknown);
    assert_eq!(unknown.status.code(), Some(2), "{text}");
    assert!(text.contains("field-moved"), "{text}");
    for id in [
        "field-renumbered",
        "service-removed",
        "postcard-layout-changed",
    ] {
        assert!(text.contains(id), "the valid ids are listed: {text}");
    }
}

#[test]
fn serializer_choice_changes_what_breaks() {
    let dir = renumbered();
    // JSON finds fields by name: a new tag does not matter.
    let json = idlc(
        &["compat", "old.rpc", "new.rpc", "--serializer", "json"],
        dir.path(),
    );
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    assert!(
        stderr(&json).contains("checked for JSON"),
        "{}",
        stderr(&json)
    );
    // postcard finds fields by position: an appended field breaks it.
    let postcard = idlc(
        &["compat", "old.rpc", "added.rpc", "--serializer", "postcard"],
        dir.path(),
    );
    let text = stderr(&postcard);
    assert_eq!(postcard.status.code(), Some(1), "{text}");
    assert!(text.contains("compat::postcard-layout-changed"), "{text}");
    let all = idlc(
        &["compat", "old.rpc", "added.rpc", "--serializer", "all"],
        dir.path(),
    );
    assert_eq!(all.status.code(), Some(1), "{}", stderr(&all));
    let unknown = idlc(
        &["compat", "old.rpc", "new.rpc", "--serializer", "xml"],
        dir.path(),
    );
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
}

#[test]
fn idl_errors_and_bad_paths_exit_2() {
    let dir = renumbered();
    let broken = idlc(&["compat", "old.rpc", "broken.rpc"], dir.path());
    let text = stderr(&broken);
    assert_eq!(broken.status.code(), Some(2), "{text}");
    assert!(text.contains("idl::unknown_type"), "{text}");
    assert!(text.contains("the new version has 1 error"), "{text}");

    let missing = idlc(&["compat", "old.rpc", "gone.rpc"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("`gone.rpc` does not exist"));

    let mixed = idlc(&["compat", "old.rpc", "tree"], dir.path());
    assert_eq!(mixed.status.code(), Some(2));
    assert!(stderr(&mixed).contains("both be files or both be directories"));

    let empty = idlc(&["compat", "tree", "tree"], dir.path());
    assert_eq!(empty.status.code(), Some(2));
    assert!(stderr(&empty).contains("no `.rpc` file under `tree`"));
}

#[test]
fn directory_trees_are_compared_whole() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compat-trees");
    let out = idlc(&["compat", "old", "new"], &fixtures);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("compat::service-removed"), "{text}");
    assert!(text.contains("[old/billing/invoices.rpc:3:9]"), "{text}");
    assert!(text.contains("compat::field-removed"), "{text}");
    assert!(text.contains("idlc: 2 breaking changes"), "{text}");
    // The same tree against itself is compatible.
    let same = idlc(&["compat", "old", "old"], &fixtures);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
}

/// Two fields of different struct types that swap places keep their tags
/// and names, but postcard reads them by position: exit 1 under postcard,
/// 0 under the default set.
#[test]
fn swapped_struct_fields_exit_1_under_postcard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let types = "struct A {\n  1: string s;\n}\n\nstruct B {\n  1: u64 n;\n}\n\n";
    let write =
        |name: &str, text: String| std::fs::write(dir.path().join(name), text).expect("write");
    write(
        "old.rpc",
        format!("{types}struct S {{\n  1: A a;\n  2: B b;\n}}\n"),
    );
    write(
        "new.rpc",
        format!("{types}struct S {{\n  2: B b;\n  1: A a;\n}}\n"),
    );
    let postcard = idlc(
        &["compat", "old.rpc", "new.rpc", "--serializer", "postcard"],
        dir.path(),
    );
    let text = stderr(&postcard);
    assert_eq!(postcard.status.code(), Some(1), "{text}");
    assert!(text.contains("compat::postcard-layout-changed"), "{text}");
    assert!(
        text.contains("`B` is laid out differently from `A`"),
        "{text}"
    );
    let default = idlc(&["compat", "old.rpc", "new.rpc"], dir.path());
    assert_eq!(default.status.code(), Some(0), "{}", stderr(&default));
}

/// An added enum variant is a warning: shown, counted, exit 0.
#[test]
fn an_added_enum_value_warns_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("old.rpc", "enum Status {\n  PENDING = 0;\n}\n");
    write("new.rpc", "enum Status {\n  PENDING = 0;\n  PAID = 1;\n}\n");
    let out = idlc(&["compat", "old.rpc", "new.rpc"], dir.path());
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("compat::enum-value-added"), "{text}");
    assert!(text.contains("(1 warning, 0 allowed;"), "{text}");
    let protobuf = idlc(
        &["compat", "old.rpc", "new.rpc", "--serializer", "protobuf"],
        dir.path(),
    );
    assert_eq!(
        stderr(&protobuf).lines().count(),
        1,
        "{}",
        stderr(&protobuf)
    );
}
