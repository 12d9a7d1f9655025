//! The two versions to compare: two `.rpc` files, or two directory trees
//! of them, each loaded and checked.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{CheckOptions, CheckedFiles, Diagnostics, analyze};

/// Why the two versions could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path does not exist.
    #[error("`{}` does not exist", .0.display())]
    Missing(PathBuf),
    /// One path is a file and the other a directory.
    #[error("`{}` and `{}` must both be files or both be directories", .old.display(), .new.display())]
    Mismatch {
        /// The old version's path.
        old: PathBuf,
        /// The new version's path.
        new: PathBuf,
    },
    /// The old tree has no `.rpc` file: there is nothing to compare.
    #[error("no `.rpc` file under `{}`", .0.display())]
    Empty(PathBuf),
    /// A directory could not be read.
    #[error("cannot read `{}`: {source}", .path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A version has IDL errors: it must check cleanly to be compared.
    #[error("the {which} version has errors")]
    Invalid {
        /// `old` or `new`.
        which: &'static str,
        /// Every diagnostic of that version.
        diagnostics: Diagnostics,
    },
}

/// Loads and checks both versions. `old` and `new` are both files (compared
/// with each other, and with what they import) or both directories (every
/// `.rpc` file under each, recursively; declarations are matched by package
/// and name, whichever file holds them).
pub fn load_pair(old: &Path, new: &Path) -> Result<(CheckedFiles, CheckedFiles), LoadError> {
    for path in [old, new] {
        if !path.exists() {
            return Err(LoadError::Missing(path.to_path_buf()));
        }
    }
    let (old_files, new_files) = match (old.is_dir(), new.is_dir()) {
        (false, false) => (vec![old.to_path_buf()], vec![new.to_path_buf()]),
        (true, true) => {
            let old_files = rpc_files(old)?;
            if old_files.is_empty() {
                return Err(LoadError::Empty(old.to_path_buf()));
            }
            (old_files, rpc_files(new)?)
        }
        _ => {
            return Err(LoadError::Mismatch {
                old: old.to_path_buf(),
                new: new.to_path_buf(),
            });
        }
    };
    Ok((check(&old_files, "old")?, check(&new_files, "new")?))
}

fn check(files: &[PathBuf], which: &'static str) -> Result<CheckedFiles, LoadError> {
    analyze(files, &CheckOptions::new())
        .into_result()
        .map_err(|diagnostics| LoadError::Invalid { which, diagnostics })
}

/// Every `.rpc` file under `root`, sorted (symbolic links to directories
/// are not followed, so a link cycle cannot make this loop).
fn rpc_files(root: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let io = |source| LoadError::Io {
            path: dir.clone(),
            source,
        };
        for entry in fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let file_type = entry.file_type().map_err(io)?;
            let path = entry.path();
            if file_type.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rpc")
                && (file_type.is_file() || path.is_file())
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
