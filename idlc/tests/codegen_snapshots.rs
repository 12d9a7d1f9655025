//! Snapshots of the generated Rust: one per language construct (the
//! fixtures under `fixtures/codegen/`, which the `courier-tests` crate also
//! compiles), and one per example of `idl-examples/idl/`. Every snapshot is
//! also checked to be formatted already: idlc writes text directly, and
//! prettyplease, given what it parses from that text, prints the same.

use std::path::Path;

fn generate(path: &Path) -> String {
    let checked = idlc::check_files(&[path]).unwrap_or_else(|diagnostics| {
        panic!("{} should check cleanly:\n{diagnostics}", path.display())
    });
    let file = checked
        .files
        .iter()
        .find(|f| f.source.file_name() == path.file_name())
        .expect("the named file is among the checked files");
    let code = idlc::codegen::generate(file, &idlc::codegen::CodegenOptions::default());
    assert_formatted(&code, path);
    code
}

/// The lines of `code` that are not blank (idlc puts a blank line between
/// items; prettyplease puts none) and not the `//` header (a comment, which
/// the parser drops).
fn significant_lines(code: &str) -> Vec<&str> {
    code.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with("// @generated"))
        .collect()
}

/// `code` parses as a Rust file, and prettyplease prints what it parsed as
/// `code` is written (blank lines aside).
fn assert_formatted(code: &str, path: &Path) {
    let parsed = syn::parse_file(code).unwrap_or_else(|error| {
        panic!("{}: generated code does not parse: {error}", path.display())
    });
    let printed = prettyplease::unparse(&parsed);
    let (ours, theirs) = (significant_lines(code), significant_lines(&printed));
    if ours != theirs {
        let first = ours
            .iter()
            .zip(&theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len()));
        panic!(
            "{}: generated code is not formatted as prettyplease formats it; first difference at \
             significant line {first}:\n  idlc:         {:?}\n  prettyplease: {:?}",
            path.display(),
            ours.get(first),
            theirs.get(first),
        );
    }
}

#[test]
fn one_snapshot_per_construct() {
    insta::glob!("fixtures/codegen/*.rpc", |path| {
        insta::assert_snapshot!(generate(path));
    });
}

#[test]
fn the_examples() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../idl-examples/idl");
    for name in ["hello", "shop"] {
        let code = generate(&examples.join(format!("{name}.rpc")));
        insta::assert_snapshot!(format!("example_{name}"), code);
    }
}

/// The runtime's built-in services and the benchmark's service are
/// formatted too (they have no snapshot of their own: the runtime checks
/// its copy in, `builtin_generated.rs` keeps it current).
#[test]
fn other_checked_in_sources_are_formatted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for path in [
        "runtime/idl/health.rpc",
        "runtime/idl/reflection.rpc",
        "bench/idl/echo.rpc",
    ] {
        generate(&root.join(path));
    }
}

#[test]
fn generation_is_deterministic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codegen/services.rpc");
    assert_eq!(generate(&path), generate(&path));
}
