//! The `.rpc` sources idlc embeds in generated code for server reflection:
//! their names (relative, machine-independent), the import lists, and the
//! option that turns embedding off.

use std::fs;
use std::path::Path;

use idlc::codegen::{CodegenOptions, generate};
use idlc::{CheckOptions, check_files_with};

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

/// `app/main.rpc` imports `common/money.rpc` (next to it), which imports
/// `units.rpc` (next to it) and `shared/ids.rpc` (from an include dir).
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "app/main.rpc",
        "package app;\nimport \"common/money.rpc\";\nservice Till {\n  common.Money total();\n}\n",
    );
    write(
        dir.path(),
        "app/common/money.rpc",
        "package common;\nimport \"units.rpc\";\nimport \"shared/ids.rpc\";\nstruct Money {\n  1: units.Unit unit;\n  2: shared.Id id;\n}\n",
    );
    write(
        dir.path(),
        "app/common/units.rpc",
        "package units;\nenum Unit {\n  CENT = 0;\n}\n",
    );
    write(
        dir.path(),
        "include/shared/ids.rpc",
        "package shared;\nstruct Id {\n  1: u64 value;\n}\n",
    );
    dir
}

#[test]
fn names_are_relative_and_follow_the_imports() {
    let dir = project();
    let options = CheckOptions::new().include(dir.path().join("include"));
    let checked = check_files_with(&[dir.path().join("app/main.rpc")], &options)
        .unwrap_or_else(|d| panic!("checks cleanly:\n{d}"));
    let names: Vec<(&str, &str)> = checked
        .files
        .iter()
        .map(|f| (f.module_name.as_str(), f.idl_name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("main", "main.rpc"),
            ("money", "common/money.rpc"),
            ("units", "common/units.rpc"),
            ("ids", "shared/ids.rpc"),
        ]
    );
    let main = &checked.files[0];
    assert_eq!(main.imports, ["money", "units", "ids"]);
    let code = generate(main, &CodegenOptions::default());
    assert!(code.contains("name: \"main.rpc\""), "{code}");
    let flat: String = code.split_whitespace().collect();
    assert!(
        flat.contains(
            "idlsuper::IDL_SOURCE,super::super::money::IDL_SOURCE,super::super::units::IDL_SOURCE,super::super::ids::IDL_SOURCE"
        ),
        "{code}"
    );
    let money = generate(&checked.files[1], &CodegenOptions::default());
    assert!(money.contains("name: \"common/money.rpc\""), "{money}");
    assert!(
        money.contains("import \"units.rpc\";"),
        "the text is embedded as written: {money}"
    );
    let root = dir.path().to_string_lossy().into_owned();
    for file in &checked.files {
        let code = generate(file, &CodegenOptions::default());
        assert!(!code.contains(&root), "no absolute path in {code}");
    }
}

#[test]
fn embedding_can_be_turned_off() {
    let dir = project();
    let options = CheckOptions::new().include(dir.path().join("include"));
    let checked = check_files_with(&[dir.path().join("app/main.rpc")], &options)
        .unwrap_or_else(|d| panic!("checks cleanly:\n{d}"));
    let code = generate(
        &checked.files[0],
        &CodegenOptions::default().embed_idl_source(false),
    );
    assert!(!code.contains("IDL_SOURCE"), "{code}");
    assert!(!code.contains("fn idl("), "{code}");
    assert!(
        !CodegenOptions::default()
            .embed_idl_source(false)
            .embeds_idl_source()
    );
    assert!(CodegenOptions::default().embeds_idl_source());
}

#[test]
fn a_constant_cannot_take_the_embedded_source_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.rpc", "const string IDL_SOURCE = \"x\";\n");
    let diagnostics = idlc::check_files(&[dir.path().join("a.rpc")]).expect_err("reserved");
    let text = diagnostics.to_string();
    assert!(text.contains("IDL_SOURCE"), "{text}");
    assert!(text.contains("embedded"), "{text}");
}

#[test]
fn the_cli_embeds_unless_told_not_to() {
    let dir = project();
    let build = |out: &str, extra: &[&str]| {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_idlc"))
            .arg("build")
            .arg(dir.path().join("app/main.rpc"))
            .args(["-I"])
            .arg(dir.path().join("include"))
            .args(["-o"])
            .arg(dir.path().join(out))
            .args(extra)
            .output()
            .expect("run idlc");
        assert!(status.status.success(), "{status:?}");
        fs::read_to_string(dir.path().join(out).join("money.rs")).expect("money.rs")
    };
    let embedded = build("with", &[]);
    assert!(embedded.contains("pub const IDL_SOURCE"), "{embedded}");
    assert!(
        embedded.contains("name: \"common/money.rpc\""),
        "{embedded}"
    );
    let plain = build("without", &["--no-idl-source"]);
    assert!(!plain.contains("IDL_SOURCE"), "{plain}");
}
