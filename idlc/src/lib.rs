//! `idlc`, the Courier IDL compiler: `.rpc` files to Rust types, server
//! traits and client stubs.
//!
//! The compiler runs in stages, each a module with typed values between
//! them:
//!
//! 1. [`parse`]: text to a syntax tree with spans ([`parse::ast`]);
//! 2. `load`: reads the named files and everything they import;
//! 3. `check`: syntax trees to the checked [`model`], with every rule of the
//!    IDL checked and every name resolved;
//! 4. [`codegen`]: a [`model::FileModel`] to a Rust module.
//!
//! Beside them, [`format`](mod@format) lays a file out canonically, comments kept (the
//! `idlc fmt` command), and [`compat`] compares two versions of a set of
//! files for changes that break old peers (the `idlc compat` command).
//!
//! Problems are [`Diagnostic`]s (codes such as `idl::unknown_type`, a caret
//! under the spot, a fix hint), rendered with miette.
//!
//! Front end (for tools):
//!
//! ```no_run
//! let checked = idlc::check_files(&["idl/shop.rpc"]).unwrap_or_else(|diagnostics| {
//!     eprint!("{diagnostics}");
//!     std::process::exit(1);
//! });
//! for file in &checked.files {
//!     println!("{}: {} types", file.module_name, file.types.len());
//! }
//! ```
//!
//! In `build.rs`:
//!
//! ```no_run
//! idlc::Builder::new().compile(&["idl/hello.rpc"]).unwrap();
//! ```
#![warn(missing_docs)]
#![allow(
    clippy::result_large_err,
    reason = "diagnostics are only built on the error path; boxing them would add noise, not speed"
)]

pub mod builder;
mod check;
pub mod codegen;
pub mod compat;
pub mod diagnostic;
pub mod format;
mod load;
pub mod model;
pub mod output;
pub mod parse;
pub mod rust_names;
pub mod source;

use std::path::{Path, PathBuf};

pub use builder::{BuildError, Builder};
pub use diagnostic::{Diagnostic, DiagnosticKind, Diagnostics};
pub use output::{GeneratedFile, WriteOutcome, generate_files};

use model::FileModel;
use source::FileId;

/// Options of the front end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    include_dirs: Vec<PathBuf>,
}

impl CheckOptions {
    /// No include directories: imports are relative to the importing file.
    pub fn new() -> Self {
        CheckOptions::default()
    }

    /// Also looks for imports in `dir` (after the importing file's own
    /// directory, in the order added).
    pub fn include(mut self, dir: impl Into<PathBuf>) -> Self {
        self.include_dirs.push(dir.into());
        self
    }

    /// The include directories, in search order.
    pub fn include_dirs(&self) -> &[PathBuf] {
        &self.include_dirs
    }
}

/// A successful front-end run.
#[derive(Debug, Clone)]
pub struct CheckedFiles {
    /// One model per file: the named files first, in order, then every file
    /// they import (each once). Each becomes one generated module.
    pub files: Vec<FileModel>,
    /// Warnings (there are no errors).
    pub warnings: Diagnostics,
    /// Every file read, including imports (for `rerun-if-changed`).
    pub files_read: Vec<PathBuf>,
}

/// Everything a front-end run produced, whether or not it found errors.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The checked models; empty when there are errors.
    pub files: Vec<FileModel>,
    /// All errors and warnings, sorted by file and position.
    pub diagnostics: Diagnostics,
    /// Every file read or tried, including imports.
    pub files_read: Vec<PathBuf>,
}

impl Analysis {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.has_errors()
    }

    /// The models and warnings, or every diagnostic when there are errors.
    pub fn into_result(self) -> Result<CheckedFiles, Diagnostics> {
        if self.diagnostics.has_errors() {
            Err(self.diagnostics)
        } else {
            Ok(CheckedFiles {
                files: self.files,
                warnings: self.diagnostics,
                files_read: self.files_read,
            })
        }
    }
}

/// Loads, parses and checks `paths` and the files they import; returns the
/// checked models and warnings, or all errors (never just the first).
pub fn check_files(paths: &[impl AsRef<Path>]) -> Result<CheckedFiles, Diagnostics> {
    check_files_with(paths, &CheckOptions::new())
}

/// [`check_files`] with include directories.
pub fn check_files_with(
    paths: &[impl AsRef<Path>],
    options: &CheckOptions,
) -> Result<CheckedFiles, Diagnostics> {
    analyze(paths, options).into_result()
}

/// Runs the front end and returns everything it found, errors or not (for
/// tools that need the files read even when there are errors).
pub fn analyze(paths: &[impl AsRef<Path>], options: &CheckOptions) -> Analysis {
    let roots: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    analyze_loaded(load::load(&roots, options.include_dirs()))
}

/// Checks `.rpc` sources held in memory, `(name, text)`, starting from the
/// sources named in `roots`; never reads the file system (for sources that
/// come from elsewhere, such as a server's reflection).
///
/// Names are `/`-separated relative paths, normalised (`a/./b/../c.rpc` is
/// `a/c.rpc`; a name may start with `../`), like the names idlc gives the
/// sources it embeds. Imports resolve only among these names: relative to
/// the importing file's name, then from the root of the names; an absolute
/// import resolves to the name that is its file name. An import of a name
/// not given is an `unresolved import` error. Diagnostics show the names.
pub fn check_sources(
    sources: &[(String, String)],
    roots: &[impl AsRef<str>],
) -> Result<CheckedFiles, Diagnostics> {
    let texts: std::collections::HashMap<String, std::sync::Arc<str>> = sources
        .iter()
        .map(|(name, text)| (memory_name(name), std::sync::Arc::from(text.as_str())))
        .collect();
    let roots: Vec<String> = roots.iter().map(|r| memory_name(r.as_ref())).collect();
    analyze_loaded(load::load_in_memory(&roots, &texts)).into_result()
}

/// A source name as [`check_sources`] keys it: normalised, `/`-separated.
fn memory_name(name: &str) -> String {
    source::display_name(&source::normalize(Path::new(name)))
}

fn analyze_loaded(loaded: load::Loaded) -> Analysis {
    let mut problems = loaded.problems;
    // Semantic checks on files that did not parse, or whose imports are
    // missing, would only add noise (every type they lack is "unknown").
    let blocked = problems.iter().any(|(_, kind)| {
        matches!(
            kind,
            DiagnosticKind::Syntax { .. }
                | DiagnosticKind::UnclosedBrace { .. }
                | DiagnosticKind::NestingTooDeep { .. }
                | DiagnosticKind::UnreadableFile { .. }
                | DiagnosticKind::UnresolvedImport { .. }
        )
    });
    let mut models = Vec::new();
    if !blocked {
        let checked = check::check(&loaded.files);
        problems.extend(
            checked
                .problems
                .into_iter()
                .map(|(id, kind)| (Some(id), kind)),
        );
        models = checked.models;
    }
    let diagnostics = Diagnostics::from_vec(
        problems
            .into_iter()
            .map(|(file, kind)| {
                let source = file
                    .and_then(|FileId(id)| loaded.files.get(id))
                    .map(|f| f.source.named_source());
                Diagnostic::new(kind, source, file.map_or(0, |f| f.0))
            })
            .collect(),
    );
    if diagnostics.has_errors() {
        models.clear();
    }
    Analysis {
        files: models,
        diagnostics,
        files_read: loaded.files_read,
    }
}
