//! The built-in services' generated code (`src/builtin/generated/`) is
//! checked in; this regenerates it with idlc and fails if the copy is stale.

use std::path::Path;

const REFRESH: &str = "cargo run -p idlc -- build runtime/idl/health.rpc runtime/idl/reflection.rpc -o runtime/src/builtin/generated";

#[test]
fn the_checked_in_builtin_code_is_what_idlc_generates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [root.join("idl/health.rpc"), root.join("idl/reflection.rpc")];
    let checked = idlc::check_files(&sources)
        .unwrap_or_else(|diagnostics| panic!("runtime/idl/ has IDL errors:\n{diagnostics}"));
    let generated = idlc::generate_files(&checked.files, &idlc::codegen::CodegenOptions::default());
    assert_eq!(generated.len(), 2, "one module per built-in .rpc file");
    let out = root.join("src/builtin/generated");
    let stale: Vec<String> = generated
        .iter()
        .filter(|file| !file.is_current_in(&out))
        .map(|file| file.file_name.clone())
        .collect();
    assert!(
        stale.is_empty(),
        "src/builtin/generated/{{{}}} is stale: refresh it from the workspace root with\n    {REFRESH}",
        stale.join(",")
    );
}
