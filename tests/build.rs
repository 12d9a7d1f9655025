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

    // The same collections once more with the other map type and extra
    // attributes, to prove the code generator options compile.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("btree");
    idlc::Builder::new()
        .out_dir(out_dir)
        .map_type(idlc::codegen::MapType::BTreeMap)
        .type_attribute(".", "#[derive(PartialOrd)]")
        .type_attribute("fixtures.collections.Item", "#[derive(Eq, Hash, Ord)]")
        .compile(&[
            fixtures.join("collections.rpc"),
            fixtures.join("nested.rpc"),
        ])?;
    Ok(())
}
