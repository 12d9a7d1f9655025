//! `idlc compat`: the changes between two versions of a `.rpc` tree that
//! break peers still running the old version.
//!
//! Both versions are checked first ([`CheckedFiles`]); [`compare`] then
//! walks the old models and looks each service, method, parameter, type,
//! field, arm and enum variant up in the new ones. Every finding is an
//! [`Incompatibility`]: a [`Rule`] (with a stable id such as
//! `field-removed`), a message, and spans in both trees, rendered by miette
//! like idlc's own diagnostics (code `compat::<rule>`).
//!
//! What breaks depends on the serializer: protobuf identifies fields by tag,
//! JSON and MessagePack by name, postcard by position. Each finding says
//! which serializers it breaks, and only findings that break one of the
//! serializers asked for are returned.
//!
//! ```no_run
//! use idlc::compat::{self, SerializerSet};
//! let old = idlc::check_files(&["old/shop.rpc"]).unwrap();
//! let new = idlc::check_files(&["idl/shop.rpc"]).unwrap();
//! for finding in compat::compare(&old, &new, SerializerSet::DEFAULT) {
//!     eprint!("{}", finding.render());
//! }
//! ```

mod idl_text;
mod rules;
mod tree;
mod walk;
mod wire;

use std::fmt;

use miette::{LabeledSpan, Severity, SourceCode, SourceSpan};

pub use rules::{Rule, Serializer, SerializerSet};
pub use tree::{LoadError, load_pair};

use crate::CheckedFiles;
use crate::source::SourceText;

/// Compares an old and a new version of a set of `.rpc` files: every change
/// that breaks old peers using one of `serializers`, plus warnings (see
/// [`Rule::is_breaking`]), sorted by file and position.
pub fn compare(
    old: &CheckedFiles,
    new: &CheckedFiles,
    serializers: SerializerSet,
) -> Vec<Incompatibility> {
    walk::compare(&old.files, &new.files, serializers)
}

/// A spot in one of the two trees.
#[derive(Debug, Clone)]
pub struct Location {
    source: SourceText,
    span: SourceSpan,
    label: String,
}

impl Location {
    pub(crate) fn new(source: SourceText, span: SourceSpan, label: impl Into<String>) -> Self {
        Location {
            source,
            span,
            label: label.into(),
        }
    }

    /// The file's name as shown (the path as given).
    pub fn file_name(&self) -> &str {
        self.source.name()
    }

    /// Where in the file.
    pub fn span(&self) -> SourceSpan {
        self.span
    }

    /// 1-based line and column of the start.
    pub fn line_col(&self) -> (usize, usize) {
        crate::source::line_col(self.source.inner(), self.span.offset())
    }
}

/// One change that breaks (or, for warnings, may hurt) old peers.
#[derive(Debug, Clone)]
pub struct Incompatibility {
    rule: Rule,
    message: String,
    breaks: SerializerSet,
    new: Option<Location>,
    old: Option<OldSide>,
}

/// The old tree's side of a finding, shown as a related diagnostic under
/// the new tree's.
#[derive(Debug, Clone)]
struct OldSide(Location);

impl Incompatibility {
    pub(crate) fn new(
        rule: Rule,
        message: String,
        breaks: SerializerSet,
        new: Option<Location>,
        old: Option<Location>,
    ) -> Self {
        Incompatibility {
            rule,
            message,
            breaks,
            new,
            old: old.map(OldSide),
        }
    }

    /// The rule it falls under.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Whether it fails the check (otherwise it is a warning).
    pub fn is_breaking(&self) -> bool {
        self.rule.is_breaking()
    }

    /// The serializers (of those asked for) whose peers it hurts.
    pub fn breaks(&self) -> SerializerSet {
        self.breaks
    }

    /// Where in the new tree, if the thing still exists there.
    pub fn new_location(&self) -> Option<&Location> {
        self.new.as_ref()
    }

    /// Where in the old tree.
    pub fn old_location(&self) -> Option<&Location> {
        self.old.as_ref().map(|old| &old.0)
    }

    /// `new.rpc:3:5: compat::field-removed: ...`.
    pub fn one_line(&self) -> String {
        let place = self
            .new
            .as_ref()
            .or(self.old_location())
            .map(|at| {
                let (line, column) = at.line_col();
                format!("{}:{line}:{column}: ", at.file_name())
            })
            .unwrap_or_default();
        format!("{place}compat::{}: {}", self.rule, self.message)
    }

    /// Renders it like idlc's diagnostics: the new file's snippet, then the
    /// old file's (ASCII, no colors).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if crate::diagnostic::render_report(&mut out, self).is_err() {
            out = self.one_line();
            out.push('\n');
        }
        out
    }

    fn primary(&self) -> Option<&Location> {
        self.new.as_ref().or(self.old_location())
    }

    fn help_text(&self) -> String {
        let effect = if self.rule.is_breaking() {
            "breaks"
        } else {
            "a risk for"
        };
        format!("{} ({effect} {})", self.rule.why(), self.breaks)
    }
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Incompatibility {}

fn label_of(at: &Location) -> LabeledSpan {
    LabeledSpan::new_primary_with_span(Some(at.label.clone()), at.span)
}

impl miette::Diagnostic for Incompatibility {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("compat::{}", self.rule)))
    }

    fn severity(&self) -> Option<Severity> {
        Some(if self.rule.is_breaking() {
            Severity::Error
        } else {
            Severity::Warning
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.help_text()))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.primary().map(|at| &at.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let at = self.primary()?;
        Some(Box::new(std::iter::once(label_of(at))))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        let old = self.old.as_ref().filter(|_| self.new.is_some())?;
        Some(Box::new(std::iter::once(old as &dyn miette::Diagnostic)))
    }
}

impl fmt::Display for OldSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in the old version ({})", self.0.file_name())
    }
}

impl std::error::Error for OldSide {}

impl miette::Diagnostic for OldSide {
    fn severity(&self) -> Option<Severity> {
        Some(Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.0.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(label_of(&self.0))))
    }
}
