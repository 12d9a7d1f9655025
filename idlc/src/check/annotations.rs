//! Annotations: the known set (`@version`, `@idempotent`, `@timeout`,
//! `@hash_key`) with their arguments checked, an error for a near miss of
//! a known one (`@idempotnet`: see [`near_miss`]), and a warning for any
//! other.

use miette::SourceSpan;

use super::FileChecker;
use super::suggest::near_miss;
use crate::diagnostic::DiagnosticKind;
use crate::parse::ast::{Annotation, LiteralKind};

/// The kind of element an annotation is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Struct,
    Error,
    Union,
    Enum,
    Variant,
    Field,
    UnionArm,
    Service,
    Method,
    Parameter,
    Const,
}

impl Target {
    fn describe(self) -> &'static str {
        match self {
            Target::Struct => "a struct",
            Target::Error => "an error",
            Target::Union => "a union",
            Target::Enum => "an enum",
            Target::Variant => "an enum variant",
            Target::Field => "a field",
            Target::UnionArm => "a union arm",
            Target::Service => "a service",
            Target::Method => "a method",
            Target::Parameter => "a parameter",
            Target::Const => "a constant",
        }
    }
}

/// The known annotations and what they apply to.
const KNOWN: &[(&str, Target)] = &[
    ("version", Target::Service),
    ("idempotent", Target::Method),
    ("timeout", Target::Method),
    ("hash_key", Target::Parameter),
];

/// What a known annotation does: what ignoring a misspelling of it would
/// silently lose.
fn effect(known: &str) -> &'static str {
    match known {
        "version" => "the service's version in its wire name (`Service:v`)",
        "idempotent" => "retries of the call, also on another instance (failover)",
        "timeout" => "the method's default deadline",
        "hash_key" => "routing calls by this parameter's value (consistent hashing)",
        _ => "what it does",
    }
}

const KNOWN_LIST: &str = "the known annotations are `@version(\"v\")` on a service, `@idempotent` and `@timeout(ms = N)` on a method, and `@hash_key` on a parameter";

/// The meaning of a method's annotations.
#[derive(Debug, Default)]
pub(super) struct MethodAnnotations {
    pub idempotent: bool,
    pub timeout_ms: Option<u64>,
}

impl FileChecker<'_> {
    /// Warns about unknown and misplaced annotations and reports known ones
    /// given twice; returns the known annotations that apply to `target`.
    fn applicable<'n>(
        &mut self,
        annotations: &'n [Annotation],
        target: Target,
    ) -> Vec<&'n Annotation> {
        let mut applicable: Vec<&Annotation> = Vec::new();
        for annotation in annotations {
            let name = annotation.name.name.as_str();
            match KNOWN.iter().find(|(known, _)| *known == name) {
                None => {
                    let known_names: Vec<&str> = KNOWN.iter().map(|(known, _)| *known).collect();
                    match near_miss(name, &known_names) {
                        Some(known) => self.report(DiagnosticKind::MisspelledAnnotation {
                            name: name.to_owned(),
                            known: known.to_owned(),
                            effect: effect(known).to_owned(),
                            span: annotation.name.span,
                        }),
                        None => self.report(DiagnosticKind::UnknownAnnotation {
                            name: name.to_owned(),
                            target: target.describe().to_owned(),
                            span: annotation.name.span,
                            help: Some(KNOWN_LIST.to_owned()),
                        }),
                    }
                }
                Some((_, applies_to)) if *applies_to != target => {
                    self.report(DiagnosticKind::MisplacedAnnotation {
                        name: name.to_owned(),
                        target: target.describe().to_owned(),
                        applies_to: applies_to.describe().to_owned(),
                        span: annotation.name.span,
                    });
                }
                Some(_) => {
                    if applicable.iter().any(|seen| seen.name.name == name) {
                        self.report(DiagnosticKind::BadAnnotation {
                            name: name.to_owned(),
                            message: "given twice".to_owned(),
                            span: annotation.span,
                            help: Some("remove one of them".to_owned()),
                        });
                    } else {
                        applicable.push(annotation);
                    }
                }
            }
        }
        applicable
    }

    /// For elements without known annotations: warns about each one.
    pub(super) fn annotations_without_meaning(
        &mut self,
        annotations: &[Annotation],
        target: Target,
    ) {
        let _ = self.applicable(annotations, target);
    }

    /// A service's `@version("v")`.
    pub(super) fn service_annotations(&mut self, annotations: &[Annotation]) -> Option<String> {
        let mut version = None;
        for annotation in self.applicable(annotations, Target::Service) {
            let help = Some("write `@version(\"2\")`".to_owned());
            match annotation.args.as_slice() {
                [arg] if arg.key.is_none() => match &arg.value.kind {
                    LiteralKind::String(v) if !v.is_empty() && !v.contains(char::is_whitespace) => {
                        version = Some(v.clone());
                    }
                    LiteralKind::String(_) => self.bad(
                        annotation,
                        "the version must be a non-empty string without spaces",
                        help,
                    ),
                    _ => self.bad(annotation, "the version must be a string", help),
                },
                _ => self.bad(annotation, "expected one string argument", help),
            }
        }
        version
    }

    /// A method's `@idempotent` and `@timeout(ms = N)`.
    pub(super) fn method_annotations(&mut self, annotations: &[Annotation]) -> MethodAnnotations {
        let mut meaning = MethodAnnotations::default();
        for annotation in self.applicable(annotations, Target::Method) {
            match annotation.name.name.as_str() {
                "idempotent" => {
                    if annotation.args.is_empty() {
                        meaning.idempotent = true;
                    } else {
                        self.bad(
                            annotation,
                            "it takes no arguments",
                            Some("write `@idempotent`".to_owned()),
                        );
                    }
                }
                _ => meaning.timeout_ms = self.timeout(annotation),
            }
        }
        meaning
    }

    fn timeout(&mut self, annotation: &Annotation) -> Option<u64> {
        let help = Some("write `@timeout(ms = 200)`".to_owned());
        let [arg] = annotation.args.as_slice() else {
            self.bad(annotation, "expected one argument `ms = N`", help);
            return None;
        };
        if arg.key.as_ref().map(|key| key.name.as_str()) != Some("ms") {
            self.bad(annotation, "expected `ms = N`", help);
            return None;
        }
        match arg.value.kind {
            LiteralKind::Int(ms) if ms > 0 => match u64::try_from(ms) {
                Ok(ms) => Some(ms),
                Err(_) => {
                    self.bad(annotation, "the timeout is too large", help);
                    None
                }
            },
            LiteralKind::Int(_) => {
                self.bad(annotation, "the timeout must be at least 1 ms", help);
                None
            }
            _ => {
                self.bad(
                    annotation,
                    "the timeout must be a whole number of milliseconds",
                    help,
                );
                None
            }
        }
    }

    /// A parameter's `@hash_key`: its span when given.
    pub(super) fn parameter_annotations(
        &mut self,
        annotations: &[Annotation],
    ) -> Option<SourceSpan> {
        let mut hash_key = None;
        for annotation in self.applicable(annotations, Target::Parameter) {
            if annotation.args.is_empty() {
                hash_key = Some(annotation.span);
            } else {
                self.bad(
                    annotation,
                    "it takes no arguments",
                    Some("write `@hash_key`".to_owned()),
                );
            }
        }
        hash_key
    }

    fn bad(&mut self, annotation: &Annotation, message: &str, help: Option<String>) {
        self.report(DiagnosticKind::BadAnnotation {
            name: annotation.name.name.clone(),
            message: message.to_owned(),
            span: annotation.span,
            help,
        });
    }
}
