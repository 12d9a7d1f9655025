//! Schemas: checked `.rpc` files (from `--idl` files, or from the sources a
//! server sends through reflection), indexed for the dynamic codec.

use std::collections::HashMap;
use std::path::{Component, Path};

use idlc::model::{Field, FieldType, FileModel, Method, Service, TypeDef, TypeRef};

/// A schema could not be loaded, or does not have what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The IDL files have errors (rendered diagnostics).
    #[error("the IDL files have errors:\n{0}")]
    Invalid(String),
    /// A source file sent by a server has a name that cannot be used as a
    /// relative path.
    #[error("the server sent a source file with an unusable name `{0}`")]
    BadFileName(String),
    /// The sources could not be written to a temporary directory.
    #[error("cannot write the server's sources to a temporary directory: {0}")]
    Io(#[from] std::io::Error),
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
}

impl Schema {
    /// Loads and checks `.rpc` files (and what they import).
    pub fn from_files(paths: &[impl AsRef<Path>]) -> Result<Schema, SchemaError> {
        let checked = idlc::check_files(paths).map_err(|d| SchemaError::Invalid(d.render()))?;
        Ok(Schema::new(checked.files))
    }

    /// Checks sources sent by a server, `(name, text)`, the first being the
    /// file to start from (its imports are among the others).
    pub fn from_sources(sources: &[(String, String)]) -> Result<Schema, SchemaError> {
        let dir = tempfile::Builder::new().prefix("courier-idl-").tempdir()?;
        let mut roots = Vec::new();
        for (name, text) in sources {
            let relative = Path::new(name);
            let usable = !name.is_empty()
                && relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)));
            if !usable {
                return Err(SchemaError::BadFileName(name.clone()));
            }
            let path = dir.path().join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text)?;
            roots.push(path);
        }
        let options = idlc::CheckOptions::new().include(dir.path());
        let checked = idlc::check_files_with(&roots[..roots.len().min(1)], &options)
            .map_err(|d| SchemaError::Invalid(d.render()))?;
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
        let result = m
            .returns
            .iter()
            .map(|ty| Field {
                name: "value".into(),
                tag: 1,
                ty: ty.clone(),
                default: None,
                boxed: false,
                docs: Vec::new(),
                hash_key: false,
            })
            .collect();
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

    #[test]
    fn source_names_must_stay_inside() {
        for bad in ["../x.rpc", "/etc/passwd", "", "a/../../b.rpc"] {
            let error = Schema::from_sources(&[(bad.to_owned(), String::new())]);
            assert!(
                matches!(error, Err(SchemaError::BadFileName(_))),
                "{bad}: {error:?}"
            );
        }
    }
}
