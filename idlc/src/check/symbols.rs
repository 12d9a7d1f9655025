//! The symbol table: every declared type and service of every loaded file,
//! keyed by package and name; duplicate declarations; and resolution of a
//! type reference as seen from one file.

use std::collections::{HashMap, HashSet};

use miette::SourceSpan;

use super::import_hint::add_import;
use super::names::{Case, Clash, NameScope};
use super::suggest::closest;
use crate::diagnostic::DiagnosticKind;
use crate::load::LoadedFile;
use crate::model::{TypeKind, TypeRef};
use crate::parse::ast::{Decl, StructKind, TypeName};
use crate::source::FileId;

/// Index of a [`Symbol`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SymbolId(pub usize);

/// What a symbol declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymbolKind {
    /// A type that fields can have.
    Type(TypeKind),
    /// A service (not a type).
    Service,
}

/// A declared type or service.
#[derive(Debug, Clone)]
pub(crate) struct Symbol {
    /// The declaring file.
    pub file: FileId,
    /// The IDL name.
    pub name: String,
    /// What it is.
    pub kind: SymbolKind,
    /// The name's span.
    pub span: SourceSpan,
}

/// All symbols of a run.
#[derive(Debug, Default)]
pub(crate) struct SymbolTable {
    symbols: Vec<Symbol>,
    by_key: HashMap<(Option<String>, String), Vec<SymbolId>>,
    by_decl: HashMap<(FileId, usize), SymbolId>,
}

type Problems = Vec<(FileId, DiagnosticKind)>;

impl SymbolTable {
    /// Collects the symbols of `files`, reporting duplicates within a
    /// package and Rust name collisions within a file.
    pub(crate) fn build(files: &[LoadedFile], problems: &mut Problems) -> Self {
        let mut table = SymbolTable::default();
        for file in files {
            let package = package_of(file);
            let mut rust_names = NameScope::new(
                Case::UpperCamel,
                format!("types and services of module `{}`", file.module_name),
            );
            for (index, decl) in file.ast.decls.iter().enumerate() {
                let kind = match decl {
                    Decl::Const(_) => continue,
                    Decl::Struct(s) => SymbolKind::Type(match s.kind {
                        StructKind::Struct => TypeKind::Struct,
                        StructKind::Error => TypeKind::Error,
                        StructKind::Union => TypeKind::Union,
                    }),
                    Decl::Enum(_) => SymbolKind::Type(TypeKind::Enum),
                    Decl::Service(_) => SymbolKind::Service,
                };
                let name = decl.name();
                let key = (package.clone(), name.name.clone());
                if let Some(&first) = table.by_key.get(&key).and_then(|ids| ids.first()) {
                    let first = &table.symbols[first.0];
                    let same_file = first.file == file.id;
                    let help = if same_file {
                        Some("rename one of them".to_owned())
                    } else {
                        let other = &files[first.file.0].source;
                        let (line, column) = other.line_col(first.span.offset());
                        Some(format!(
                            "`{}` is already declared in {}:{line}:{column} (same package); rename one of them",
                            name.name, other.name
                        ))
                    };
                    problems.push((
                        file.id,
                        DiagnosticKind::DuplicateType {
                            name: name.name.clone(),
                            span: name.span,
                            first: same_file.then_some(first.span),
                            help,
                        },
                    ));
                } else {
                    // A service's own Rust items (trait, client, server)
                    // live in its module: only its name is in this scope.
                    if let Err(Clash::Other(problem)) = rust_names.declare(name) {
                        problems.push((file.id, problem));
                    }
                }
                let id = SymbolId(table.symbols.len());
                table.symbols.push(Symbol {
                    file: file.id,
                    name: name.name.clone(),
                    kind,
                    span: name.span,
                });
                table.by_key.entry(key).or_default().push(id);
                table.by_decl.insert((file.id, index), id);
            }
        }
        table
    }

    /// A symbol by id.
    pub(crate) fn get(&self, id: SymbolId) -> Option<&Symbol> {
        self.symbols.get(id.0)
    }

    /// How many symbols there are.
    pub(crate) fn len(&self) -> usize {
        self.symbols.len()
    }

    /// The symbol declared by `file.ast.decls[decl]`.
    pub(crate) fn of_decl(&self, file: FileId, decl: usize) -> Option<SymbolId> {
        self.by_decl.get(&(file, decl)).copied()
    }

    /// The model reference for a type symbol.
    pub(crate) fn type_ref(&self, files: &[LoadedFile], id: SymbolId) -> Option<TypeRef> {
        let symbol = self.get(id)?;
        let SymbolKind::Type(kind) = symbol.kind else {
            return None;
        };
        let file = files.get(symbol.file.0)?;
        Some(TypeRef {
            package: package_of(file),
            module_name: file.module_name.clone(),
            name: symbol.name.clone(),
            kind,
        })
    }

    /// Resolves `name` as written in `from`, which sees the files in
    /// `visible` (itself and everything it imports, transitively).
    ///
    /// A bare name means a type of the same package (or, failing that, of a
    /// file without a package); `pkg.Name` a type of package `pkg`.
    pub(crate) fn resolve(
        &self,
        files: &[LoadedFile],
        from: &LoadedFile,
        visible: &HashSet<FileId>,
        name: &TypeName,
    ) -> Result<SymbolId, DiagnosticKind> {
        let own_package = package_of(from);
        let mut keys = vec![(
            name.package.clone().or(own_package.clone()),
            name.name.clone(),
        )];
        if name.package.is_none() && own_package.is_some() {
            keys.push((None, name.name.clone()));
        }
        let mut service = None;
        for key in &keys {
            for &id in self.by_key.get(key).into_iter().flatten() {
                let Some(symbol) = self.get(id) else { continue };
                if !visible.contains(&symbol.file) {
                    continue;
                }
                match symbol.kind {
                    SymbolKind::Type(_) => return Ok(id),
                    SymbolKind::Service => service = service.or(Some(id)),
                }
            }
        }
        let help = match service {
            Some(_) => Some(format!(
                "`{}` is a service, not a type; fields, parameters and results need a struct, error, enum or union",
                name.written()
            )),
            None => self.unknown_type_help(files, from, visible, name),
        };
        Err(DiagnosticKind::UnknownType {
            name: name.written(),
            span: name.span,
            help,
        })
    }

    /// Why a name did not resolve, and what the user probably meant.
    fn unknown_type_help(
        &self,
        files: &[LoadedFile],
        from: &LoadedFile,
        visible: &HashSet<FileId>,
        name: &TypeName,
    ) -> Option<String> {
        let own_package = package_of(from);
        let is_type = |s: &&Symbol| matches!(s.kind, SymbolKind::Type(_));
        // Declared in a visible file of another package: needs qualifying.
        let qualified: Vec<String> = self
            .symbols
            .iter()
            .filter(is_type)
            .filter(|s| s.name == name.name && visible.contains(&s.file))
            .filter_map(|s| package_of(&files[s.file.0]))
            .filter(|package| Some(package) != name.package.as_ref())
            .collect();
        if let Some(package) = qualified.first() {
            return Some(format!(
                "a type of another package is written with its package: `{package}.{}`",
                name.name
            ));
        }
        // Declared in a file of the same build that is not imported.
        if let Some(help) = self.not_imported_help(files, from, visible, name) {
            return Some(help);
        }
        // `stream` without the item type or name that make it the keyword.
        if name.package.is_none() && name.name == "stream" {
            return Some(
                "to stream, write `stream`, the item type and the name: `stream Event watch(..)` or `1: stream Chunk chunks`"
                    .to_owned(),
            );
        }
        // A package that no visible file declares.
        if let Some(package) = &name.package {
            let known = visible
                .iter()
                .any(|id| package_of(&files[id.0]).as_deref() == Some(package.as_str()));
            if !known {
                return Some(format!(
                    "no imported file declares `package {package};`; import the file that declares it"
                ));
            }
        }
        // A close name in the same scope.
        let wanted_package = name.package.clone().or(own_package);
        let candidates: Vec<&str> = self
            .symbols
            .iter()
            .filter(is_type)
            .filter(|s| visible.contains(&s.file) && package_of(&files[s.file.0]) == wanted_package)
            .map(|s| s.name.as_str())
            .collect();
        closest(&name.name, candidates).map(|close| match &name.package {
            Some(package) => format!("did you mean `{package}.{close}`?"),
            None => format!("did you mean `{close}`?"),
        })
    }

    /// The hint for a type declared in a loaded file (one named to the
    /// same `idlc` run, or imported by one) that `from` does not import:
    /// the `import` to add, and the qualified name when the type is in
    /// another package than a bare name looks in.
    fn not_imported_help(
        &self,
        files: &[LoadedFile],
        from: &LoadedFile,
        visible: &HashSet<FileId>,
        name: &TypeName,
    ) -> Option<String> {
        let own_package = package_of(from);
        // The packages the name looks in as written.
        let looks_in = |package: &Option<String>| match &name.package {
            Some(written) => package.as_ref() == Some(written),
            None => *package == own_package || package.is_none(),
        };
        let declared: Vec<(&Symbol, Option<String>)> = self
            .symbols
            .iter()
            .filter(|s| matches!(s.kind, SymbolKind::Type(_)))
            .filter(|s| s.name == name.name && !visible.contains(&s.file))
            .map(|s| (s, package_of(&files[s.file.0])))
            .collect();
        // One that the name, as written, finds once imported.
        if let Some((symbol, _)) = declared.iter().find(|(_, package)| looks_in(package)) {
            let target = &files[symbol.file.0];
            return Some(format!(
                "`{}` is declared in {}: {}",
                name.written(),
                target.source.name,
                add_import(from, target)
            ));
        }
        // A bare name of another package: import it and qualify the name.
        if name.package.is_some() {
            return None;
        }
        let (symbol, package) = declared.first()?;
        let package = package.as_deref()?;
        let target = &files[symbol.file.0];
        Some(format!(
            "`{}` is declared in package `{package}` ({}): {} and write `{package}.{}`",
            name.name,
            target.source.name,
            add_import(from, target),
            name.name
        ))
    }
}

/// The package a file declares.
pub(crate) fn package_of(file: &LoadedFile) -> Option<String> {
    file.ast.package.as_ref().map(|p| p.name.clone())
}
