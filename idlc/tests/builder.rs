//! `idlc::Builder`, as build scripts use it.

use std::path::Path;

use idlc::{BuildError, Builder};

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("idl")).expect("mkdir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write(
        "idl/hello.rpc",
        "package hello;\nimport \"common.rpc\";\nservice Greeter { string hi(1: common.Name name); }\n",
    );
    write(
        "idl/common.rpc",
        "package common;\n@shiny struct Name { 1: string text; }\n",
    );
    write("idl/bad.rpc", "struct Bad { 1: Nope n; }\n");
    dir
}

fn compile(builder: &Builder, files: &[&Path]) -> (Result<(), BuildError>, String) {
    let mut cargo = Vec::new();
    let result = builder.compile_with_output(files, &mut cargo);
    (result, String::from_utf8(cargo).expect("utf-8"))
}

#[test]
fn writes_modules_and_prints_rerun_if_changed_for_every_file_read() {
    let dir = project();
    let out = dir.path().join("out");
    let hello = dir.path().join("idl/hello.rpc");
    let builder = Builder::new().out_dir(&out);
    let (result, cargo) = compile(&builder, &[&hello]);
    result.expect("compiles");

    let rerun: Vec<&str> = cargo
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:rerun-if-changed="))
        .collect();
    assert_eq!(rerun.len(), 2, "{cargo}");
    assert!(rerun[0].ends_with("idl/hello.rpc"), "{cargo}");
    assert!(rerun[1].ends_with("idl/common.rpc"), "imports too: {cargo}");
    assert!(
        cargo
            .lines()
            .any(|l| l.starts_with("cargo:warning=") && l.contains("idl::unknown_annotation")),
        "{cargo}"
    );

    let hello_rs = out.join("hello.rs");
    let common_rs = out.join("common.rs");
    assert!(
        std::fs::read_to_string(&hello_rs)
            .expect("hello.rs")
            .contains("@generated")
    );
    assert!(common_rs.is_file());

    // A second run with nothing changed leaves the files alone.
    let before = std::fs::metadata(&hello_rs)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (result, _) = compile(&builder, &[&hello]);
    result.expect("compiles");
    let after = std::fs::metadata(&hello_rs)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after, "unchanged output is not rewritten");
}

#[test]
fn warnings_keep_their_help_text() {
    let dir = project();
    let hello = dir.path().join("idl/hello.rpc");
    let (result, cargo) = compile(&Builder::new().out_dir(dir.path().join("out")), &[&hello]);
    result.expect("warnings pass");
    let warnings: Vec<&str> = cargo
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:warning="))
        .collect();
    // `@shiny struct Name` in common.rpc: where and what, then the hint.
    assert_eq!(warnings.len(), 2, "{cargo}");
    assert!(
        warnings[0].ends_with(
            "common.rpc:2:1: idl::unknown_annotation: unknown annotation `@shiny` on a struct is ignored"
        ),
        "{cargo}"
    );
    assert_eq!(
        warnings[1],
        "  help: the known annotations are `@version(\"v\")` on a service, `@idempotent` and \
         `@timeout(ms = N)` on a method, and `@hash_key` on a parameter",
        "one line, never wrapped: {cargo}"
    );
}

#[test]
fn idl_errors_display_as_rendered_diagnostics() {
    let dir = project();
    let bad = dir.path().join("idl/bad.rpc");
    let (result, cargo) = compile(&Builder::new().out_dir(dir.path().join("out")), &[&bad]);
    assert!(
        cargo.contains("cargo:rerun-if-changed="),
        "even on errors: {cargo}"
    );
    let error = result.expect_err("IDL errors");
    assert!(matches!(error, BuildError::Idl(_)));
    let shown = error.to_string();
    assert!(shown.contains("idl::unknown_type"), "{shown}");
    assert!(shown.contains("unknown type `Nope`"), "{shown}");
    assert!(shown.contains("bad.rpc:1:17]"), "{shown}");
    assert!(shown.contains("1 error, 0 warnings"), "{shown}");
    // `unwrap()` in build.rs prints Debug: it must be just as readable.
    assert_eq!(format!("{error:?}"), shown);
    assert!(
        !dir.path().join("out").exists(),
        "nothing is written on errors"
    );
}

#[test]
fn without_out_dir_or_env_it_is_a_clear_error() {
    if std::env::var_os("OUT_DIR").is_some() {
        eprintln!("OUT_DIR is set in this environment; covered by the unit test instead");
        return;
    }
    let dir = project();
    let (result, cargo) = compile(&Builder::new(), &[&dir.path().join("idl/hello.rpc")]);
    let error = result.expect_err("no output directory");
    assert!(matches!(error, BuildError::NoOutDir));
    let shown = error.to_string();
    assert!(shown.contains("OUT_DIR"), "{shown}");
    assert!(shown.contains("Builder::out_dir"), "{shown}");
    assert!(cargo.is_empty());
}

#[test]
fn include_directories_resolve_imports() {
    let dir = project();
    std::fs::create_dir_all(dir.path().join("shared")).expect("mkdir");
    std::fs::write(
        dir.path().join("shared/types.rpc"),
        "struct T { 1: u32 x; }\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("idl/user.rpc"),
        "import \"types.rpc\";\nstruct U { 1: T t; }\n",
    )
    .expect("write");
    let builder = Builder::new()
        .out_dir(dir.path().join("out"))
        .include(dir.path().join("shared"));
    let (result, cargo) = compile(&builder, &[&dir.path().join("idl/user.rpc")]);
    result.expect("compiles");
    assert!(cargo.contains("shared/types.rpc"), "{cargo}");
}
