//! The `idlc` binary: exit codes 0 (ok, warnings allowed), 1 (IDL errors or
//! stale files), 2 (bad usage), and what `build` writes.

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

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write(
        "good.rpc",
        "package demo;\nimport \"common.rpc\";\nstruct A { 1: common.C c; }\n",
    );
    write("common.rpc", "package common;\nstruct C { 1: u32 x; }\n");
    write("warn.rpc", "@shiny struct W { 1: u32 x; }\n");
    write("bad.rpc", "struct B { 1: Missing m; 1: u32 again; }\n");
    write("broken.rpc", "struct B { 1: u32 m }\n");
    dir
}

#[test]
fn check_exit_codes() {
    let dir = workspace();
    let ok = idlc(&["check", "good.rpc"], dir.path());
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stderr(&ok).is_empty(), "{}", stderr(&ok));

    let warn = idlc(&["check", "warn.rpc"], dir.path());
    assert_eq!(warn.status.code(), Some(0));
    assert!(
        stderr(&warn).contains("idl::unknown_annotation"),
        "{}",
        stderr(&warn)
    );
    assert!(
        stderr(&warn).contains("0 errors, 1 warning"),
        "{}",
        stderr(&warn)
    );

    let bad = idlc(&["check", "bad.rpc"], dir.path());
    assert_eq!(bad.status.code(), Some(1));
    let text = stderr(&bad);
    assert!(text.contains("idl::unknown_type"), "{text}");
    assert!(text.contains("idl::duplicate_tag"), "{text}");
    assert!(text.contains("[bad.rpc:1:15]"), "{text}");
    assert!(text.contains("2 errors, 0 warnings"), "{text}");

    let broken = idlc(&["check", "broken.rpc"], dir.path());
    assert_eq!(broken.status.code(), Some(1));
    assert!(stderr(&broken).contains("idl::syntax"));
}

#[test]
fn usage_errors_exit_2() {
    let dir = workspace();
    for args in [
        &["check", "missing.rpc"][..],
        &["check", "-I", "no-such-dir", "good.rpc"],
        &["check"],
        &["check", "--bogus", "good.rpc"],
        &["build", "good.rpc"],
        &["frobnicate"],
        &[],
    ] {
        let output = idlc(args, dir.path());
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn version_and_help() {
    let dir = workspace();
    let version = idlc(&["--version"], dir.path());
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("idlc "));
    let help = idlc(&["--help"], dir.path());
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Examples:"), "{text}");
    assert!(text.contains("Exit status"), "{text}");
}

#[test]
fn build_writes_changed_files_and_check_detects_stale_ones() {
    let dir = workspace();
    let out = dir.path().join("out");

    let stale = idlc(
        &["build", "good.rpc", "--out-dir", "out", "--check"],
        dir.path(),
    );
    assert_eq!(stale.status.code(), Some(1), "{}", stderr(&stale));
    assert!(stderr(&stale).contains("stale"), "{}", stderr(&stale));
    assert!(!out.exists(), "--check writes nothing");

    let build = idlc(&["build", "good.rpc", "--out-dir", "out"], dir.path());
    assert_eq!(build.status.code(), Some(0), "{}", stderr(&build));
    let generated = std::fs::read_to_string(out.join("good.rs")).expect("good.rs");
    assert!(generated.contains("@generated"), "{generated}");
    assert!(out.join("common.rs").is_file(), "imports are generated too");
    assert!(
        stderr(&build).contains("wrote 2 file(s), 0 unchanged"),
        "{}",
        stderr(&build)
    );

    let again = idlc(&["build", "good.rpc", "-o", "out"], dir.path());
    assert!(
        stderr(&again).contains("wrote 0 file(s), 2 unchanged"),
        "{}",
        stderr(&again)
    );

    let fresh = idlc(
        &["build", "good.rpc", "--out-dir", "out", "--check"],
        dir.path(),
    );
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));

    std::fs::write(out.join("common.rs"), "// edited by hand\n").expect("edit");
    let edited = idlc(
        &["build", "good.rpc", "--out-dir", "out", "--check"],
        dir.path(),
    );
    assert_eq!(edited.status.code(), Some(1));
    assert!(stderr(&edited).contains("common.rs"), "{}", stderr(&edited));

    let bad = idlc(&["build", "bad.rpc", "--out-dir", "out2"], dir.path());
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        !dir.path().join("out2").exists(),
        "nothing is written on errors"
    );
}
