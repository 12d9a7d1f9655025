//! Snapshots of the generated Rust: one per language construct (the
//! fixtures under `fixtures/codegen/`, which the `courier-tests` crate also
//! compiles), and one per example of `idl-examples/idl/`.

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
    idlc::codegen::generate(file, &idlc::codegen::CodegenOptions::default())
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

#[test]
fn generation_is_deterministic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codegen/services.rpc");
    assert_eq!(generate(&path), generate(&path));
}
