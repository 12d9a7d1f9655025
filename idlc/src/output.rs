//! Generated files: running the code generator over checked models, and
//! writing its output only when it changed (so that cargo does not rebuild
//! what did not change).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::codegen::{self, CodegenOptions};
use crate::model::FileModel;

/// The generated Rust for one `.rpc` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The `.rpc` file it was generated from.
    pub source: PathBuf,
    /// The module name (the `.rpc` file stem).
    pub module_name: String,
    /// The output file name: `<module_name>.rs`.
    pub file_name: String,
    /// The generated Rust.
    pub contents: String,
}

/// What [`GeneratedFile::write_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file was missing or different, and was written.
    Written,
    /// The file already had this content; it was not touched.
    Unchanged,
}

/// Generates the Rust module of every model (pure: no I/O).
pub fn generate_files(files: &[FileModel], options: &CodegenOptions) -> Vec<GeneratedFile> {
    files
        .iter()
        .map(|file| GeneratedFile {
            source: file.source.clone(),
            module_name: file.module_name.clone(),
            file_name: format!("{}.rs", file.module_name),
            contents: codegen::generate(file, options),
        })
        .collect()
}

impl GeneratedFile {
    /// Where this file goes in `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(&self.file_name)
    }

    /// Whether `dir` already holds exactly this content.
    pub fn is_current_in(&self, dir: &Path) -> bool {
        fs::read(self.path_in(dir)).is_ok_and(|existing| existing == self.contents.as_bytes())
    }

    /// Writes the file into `dir` unless it already has this content.
    pub fn write_to(&self, dir: &Path) -> io::Result<WriteOutcome> {
        if self.is_current_in(dir) {
            return Ok(WriteOutcome::Unchanged);
        }
        fs::write(self.path_in(dir), &self.contents)?;
        Ok(WriteOutcome::Written)
    }
}
