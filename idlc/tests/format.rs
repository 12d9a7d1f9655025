//! `idlc fmt`: a snapshot of the canonical layout of a messy file with
//! every construct and comment placement, idempotence on every fixture,
//! refusal of broken files, deep nesting, and the CLI's exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use idlc::format::format_source;
use idlc::parse::{MAX_NESTING, parse};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fmt(text: &str) -> String {
    format_source(text).unwrap_or_else(|diagnostics| panic!("{diagnostics:?}"))
}

#[test]
fn messy_file_snapshot() {
    let messy = read(&fixture("format/messy.rpc"));
    let formatted = fmt(&messy);
    insta::assert_snapshot!(formatted);
    assert_eq!(fmt(&formatted), formatted, "idempotent");
    assert_eq!(
        parse(&formatted).file.without_spans(),
        parse(&messy).file.without_spans()
    );
}

#[test]
fn formatted_fixtures_keep_their_meaning_and_are_stable() {
    let mut checked = 0;
    for dir in ["ok", "codegen", "format", "errors"] {
        let entries = std::fs::read_dir(fixture(dir)).expect("fixture dir");
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "rpc") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue; // the deliberately unreadable fixture
            };
            let Ok(formatted) = format_source(&text) else {
                // Only files with syntax errors are refused.
                assert!(!parse(&text).errors.is_empty(), "{}", path.display());
                continue;
            };
            assert_eq!(fmt(&formatted), formatted, "{}", path.display());
            assert_eq!(
                parse(&formatted).file.without_spans(),
                parse(&text).file.without_spans(),
                "{}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} fixtures formatted");
}

#[test]
fn the_hand_written_fixtures_are_already_canonical() {
    for path in [
        "codegen/services.rpc",
        "codegen/enums.rpc",
        "codegen/constants.rpc",
    ] {
        let text = read(&fixture(path));
        assert_eq!(fmt(&text), text, "{path}");
    }
}

#[test]
fn syntax_errors_are_refused() {
    let Err(diagnostics) = format_source("struct A { 1: u32 a }\nstruct B { 1 u32 b; }\n") else {
        panic!("a broken file must be refused");
    };
    assert_eq!(diagnostics.codes(), ["idl::syntax", "idl::syntax"]);
}

fn nested(levels: usize) -> String {
    format!(
        "struct Deep {{ 1: {}u32{} x; }}",
        "list<".repeat(levels),
        ">".repeat(levels)
    )
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    for levels in [MAX_NESTING + 1, 10_000, 100_000] {
        let text = nested(levels);
        let codes = std::thread::spawn(move || format_source(&text).map_err(|d| d.codes()))
            .join()
            .expect("no stack overflow");
        assert_eq!(codes, Err(vec!["idl::nesting_too_deep".to_owned()]));
    }
    // Unbalanced brackets, thousands of comments, a long file: all linear.
    let junk = format!("struct A {{ 1: {} }}", "<".repeat(50_000));
    assert!(format_source(&junk).is_err());
}

#[test]
fn nesting_up_to_the_limit_formats_on_a_small_stack() {
    let text = nested(MAX_NESTING);
    let formatted = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || format_source(&text))
        .expect("spawn")
        .join()
        .expect("no stack overflow")
        .expect("formats");
    assert!(formatted.starts_with("struct Deep {\n  1: list<list<"));
}

#[test]
fn long_files_and_many_comments() {
    let mut text = String::new();
    for i in 0..5_000 {
        text.push_str(&format!(
            "// c{i}\nstruct S{i} {{ 1: u32 a; /* x */ 2: string b; }} // t{i}\n"
        ));
    }
    let formatted = fmt(&text);
    assert_eq!(formatted.matches("// c").count(), 5_000);
    assert_eq!(formatted.matches("/* x */").count(), 5_000);
    assert_eq!(fmt(&formatted), formatted);
}

// ------------------------------------------------------------ the CLI

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

#[test]
fn cli_formats_in_place_and_check_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let messy = "struct A{1:u32 x;}\n";
    let clean = "struct A {\n  1: u32 x;\n}\n";
    std::fs::write(dir.path().join("messy.rpc"), messy).expect("write");
    std::fs::write(dir.path().join("clean.rpc"), clean).expect("write");

    let check = idlc(&["fmt", "--check", "messy.rpc", "clean.rpc"], dir.path());
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    assert!(
        stderr(&check).contains("`messy.rpc` would be reformatted"),
        "{}",
        stderr(&check)
    );
    assert_eq!(
        read(&dir.path().join("messy.rpc")),
        messy,
        "--check writes nothing"
    );

    let clean_check = idlc(&["fmt", "--check", "clean.rpc"], dir.path());
    assert_eq!(
        clean_check.status.code(),
        Some(0),
        "{}",
        stderr(&clean_check)
    );

    let modified_before = std::fs::metadata(dir.path().join("clean.rpc"))
        .and_then(|m| m.modified())
        .expect("mtime");
    let run = idlc(&["fmt", "messy.rpc", "clean.rpc"], dir.path());
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("reformatted 1 file(s), 1 unchanged"),
        "{}",
        stderr(&run)
    );
    assert_eq!(read(&dir.path().join("messy.rpc")), clean);
    let modified_after = std::fs::metadata(dir.path().join("clean.rpc"))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(
        modified_before, modified_after,
        "unchanged files are not written"
    );
}

#[test]
fn cli_refuses_broken_files_and_leaves_them_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = "struct B {1: u32 m}\n";
    std::fs::write(dir.path().join("broken.rpc"), broken).expect("write");
    std::fs::write(dir.path().join("fine.rpc"), "enum E{A=0;}").expect("write");

    let run = idlc(&["fmt", "broken.rpc", "fine.rpc"], dir.path());
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let text = stderr(&run);
    assert!(text.contains("idl::syntax"), "{text}");
    assert!(text.contains("[broken.rpc:1:19]"), "{text}");
    assert!(text.contains("`broken.rpc` was not formatted"), "{text}");
    assert_eq!(read(&dir.path().join("broken.rpc")), broken, "untouched");
    assert_eq!(
        read(&dir.path().join("fine.rpc")),
        "enum E {\n  A = 0;\n}\n",
        "the other files are still formatted"
    );
}

#[test]
fn cli_usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["fmt"][..],
        &["fmt", "missing.rpc"],
        &["fmt", "--bogus", "x.rpc"],
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
