//! The `import` that would make one file's declarations visible from
//! another, for the hints of unknown types ("add `import "common.rpc";`").

use std::path::{Component, Path};

use crate::load::LoadedFile;
use crate::source::display_name;

/// "add `import "common.rpc";`" (the path relative to the importing file,
/// which is where imports are looked up first), or, when no relative path
/// can be written, "import `<name>`".
pub(crate) fn add_import(from: &LoadedFile, target: &LoadedFile) -> String {
    let from_dir = from.source.path.parent().unwrap_or(Path::new(""));
    match relative_path(from_dir, &target.source.path) {
        Some(path) => format!("add `import \"{path}\";`"),
        None => format!("import `{}`", target.source.name),
    }
}

/// `to` relative to the directory `from_dir`, `/`-separated, lexically
/// (both paths are normalized: no `.`, no inner `..`). `None` when one is
/// absolute and the other not, or when `from_dir` climbs out with `..`
/// further than `to` (its real directory names are unknown).
fn relative_path(from_dir: &Path, to: &Path) -> Option<String> {
    if from_dir.is_absolute() != to.is_absolute() {
        return None;
    }
    let from: Vec<Component<'_>> = from_dir
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    let to: Vec<Component<'_>> = to
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in &from[common..] {
        match component {
            Component::Normal(_) => parts.push("..".as_ref()),
            _ => return None,
        }
    }
    for component in &to[common..] {
        match component {
            Component::Normal(part) => parts.push(part),
            _ => return None,
        }
    }
    let joined: std::path::PathBuf = parts.iter().collect();
    (!parts.is_empty()).then(|| display_name(&joined))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relative(from_dir: &str, to: &str) -> Option<String> {
        relative_path(Path::new(from_dir), Path::new(to))
    }

    #[test]
    fn paths_relative_to_the_importing_file() {
        assert_eq!(
            relative("idl", "idl/common.rpc").as_deref(),
            Some("common.rpc")
        );
        assert_eq!(relative("", "common.rpc").as_deref(), Some("common.rpc"));
        assert_eq!(
            relative("idl/shop", "idl/common/money.rpc").as_deref(),
            Some("../common/money.rpc")
        );
        assert_eq!(
            relative("/src/idl", "/src/lib/base.rpc").as_deref(),
            Some("../lib/base.rpc")
        );
        assert_eq!(
            relative("../x", "../y/a.rpc").as_deref(),
            Some("../y/a.rpc")
        );
    }

    #[test]
    fn no_relative_path_when_it_cannot_be_known() {
        assert_eq!(relative("/src/idl", "idl/common.rpc"), None);
        assert_eq!(relative("idl", "/src/common.rpc"), None);
        // From `../x`, reaching `a.rpc` needs the name of the directory `..`
        // climbed out of.
        assert_eq!(relative("../x", "a.rpc"), None);
    }
}
