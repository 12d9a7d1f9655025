//! [`Builder`]: compiling `.rpc` files from a `build.rs`.
//!
//! ```no_run
//! // in build.rs's `main`:
//! idlc::Builder::new()
//!     .include("idl/common")
//!     .compile(&["idl/hello.rpc", "idl/shop.rpc"])
//!     .unwrap();
//! ```
//!
//! Each checked file (and each file it imports) becomes `OUT_DIR/<stem>.rs`.
//! On IDL errors the error's `Display` (and `Debug`, which `unwrap` shows) is
//! the rendered diagnostics.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::codegen::{CodegenOptions, MapType};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::output::generate_files;
use crate::{CheckOptions, analyze};

/// Compiles `.rpc` files into Rust modules from a build script.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    out_dir: Option<PathBuf>,
    check: CheckOptions,
    codegen: CodegenOptions,
}

/// Why [`Builder::compile`] failed.
#[derive(thiserror::Error)]
pub enum BuildError {
    /// Neither [`Builder::out_dir`] nor the `OUT_DIR` environment variable
    /// (which cargo sets for build scripts) gives an output directory.
    #[error(
        "idlc: no output directory: `OUT_DIR` is not set (it is set by cargo when running a build script); call `Builder::out_dir(..)` to choose one"
    )]
    NoOutDir,
    /// The IDL files have errors; `Display` renders them all.
    #[error("{}idlc: could not compile the IDL files: {}", .0.render(), .0.summary())]
    Idl(Diagnostics),
    /// A generated file or the output directory could not be written.
    #[error("idlc: cannot write `{}`: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A code generator option is invalid (for example a type attribute
    /// that is not Rust attribute syntax).
    #[error("idlc: {0}")]
    InvalidOption(String),
    /// Cargo instructions could not be written.
    #[error("idlc: cannot write cargo instructions: {0}")]
    Instructions(#[source] io::Error),
}

impl fmt::Debug for BuildError {
    /// The same as `Display`, so that `build.rs` `.unwrap()` shows the
    /// rendered diagnostics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Builder {
    /// A builder writing to `$OUT_DIR`, without include directories.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Writes the generated files to `dir` instead of `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Also looks for imports in `dir`.
    pub fn include(mut self, dir: impl Into<PathBuf>) -> Self {
        self.check = self.check.include(dir);
        self
    }

    /// Options for the code generator.
    pub fn codegen_options(mut self, options: CodegenOptions) -> Self {
        self.codegen = options;
        self
    }

    /// Chooses the Rust type of `map<K, V>` fields (default `HashMap`).
    pub fn map_type(mut self, map_type: MapType) -> Self {
        self.codegen = self.codegen.map_type(map_type);
        self
    }

    /// Adds an attribute (such as `#[derive(Hash)]`) to the declared types
    /// `path` matches: `"."` for all, `"Order"` or `"shop.Order"` for one.
    /// See [`CodegenOptions::type_attribute`].
    pub fn type_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.codegen = self.codegen.type_attribute(path, attribute);
        self
    }

    /// Whether generated modules embed their `.rpc` source for server
    /// reflection (default `true`). See
    /// [`CodegenOptions::embed_idl_source`].
    pub fn embed_idl_source(mut self, embed: bool) -> Self {
        self.codegen = self.codegen.embed_idl_source(embed);
        self
    }

    /// Checks `files` (and their imports) and writes one Rust module per
    /// file; prints `cargo:rerun-if-changed=` for every file read and
    /// `cargo:warning=` lines for every IDL warning (its place, code and
    /// message, then its hint) to stdout.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), BuildError> {
        let stdout = io::stdout();
        let mut lock = stdout.lock();
        self.compile_with_output(files, &mut lock)
    }

    /// [`compile`](Self::compile), writing the cargo instructions to
    /// `cargo` instead of stdout.
    pub fn compile_with_output(
        &self,
        files: &[impl AsRef<Path>],
        cargo: &mut dyn Write,
    ) -> Result<(), BuildError> {
        self.codegen.validate().map_err(BuildError::InvalidOption)?;
        let out_dir = resolve_out_dir(self.out_dir.as_deref(), std::env::var_os("OUT_DIR"))?;
        let analysis = analyze(files, &self.check);
        for path in &analysis.files_read {
            writeln!(cargo, "cargo:rerun-if-changed={}", path.display())
                .map_err(BuildError::Instructions)?;
        }
        for warning in analysis.diagnostics.iter().filter(|d| !d.is_error()) {
            for line in cargo_warning_lines(warning) {
                writeln!(cargo, "cargo:warning={line}").map_err(BuildError::Instructions)?;
            }
        }
        let checked = analysis.into_result().map_err(BuildError::Idl)?;
        std::fs::create_dir_all(&out_dir).map_err(|source| BuildError::Write {
            path: out_dir.clone(),
            source,
        })?;
        for generated in generate_files(&checked.files, &self.codegen) {
            generated
                .write_to(&out_dir)
                .map_err(|source| BuildError::Write {
                    path: generated.path_in(&out_dir),
                    source,
                })?;
        }
        Ok(())
    }
}

/// The `cargo:warning=` lines of one IDL warning: `file:line:col: code:
/// message`, then `  help: ...` when it has a hint. Cargo shows each line
/// as a warning of its own, so neither is ever split; a line break inside
/// one (which would end the instruction and could start another) becomes
/// a space.
fn cargo_warning_lines(warning: &Diagnostic) -> Vec<String> {
    let help = miette::Diagnostic::help(warning).map(|help| format!("  help: {help}"));
    std::iter::once(warning.one_line())
        .chain(help)
        .map(|line| line.replace(['\n', '\r'], " "))
        .collect()
}

/// The explicit output directory, else `$OUT_DIR`.
fn resolve_out_dir(explicit: Option<&Path>, env: Option<OsString>) -> Result<PathBuf, BuildError> {
    match (explicit, env) {
        (Some(dir), _) => Ok(dir.to_path_buf()),
        (None, Some(env)) if !env.is_empty() => Ok(PathBuf::from(env)),
        _ => Err(BuildError::NoOutDir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_dir_prefers_the_explicit_one() {
        let dir = resolve_out_dir(Some(Path::new("a")), Some("b".into())).ok();
        assert_eq!(dir, Some(PathBuf::from("a")));
        let dir = resolve_out_dir(None, Some("b".into())).ok();
        assert_eq!(dir, Some(PathBuf::from("b")));
    }

    #[test]
    fn a_warning_cannot_start_another_cargo_instruction() {
        let warning = Diagnostic::new(
            crate::DiagnosticKind::UnknownAnnotation {
                name: "x\ncargo:rustc-link-lib=evil".to_owned(),
                target: "a struct".to_owned(),
                span: crate::source::span(0, 1),
                help: Some("one\r\ncargo:rustc-env=A=B".to_owned()),
            },
            None,
            0,
        );
        let lines = cargo_warning_lines(&warning);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains(['\n', '\r'])), "{lines:?}");
        assert_eq!(lines[1], "  help: one  cargo:rustc-env=A=B");
    }

    #[test]
    fn no_out_dir_is_a_clear_error() {
        let error = resolve_out_dir(None, None).err();
        assert!(matches!(error, Some(BuildError::NoOutDir)));
        let error = resolve_out_dir(None, Some(OsString::new())).err();
        assert!(matches!(error, Some(BuildError::NoOutDir)));
        let message = BuildError::NoOutDir.to_string();
        assert!(message.contains("OUT_DIR"), "{message}");
        assert!(message.contains("Builder::out_dir"), "{message}");
    }
}
