//! Stage 0: reading files. Loads the named files and, transitively, every
//! file they import (relative to the importing file, then the include
//! directories), parses each once, and finds import cycles. All I/O of the
//! front end happens here.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use miette::SourceSpan;

use crate::check::names::is_rust_identifier;
use crate::diagnostic::DiagnosticKind;
use crate::parse::{self, ast};
use crate::source::{FileId, SourceFile, display_name, normalize, span};

/// A loaded and parsed file.
#[derive(Debug, Clone)]
pub(crate) struct LoadedFile {
    /// Its index.
    pub id: FileId,
    /// Path, name and text.
    pub source: SourceFile,
    /// The generated module's name: the file stem.
    pub module_name: String,
    /// The name its embedded source goes by (see [`idl_name_of_import`]).
    pub idl_name: String,
    /// The syntax tree.
    pub ast: ast::File,
    /// Its resolved imports, in order.
    pub imports: Vec<ImportEdge>,
}

/// One resolved `import`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImportEdge {
    /// The imported file.
    pub target: FileId,
    /// The path literal in the importing file.
    pub span: SourceSpan,
}

/// A diagnostic of a loaded file, or (`None`) of a file that could not be
/// read at all.
pub(crate) type Problem = (Option<FileId>, DiagnosticKind);

/// Everything loading produced.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Loaded files in load order: the named files first.
    pub files: Vec<LoadedFile>,
    /// Read, import and syntax problems.
    pub problems: Vec<Problem>,
    /// Every path read or tried as a named file.
    pub files_read: Vec<PathBuf>,
}

/// Where a file was first asked for.
#[derive(Debug, Clone, Copy)]
struct Origin {
    importer: FileId,
    span: SourceSpan,
}

/// Where file texts come from.
#[derive(Clone, Copy)]
enum Store<'a> {
    /// The file system: imports relative to the importer, then each
    /// include directory.
    Disk { include_dirs: &'a [PathBuf] },
    /// Named texts in memory (see [`load_in_memory`]); the file system is
    /// never touched.
    Memory(&'a HashMap<String, std::sync::Arc<str>>),
}

struct Loader<'a> {
    store: Store<'a>,
    loaded: Loaded,
    by_identity: HashMap<PathBuf, FileId>,
    by_module: HashMap<String, FileId>,
    queue: VecDeque<FileId>,
}

/// Loads `roots` and everything they import.
pub(crate) fn load(roots: &[PathBuf], include_dirs: &[PathBuf]) -> Loaded {
    load_from(roots, Store::Disk { include_dirs })
}

/// Loads `roots` and everything they import from `sources`, texts by name,
/// without touching the file system.
///
/// Names are `/`-separated relative paths (normalised: `a/./b/../c.rpc` is
/// `a/c.rpc`; they may start with `../`). An import resolves like on disk,
/// but only among the names: relative to the importer's name, then from
/// the root of the names (as an include directory); an absolute import
/// resolves to the name that is its file name (how idlc names the embedded
/// source of an absolutely imported file). A name that is not in `sources`
/// is an unresolved import.
pub(crate) fn load_in_memory(
    roots: &[String],
    sources: &HashMap<String, std::sync::Arc<str>>,
) -> Loaded {
    let roots: Vec<PathBuf> = roots.iter().map(PathBuf::from).collect();
    load_from(&roots, Store::Memory(sources))
}

fn load_from(roots: &[PathBuf], store: Store<'_>) -> Loaded {
    let mut loader = Loader {
        store,
        loaded: Loaded::default(),
        by_identity: HashMap::new(),
        by_module: HashMap::new(),
        queue: VecDeque::new(),
    };
    for root in roots {
        let root = normalize(root);
        let name = match store {
            Store::Disk { .. } => file_name_of(&root),
            Store::Memory(_) => display_name(&root),
        };
        loader.register(root, None, name);
    }
    while let Some(id) = loader.queue.pop_front() {
        loader.parse_file(id);
    }
    let cycles = import_cycles(&loader.loaded.files);
    loader.loaded.problems.extend(cycles);
    loader.loaded
}

impl Loader<'_> {
    /// Reads a file unless it is loaded already; returns its id.
    fn register(
        &mut self,
        path: PathBuf,
        origin: Option<Origin>,
        idl_name: String,
    ) -> Option<FileId> {
        let identity = match self.store {
            Store::Disk { .. } => identity(&path),
            Store::Memory(_) => normalize(&path),
        };
        if let Some(&id) = self.by_identity.get(&identity) {
            return Some(id);
        }
        let text = match self.read(&path) {
            Ok(text) => text,
            Err(reason) => {
                if origin.is_none() {
                    self.loaded.files_read.push(path.clone());
                }
                self.report_unreadable(&path, origin, reason);
                return None;
            }
        };
        self.loaded.files_read.push(path.clone());
        let id = FileId(self.loaded.files.len());
        let source = SourceFile::new(path.clone(), text);
        let module_name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.by_identity.insert(identity, id);
        self.loaded.files.push(LoadedFile {
            id,
            source,
            module_name: module_name.clone(),
            idl_name,
            ast: ast::File::default(),
            imports: Vec::new(),
        });
        self.check_module_name(id, &module_name, origin);
        self.queue.push_back(id);
        Some(id)
    }

    /// The text of a file from the store.
    fn read(&self, path: &Path) -> Result<std::sync::Arc<str>, String> {
        match self.store {
            Store::Disk { .. } => read_text(path).map(Into::into),
            Store::Memory(sources) => sources
                .get(&display_name(path))
                .cloned()
                .ok_or_else(|| "not among the given sources".to_owned()),
        }
    }

    fn report_unreadable(&mut self, path: &Path, origin: Option<Origin>, reason: String) {
        match origin {
            None => self.loaded.problems.push((
                None,
                DiagnosticKind::UnreadableFile {
                    path: display_name(path),
                    reason,
                },
            )),
            Some(origin) => self.loaded.problems.push((
                Some(origin.importer),
                DiagnosticKind::UnresolvedImport {
                    path: display_name(path),
                    reason,
                    span: origin.span,
                    help: None,
                },
            )),
        }
    }

    /// Module names must be Rust identifiers and unique in one run.
    fn check_module_name(&mut self, id: FileId, module: &str, origin: Option<Origin>) {
        let (report_in, at) = match origin {
            Some(origin) => (origin.importer, origin.span),
            None => (id, span(0, 0)),
        };
        let path = self.name_of(id);
        let reserved = matches!(module, "self" | "super" | "crate" | "Self");
        if !is_rust_identifier(module) || reserved {
            let mut suggestion: String = module
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            if reserved || !suggestion.starts_with(|c: char| c.is_ascii_alphabetic()) {
                suggestion.insert_str(0, "idl_");
            }
            self.loaded.problems.push((
                Some(report_in),
                DiagnosticKind::InvalidModuleName {
                    path,
                    module: module.to_owned(),
                    suggestion,
                    span: at,
                },
            ));
            return;
        }
        match self.by_module.get(module) {
            Some(&other) => {
                let other = self.name_of(other);
                self.loaded.problems.push((
                    Some(report_in),
                    DiagnosticKind::DuplicateModule {
                        module: module.to_owned(),
                        path,
                        other,
                        span: at,
                    },
                ));
            }
            None => {
                self.by_module.insert(module.to_owned(), id);
            }
        }
    }

    fn name_of(&self, id: FileId) -> String {
        self.loaded
            .files
            .get(id.0)
            .map(|file| file.source.name.clone())
            .unwrap_or_default()
    }

    /// Parses a registered file and registers its imports.
    fn parse_file(&mut self, id: FileId) {
        let Some(file) = self.loaded.files.get(id.0) else {
            return;
        };
        let text = file.source.text.clone();
        let importer_name = file.idl_name.clone();
        let dir = file
            .source
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let parsed = parse::parse(&text);
        for error in parsed.errors {
            self.loaded.problems.push((Some(id), error));
        }
        let mut edges = Vec::new();
        for import in &parsed.file.imports {
            let origin = Origin {
                importer: id,
                span: import.span,
            };
            match self.find_import(&dir, &import.path) {
                Ok((path, found_in)) => {
                    let name = idl_name_of_import(&importer_name, &import.path, &path, found_in);
                    if let Some(target) = self.register(path, Some(origin), name) {
                        edges.push(ImportEdge {
                            target,
                            span: import.span,
                        });
                    }
                }
                Err(kind) => self
                    .loaded
                    .problems
                    .push((Some(id), kind_at(kind, import.span))),
            }
        }
        if let Some(file) = self.loaded.files.get_mut(id.0) {
            file.ast = parsed.file;
            file.imports = edges;
        }
    }

    /// The file an import refers to: relative to the importing file's
    /// directory, then to each include directory; with where it was found.
    fn find_import(&self, dir: &Path, written: &str) -> Result<(PathBuf, FoundIn), DiagnosticKind> {
        let relative = Path::new(written);
        let include_dirs: &[PathBuf] = match self.store {
            Store::Disk { include_dirs } => include_dirs,
            // The root of the names acts as the one include directory.
            Store::Memory(_) => &[],
        };
        let candidates: Vec<PathBuf> = if written.is_empty() {
            Vec::new()
        } else if relative.is_absolute() {
            match self.store {
                Store::Disk { .. } => vec![relative.to_path_buf()],
                Store::Memory(_) => vec![PathBuf::from(file_name_of(relative))],
            }
        } else {
            let root = match self.store {
                Store::Disk { .. } => None,
                Store::Memory(_) => Some(relative.to_path_buf()),
            };
            std::iter::once(dir.join(relative))
                .chain(include_dirs.iter().map(|inc| inc.join(relative)))
                .chain(root)
                .map(|path| normalize(&path))
                .collect()
        };
        let exists = |path: &PathBuf| match self.store {
            Store::Disk { .. } => path.is_file(),
            Store::Memory(sources) => sources.contains_key(&display_name(path)),
        };
        if let Some(position) = candidates.iter().position(exists) {
            let found_in = if let Store::Memory(_) = self.store {
                FoundIn::Named
            } else if relative.is_absolute() {
                FoundIn::Absolute
            } else if position == 0 {
                FoundIn::ImporterDir
            } else {
                FoundIn::IncludeDir
            };
            return Ok((candidates[position].clone(), found_in));
        }
        let looked: Vec<String> = candidates
            .iter()
            .map(|p| format!("`{}`", display_name(p)))
            .collect();
        let help = if let Store::Memory(_) = self.store {
            format!(
                "looked for {} among the given sources; nothing else is read",
                looked.join(", ")
            )
        } else if looked.is_empty() {
            "write the path of a `.rpc` file, relative to the importing file".to_owned()
        } else {
            format!(
                "looked for {}; import paths are relative to the importing file{}",
                looked.join(", "),
                if include_dirs.is_empty() {
                    ""
                } else {
                    " or an include directory"
                }
            )
        };
        Err(DiagnosticKind::UnresolvedImport {
            path: written.to_owned(),
            reason: "file not found".to_owned(),
            span: span(0, 0),
            help: Some(help),
        })
    }
}

/// Where an import was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FoundIn {
    /// Relative to the importing file's directory.
    ImporterDir,
    /// Relative to an include directory.
    IncludeDir,
    /// The import path is absolute.
    Absolute,
    /// Among in-memory sources: the name found is the embedded name.
    Named,
}

/// The file name of a path (`idl/hello.rpc` -> `hello.rpc`): the
/// [`idl_name`](LoadedFile::idl_name) of a file named on the command line.
fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| display_name(path))
}

/// The name an imported file's embedded source goes by: never an absolute
/// path, always `/`-separated, the same on every machine.
///
/// Names form one tree in which every import resolves as idlc resolved it:
/// a file named on the command line is its file name; a file found next to
/// its importer is the import path taken from the importer's name
/// (`shop.rpc` importing `common/money.rpc` -> `common/money.rpc`; it may
/// start with `../`); a file found in an include directory is the import
/// path itself; an absolute import is its file name.
fn idl_name_of_import(importer: &str, written: &str, found: &Path, found_in: FoundIn) -> String {
    let written = Path::new(written);
    let joined = match found_in {
        FoundIn::Absolute => return file_name_of(found),
        FoundIn::Named => return display_name(found),
        FoundIn::IncludeDir => written.to_path_buf(),
        FoundIn::ImporterDir => Path::new(importer)
            .parent()
            .map_or_else(|| written.to_path_buf(), |dir| dir.join(written)),
    };
    display_name(&normalize(&joined))
}

fn kind_at(kind: DiagnosticKind, at: SourceSpan) -> DiagnosticKind {
    match kind {
        DiagnosticKind::UnresolvedImport {
            path, reason, help, ..
        } => DiagnosticKind::UnresolvedImport {
            path,
            reason,
            span: at,
            help,
        },
        other => other,
    }
}

/// What identifies a file: its canonical path when it exists.
fn identity(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| {
        let absolute = std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf());
        normalize(&absolute)
    })
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|error| io_reason(&error))?;
    String::from_utf8(bytes).map_err(|error| {
        format!(
            "not valid UTF-8 (at byte {})",
            error.utf8_error().valid_up_to()
        )
    })
}

fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "file not found".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_owned(),
        _ => error.to_string(),
    }
}

/// Finds import cycles (iteratively: any number of files) and reports each
/// at the import that closes it.
fn import_cycles(files: &[LoadedFile]) -> Vec<Problem> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        OnStack,
        Done,
    }
    let mut state = vec![State::New; files.len()];
    let mut problems = Vec::new();
    for root in 0..files.len() {
        if state[root] != State::New {
            continue;
        }
        state[root] = State::OnStack;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let edges = files.get(node).map_or(&[][..], |f| f.imports.as_slice());
            let Some(edge) = edges.get(*next).copied() else {
                state[node] = State::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            let target = edge.target.0;
            match state.get(target).copied() {
                Some(State::New) => {
                    state[target] = State::OnStack;
                    stack.push((target, 0));
                }
                Some(State::OnStack) => {
                    let start = stack.iter().position(|&(n, _)| n == target).unwrap_or(0);
                    let cycle: Vec<String> = stack[start..]
                        .iter()
                        .map(|&(n, _)| n)
                        .chain(std::iter::once(target))
                        .filter_map(|n| files.get(n).map(|f| f.source.name.clone()))
                        .collect();
                    problems.push((
                        Some(FileId(node)),
                        DiagnosticKind::ImportCycle {
                            cycle: cycle.join(" -> "),
                            span: edge.span,
                        },
                    ));
                }
                _ => {}
            }
        }
    }
    problems
}
