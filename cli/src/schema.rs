//! Schemas: checked `.rpc` files (from `--idl` files, or from the sources a
//! server sends through reflection), indexed for the dynamic codec.

use std::collections::HashMap;
use std::path::Path;

use idlc::model::{Field, FieldType, FileModel, Method, Service, TypeDef, TypeRef};

/// A schema could not be loaded, or does not have what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The IDL files have errors (rendered diagnostics).
    #[error("the IDL files have errors:\n{0}")]
    Invalid(String),
    /// A server sent no source files.
    #[error("the server sent no source files")]
    NoSources,
    /// No service with this wire name.
    #[error("the schema has no service `{service}`{}", known_list(known))]
    UnknownService {
        /// The name asked for.
        service: String,
        /// The services the schema has.
        known: Vec<String>,
    },
    /// No method with this name in the service.
    #[error("service `{service}` has no method `{method}`{}", known_list(known))]
    UnknownMethod {
        /// The service.
        service: String,
        /// The name asked for.
        method: String,
        /// The methods the service has.
        known: Vec<String>,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!("; it has: {}", known.join(", "))
    }
}

/// Checked `.rpc` files and an index of their types.
#[derive(Debug, Clone)]
pub struct Schema {
    files: Vec<FileModel>,
    /// (module name, type name) → (file index, type index).
    types: HashMap<(String, String), (usize, usize)>,
}

/// One method of a schema, with its three payload messages.
#[derive(Debug, Clone)]
pub struct MethodSchema<'a> {
    /// The service.
    pub service: &'a Service,
    /// The method.
    pub method: &'a Method,
    /// The result message's one field (`value`, tag 1), if not `void`.
    pub result: Vec<Field>,
    /// The error message's arms: one per declared error, tag = position.
    pub errors: Vec<Field>,
    /// For a server-streaming method (`stream T` result), the item
    /// message's one field (`value`, tag 1); empty otherwise.
    pub item: Vec<Field>,
}

impl Schema {
    /// Loads and checks `.rpc` files (and what they import).
    pub fn from_files(paths: &[impl AsRef<Path>]) -> Result<Schema, SchemaError> {
        let checked = idlc::check_files(paths).map_err(|d| SchemaError::Invalid(d.render()))?;
        Ok(Schema::new(checked.files))
    }

    /// Checks sources sent by a server, `(name, text)`, the first being the
    /// file to start from (its imports are among the others).
    ///
    /// Everything stays in memory: imports resolve only among the names the
    /// server sent (relative to the importer's name, `..` folded; an
    /// absolute import by its file name), so a server can never make this
    /// read, or show in a diagnostic, a file of this machine.
    pub fn from_sources(sources: &[(String, String)]) -> Result<Schema, SchemaError> {
        let (root, _) = sources.first().ok_or(SchemaError::NoSources)?;
        let checked =
            idlc::check_sources(sources, &[root]).map_err(|d| SchemaError::Invalid(d.render()))?;
        Ok(Schema::new(checked.files))
    }

    /// A schema of already checked files.
    pub fn new(files: Vec<FileModel>) -> Schema {
        let mut types = HashMap::new();
        for (f, file) in files.iter().enumerate() {
            for (t, ty) in file.types.iter().enumerate() {
                types.insert((file.module_name.clone(), ty.name().to_owned()), (f, t));
            }
        }
        Schema { files, types }
    }

    /// The checked files.
    pub fn files(&self) -> &[FileModel] {
        &self.files
    }

    /// Every service, in file order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.files.iter().flat_map(|f| f.services.iter())
    }

    /// The declaration a reference names.
    pub fn resolve(&self, ty: &TypeRef) -> Option<&TypeDef> {
        let &(f, t) = self.types.get(&(ty.module_name.clone(), ty.name.clone()))?;
        self.files.get(f)?.types.get(t)
    }

    /// The method `method` of the service whose wire name is `service`.
    pub fn method(&self, service: &str, method: &str) -> Result<MethodSchema<'_>, SchemaError> {
        let Some(found) = self.services().find(|s| s.wire_name == service) else {
            return Err(SchemaError::UnknownService {
                service: service.to_owned(),
                known: self.services().map(|s| s.wire_name.clone()).collect(),
            });
        };
        let Some(m) = found.methods.iter().find(|m| m.name == method) else {
            return Err(SchemaError::UnknownMethod {
                service: service.to_owned(),
                method: method.to_owned(),
                known: found.methods.iter().map(|m| m.name.clone()).collect(),
            });
        };
        let value = |ty: &FieldType| Field {
            name: "value".into(),
            tag: 1,
            ty: ty.clone(),
            default: None,
            boxed: false,
            docs: Vec::new(),
            hash_key: false,
        };
        let result = m.returns.iter().map(value).collect();
        let item = m.streaming.server_item().map(value).into_iter().collect();
        let errors = m
            .throws
            .iter()
            .enumerate()
            .map(|(position, error)| Field {
                name: snake_case(&error.name),
                tag: u32::try_from(position + 1).unwrap_or(u32::MAX),
                ty: FieldType::Named(error.clone()),
                default: None,
                boxed: false,
                docs: Vec::new(),
                hash_key: false,
            })
            .collect();
        Ok(MethodSchema {
            service: found,
            method: m,
            result,
            errors,
            item,
        })
    }
}

/// The snake_case of an error type's name, as idlc names the error
/// message's fields (with the same `heck` rules: `EmptyName` →
/// `empty_name`).
pub fn snake_case(name: &str) -> String {
    heck::ToSnakeCase::to_snake_case(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_heck() {
        assert_eq!(snake_case("EmptyName"), "empty_name");
        assert_eq!(snake_case("HTTPError"), "http_error");
        assert_eq!(snake_case("OrderNotFound"), "order_not_found");
        assert_eq!(snake_case("NoSuchService"), "no_such_service");
    }

    fn sources(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
            .collect()
    }

    #[test]
    fn source_names_may_start_with_parent_dirs() {
        // What a server embeds for a root file that imports `../lib/mid.rpc`.
        let schema = Schema::from_sources(&sources(&[
            (
                "svc.rpc",
                "package svc;\nimport \"../lib/mid.rpc\";\nservice S {\n  mid.M get();\n}\n",
            ),
            (
                "../lib/mid.rpc",
                "package mid;\nimport \"base.rpc\";\nstruct M {\n  1: base.B b;\n}\n",
            ),
            (
                "../lib/base.rpc",
                "package base;\nstruct B {\n  1: u32 x;\n}\n",
            ),
        ]))
        .expect("the sources check");
        assert!(schema.method("svc.S", "get").is_ok());
        assert_eq!(schema.files().len(), 3);
    }

    #[test]
    fn absolute_imports_resolve_among_the_sent_names() {
        // The embedded name of an absolute import is its file name; the
        // text still says the absolute path, which must not be looked up
        // on this machine.
        let schema = Schema::from_sources(&sources(&[
            (
                "svc.rpc",
                "package svc;\nimport \"/srv/idl/money.rpc\";\nservice S {\n  money.Money get();\n}\n",
            ),
            ("money.rpc", "package money;\nstruct Money {\n  1: u64 cents;\n}\n"),
        ]))
        .expect("the sources check");
        assert!(schema.method("svc.S", "get").is_ok());
    }

    #[test]
    fn server_sent_imports_never_read_local_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret.rpc");
        std::fs::write(&secret, "package secret;\nstruct Leak {\n  1: u32 x;\n}\n").expect("write");
        let cwd_relative = secret
            .strip_prefix(std::env::current_dir().expect("cwd"))
            .map(|p| p.display().to_string());
        let imports = [
            secret.display().to_string(),
            format!("../../../../../../../../../..{}", secret.display()),
            cwd_relative.unwrap_or_else(|_| "secret.rpc".to_owned()),
        ];
        for import in imports {
            let text = format!(
                "package svc;\nimport \"{import}\";\nservice S {{\n  secret.Leak get();\n}}\n"
            );
            let error = Schema::from_sources(&sources(&[("svc.rpc", text.as_str())]))
                .expect_err("the import is not among the sent sources");
            let SchemaError::Invalid(rendered) = error else {
                panic!("{import}: {error:?}");
            };
            assert!(rendered.contains("cannot import"), "{rendered}");
            assert!(!rendered.contains("Leak {"), "{rendered}");
        }
        assert!(matches!(
            Schema::from_sources(&[]),
            Err(SchemaError::NoSources)
        ));
    }
}
