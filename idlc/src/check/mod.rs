//! Stage 2: syntax trees to the checked [`model`](crate::model).
//!
//! Resolves every name and checks every rule of IDL.md, collecting all
//! diagnostics rather than stopping at the first. Never panics, whatever the
//! input; recursion is bounded by the parser's nesting limit, and the graph
//! passes (import cycles, type layout) are iterative.

mod annotations;
mod enums;
mod fields;
mod import_hint;
mod layout;
pub(crate) mod names;
mod services;
mod spans;
mod suggest;
mod symbols;
mod types;
mod values;

use std::collections::HashSet;

use crate::diagnostic::DiagnosticKind;
use crate::load::LoadedFile;
use crate::model::{ConstDef, FieldType, FileModel, StructDef, TypeDef, UnionDef};
use crate::parse::ast::{self, Decl, StructKind};
use crate::source::FileId;
use annotations::Target;
use names::{Case, Clash, NameScope};
use symbols::{SymbolId, SymbolTable, package_of};

/// The constant every generated module declares for its embedded `.rpc`
/// source (codegen's `IDL_SOURCE`); no IDL constant may become it.
pub(crate) const IDL_SOURCE_CONST: &str = "IDL_SOURCE";

/// The checked files and every problem found.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// One model per loaded file, in load order (meaningful only without
    /// errors).
    pub models: Vec<FileModel>,
    /// Diagnostics by file.
    pub problems: Vec<(FileId, DiagnosticKind)>,
}

/// Checks loaded (and parsed) files.
pub(crate) fn check(files: &[LoadedFile]) -> Checked {
    let mut problems = Vec::new();
    let symbols = SymbolTable::build(files, &mut problems);
    let mut models = Vec::with_capacity(files.len());
    let mut edges = Vec::new();
    for file in files {
        let visible = visible_files(files, file.id);
        let mut checker = FileChecker {
            file,
            files,
            symbols: &symbols,
            visible: &visible,
            problems: Vec::new(),
            edges: Vec::new(),
        };
        let model = checker.file_model();
        problems.extend(checker.problems.into_iter().map(|p| (file.id, p)));
        edges.extend(checker.edges);
        models.push(model);
    }
    layout::apply(&symbols, &edges, &mut models, &mut problems);
    for (file, model) in files.iter().zip(&mut models) {
        let (names, clashes) = crate::rust_names::table(model);
        model.rust_names = names;
        problems.extend(
            clashes
                .into_iter()
                .map(|clash| (file.id, generated_name_collision(clash))),
        );
    }
    Checked { models, problems }
}

/// A clash in the table of generated Rust names, as a diagnostic.
fn generated_name_collision(clash: crate::rust_names::Clash) -> DiagnosticKind {
    DiagnosticKind::GeneratedNameCollision {
        rust: clash.name,
        scope: clash.scope,
        what: clash.second.what,
        other: clash.first.what,
        span: clash
            .second
            .span
            .or(clash.first.span)
            .unwrap_or_else(|| miette::SourceSpan::from(0..0)),
        first: clash.first.span.filter(|_| clash.second.span.is_some()),
    }
}

/// The files `from` can see: itself and its imports, transitively.
fn visible_files(files: &[LoadedFile], from: FileId) -> HashSet<FileId> {
    let mut seen = HashSet::from([from]);
    let mut stack = vec![from];
    while let Some(id) = stack.pop() {
        for edge in files.get(id.0).map_or(&[][..], |f| f.imports.as_slice()) {
            if seen.insert(edge.target) {
                stack.push(edge.target);
            }
        }
    }
    seen
}

/// The module names of the files `from` imports, transitively, each once,
/// breadth first in import order.
fn transitive_imports(files: &[LoadedFile], from: FileId) -> Vec<String> {
    let mut seen = HashSet::from([from]);
    let mut order = Vec::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(id) = queue.pop_front() {
        for edge in files.get(id.0).map_or(&[][..], |f| f.imports.as_slice()) {
            if seen.insert(edge.target) {
                queue.push_back(edge.target);
                if let Some(file) = files.get(edge.target.0) {
                    order.push(file.module_name.clone());
                }
            }
        }
    }
    order
}

/// Checks one file against the symbols of all.
struct FileChecker<'a> {
    file: &'a LoadedFile,
    files: &'a [LoadedFile],
    symbols: &'a SymbolTable,
    visible: &'a HashSet<FileId>,
    problems: Vec<DiagnosticKind>,
    /// Type containment found in this file, for the layout pass.
    edges: Vec<layout::Edge>,
}

impl FileChecker<'_> {
    fn report(&mut self, problem: DiagnosticKind) {
        self.problems.push(problem);
    }

    /// The source text under a span (for quoting what the user wrote).
    fn written(&self, span: miette::SourceSpan) -> String {
        let text = &self.file.source.text;
        let start = span.offset().min(text.len());
        let end = (span.offset() + span.len()).min(text.len());
        text.get(start..end).unwrap_or_default().to_owned()
    }

    fn file_model(&mut self) -> FileModel {
        let file = self.file;
        let mut model = FileModel {
            source: file.source.path.clone(),
            module_name: file.module_name.clone(),
            idl_name: file.idl_name.clone(),
            text: std::sync::Arc::clone(&file.source.text),
            imports: transitive_imports(self.files, file.id),
            package: package_of(file),
            constants: Vec::new(),
            types: Vec::new(),
            services: Vec::new(),
            spans: spans::of_file(&file.ast),
            rust_names: crate::rust_names::RustNames::default(),
        };
        let mut constants = NameScope::new(
            Case::ShoutySnake,
            format!("constants of module `{}`", file.module_name),
        );
        for (index, decl) in file.ast.decls.iter().enumerate() {
            let symbol = self.symbols.of_decl(file.id, index);
            match decl {
                Decl::Const(c) => {
                    match constants.declare(&c.name) {
                        Ok(()) if Case::ShoutySnake.apply(&c.name.name) == IDL_SOURCE_CONST => self
                            .report(DiagnosticKind::RustNameCollision {
                                name: c.name.name.clone(),
                                other: "the embedded .rpc source".to_owned(),
                                rust: IDL_SOURCE_CONST.to_owned(),
                                scope: format!("constants of module `{}`", file.module_name),
                                span: c.name.span,
                                first: None,
                            }),
                        Ok(()) => {}
                        Err(Clash::Duplicate(first)) => {
                            self.report(DiagnosticKind::DuplicateType {
                                name: c.name.name.clone(),
                                span: c.name.span,
                                first: Some(first),
                                help: Some("rename one of the constants".to_owned()),
                            })
                        }
                        Err(Clash::Other(problem)) => self.report(problem),
                    }
                    if let Some(constant) = self.constant(c) {
                        model.constants.push(constant);
                    }
                }
                Decl::Struct(s) => {
                    let type_index = model.types.len();
                    let def = self.struct_like(s, symbol, type_index);
                    model.types.push(def);
                }
                Decl::Enum(e) => {
                    let def = self.enum_def(e);
                    model.types.push(TypeDef::Enum(def));
                }
                Decl::Service(s) => {
                    let service = self.service(s, model.package.as_deref());
                    model.services.push(service);
                }
            }
        }
        model
    }

    fn constant(&mut self, c: &ast::ConstDecl) -> Option<ConstDef> {
        self.annotations_without_meaning(&c.annotations, Target::Const);
        let ty = FieldType::Scalar(c.ty);
        let value = match self.value(&c.value, &ty, "the constant's value") {
            Ok(value) => value,
            Err(problem) => {
                self.report(problem);
                return None;
            }
        };
        Some(ConstDef {
            name: c.name.name.clone(),
            ty: c.ty,
            value,
            docs: c.docs.clone(),
        })
    }

    /// A struct, error or union.
    fn struct_like(
        &mut self,
        decl: &ast::StructDecl,
        symbol: Option<SymbolId>,
        type_index: usize,
    ) -> TypeDef {
        let (target, keyword) = match decl.kind {
            StructKind::Struct => (Target::Struct, "struct"),
            StructKind::Error => (Target::Error, "error"),
            StructKind::Union => (Target::Union, "union"),
        };
        self.annotations_without_meaning(&decl.annotations, target);
        let container = fields::Container {
            kind: match decl.kind {
                StructKind::Union => fields::ContainerKind::Union,
                _ => fields::ContainerKind::Struct,
            },
            description: format!("{keyword} `{}`", decl.name.name),
            name: decl.name.name.clone(),
            layout: symbol.map(|from| fields::LayoutOwner {
                from,
                file_index: self.file.id.0,
                type_index,
            }),
        };
        let fields = self.fields(&container, &decl.fields);
        let name = decl.name.name.clone();
        let docs = decl.docs.clone();
        match decl.kind {
            StructKind::Union => {
                if decl.fields.is_empty() {
                    self.report(DiagnosticKind::EmptyUnion {
                        name: name.clone(),
                        span: decl.name.span,
                    });
                }
                TypeDef::Union(UnionDef {
                    name,
                    docs,
                    arms: fields,
                })
            }
            StructKind::Struct | StructKind::Error => TypeDef::Struct(StructDef {
                name,
                docs,
                is_error: decl.kind == StructKind::Error,
                fields,
            }),
        }
    }
}
