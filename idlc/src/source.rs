//! Source files as the front end sees them: a path, a display name for
//! diagnostics, and the text, shared cheaply between diagnostics.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

/// The text of one source file with the name diagnostics show for it.
pub type SourceText = NamedSource<Arc<str>>;

/// Index of a loaded file in one front-end run (load order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub usize);

/// One loaded `.rpc` file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path the file was opened at (lexically normalized).
    pub path: PathBuf,
    /// The name shown in diagnostics (the path as the user would write it).
    pub name: String,
    /// The file's text.
    pub text: Arc<str>,
}

impl SourceFile {
    /// A source file from a path and its text.
    pub fn new(path: PathBuf, text: impl Into<Arc<str>>) -> Self {
        let name = display_name(&path);
        SourceFile {
            path,
            name,
            text: text.into(),
        }
    }

    /// The named source that diagnostics render snippets from.
    pub fn named_source(&self) -> SourceText {
        NamedSource::new(&self.name, Arc::clone(&self.text))
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The largest char boundary of `text` at or below `offset`.
pub fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A span from a start and end byte offset.
pub fn span(start: usize, end: usize) -> SourceSpan {
    SourceSpan::new(start.into(), end.saturating_sub(start))
}

/// The path with forward slashes, as diagnostics show it.
pub fn display_name(path: &Path) -> String {
    let text = path.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '\\' {
        text.replace('\\', "/")
    } else {
        text.into_owned()
    }
}

/// Removes `.` components and folds `dir/..` pairs, without touching the
/// file system (so the path stays as the user wrote it, relative or not).
pub fn normalize(path: &Path) -> PathBuf {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => parts.push(component),
            },
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return PathBuf::from(".");
    }
    parts.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let text = "ab\ncd\né";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (2, 2));
        assert_eq!(line_col(text, 6), (3, 1));
        assert_eq!(line_col(text, 100), (3, 2));
    }

    #[test]
    fn normalize_folds_dots() {
        assert_eq!(normalize(Path::new("a/./b/../c.rpc")), Path::new("a/c.rpc"));
        assert_eq!(normalize(Path::new("../x/../y")), Path::new("../y"));
        assert_eq!(normalize(Path::new("/a/../../b")), Path::new("/b"));
        assert_eq!(normalize(Path::new("./")), Path::new("."));
    }
}
