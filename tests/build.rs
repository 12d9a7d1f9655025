//! Compiles every codegen fixture of idlc (one `.rpc` file per language
//! construct) so that the generated code is built, linted by clippy and
//! exercised by the tests of this crate.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fixtures = PathBuf::from("../idlc/tests/fixtures/codegen");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fixtures)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "rpc"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", fixtures.display());
    idlc::Builder::new().compile(&files)?;
    Ok(())
}
