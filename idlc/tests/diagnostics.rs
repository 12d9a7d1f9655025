//! Snapshot tests of rendered diagnostics: one fixture per error kind under
//! `tests/fixtures/errors/`, named after the diagnostic code it shows
//! (`unknown_type.rpc`; more fixtures of one code add `__what`:
//! `unknown_type__not_imported.rpc`).
//!
//! A fixture checked together with other files, as in one
//! `idlc check a.rpc b.rpc` run, names them on its first line, relative to
//! its directory: `// checked with: support/money.rpc`.

use std::path::{Path, PathBuf};

use idlc::{CheckOptions, analyze};

/// Renders the diagnostics of one fixture, with paths relative to the crate
/// so that snapshots do not depend on where the repository is.
fn render(path: &Path) -> (Vec<String>, String) {
    let relative = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .to_path_buf();
    let mut roots = vec![relative.clone()];
    roots.extend(checked_with(path, &relative));
    let analysis = analyze(&roots, &CheckOptions::new());
    (analysis.diagnostics.codes(), analysis.diagnostics.render())
}

/// The files a fixture's first line says it is checked with.
fn checked_with(path: &Path, relative: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let dir = relative.parent().unwrap_or(Path::new(""));
    text.lines()
        .next()
        .and_then(|line| line.strip_prefix("// checked with:"))
        .map(|names| names.split_whitespace().map(|n| dir.join(n)).collect())
        .unwrap_or_default()
}

#[test]
fn error_fixtures() {
    insta::glob!("fixtures/errors/*.rpc", |path| {
        let (codes, rendered) = render(path);
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('-', "_"))
            .unwrap_or_default();
        let code = stem.split("__").next().unwrap_or_default();
        if code != "many_errors" {
            let expected = format!("idl::{code}");
            assert!(
                codes.contains(&expected),
                "{} should report {expected}, got {codes:?}\n{rendered}",
                path.display()
            );
        }
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn every_error_of_a_file_is_reported() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/errors/many_errors.rpc");
    let (codes, rendered) = render(&path);
    for code in [
        "idl::first_enum_value_not_zero",
        "idl::duplicate_enum_value",
        "idl::tag_out_of_range",
        "idl::unknown_type",
        "idl::optional_list",
        "idl::map_key_type",
        "idl::value_type_mismatch",
        "idl::infinite_size",
        "idl::oneway_with_result",
        "idl::oneway_with_throws",
        "idl::multiple_hash_keys",
        "idl::throws_not_error",
        "idl::unknown_annotation",
        "idl::duplicate_method",
    ] {
        assert!(
            codes.iter().any(|c| c == code),
            "missing {code}:\n{rendered}"
        );
    }
}

#[test]
fn every_syntax_error_is_reported() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/errors/syntax.rpc");
    let (codes, rendered) = render(&path);
    assert_eq!(codes.len(), 4, "{rendered}");
    assert!(codes.iter().all(|c| c == "idl::syntax"), "{rendered}");
}

#[test]
fn rendering_is_plain_ascii_with_file_line_and_column() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/errors/duplicate_tag.rpc");
    let (_, rendered) = render(&path);
    assert!(rendered.is_ascii(), "{rendered}");
    assert!(!rendered.contains('\u{1b}'), "no colors: {rendered}");
    assert!(
        rendered.contains("[tests/fixtures/errors/duplicate_tag.rpc:4:3]"),
        "{rendered}"
    );
    assert!(
        rendered.contains("help: the next free tag is 3"),
        "{rendered}"
    );
}
