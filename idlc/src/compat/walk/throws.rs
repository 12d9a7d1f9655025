//! Comparing a method's declared errors (`throws`). They travel as a union
//! whose arm is the error's position for protobuf (tag 1, 2, ...) and
//! postcard, and the snake_case name of its type for JSON and MessagePack
//! (`NotFound` is `not_found`).

use heck::ToSnakeCase;
use miette::SourceSpan;

use super::Walk;
use crate::compat::rules::{Rule, Serializer, SerializerSet};
use crate::model::{Method, MethodSpans, TypeRef};

/// One version of a method: its file, the method, its spans and the span of
/// its name (where a finding without a better spot points).
pub(super) type MethodSide<'m> = (usize, &'m Method, Option<&'m MethodSpans>, SourceSpan);

/// The same declared type (package and name).
fn same(a: &TypeRef, b: &TypeRef) -> bool {
    a.package == b.package && a.name == b.name
}

impl Walk<'_> {
    /// Each error the new method throws must reach old clients as an error
    /// they know: by position (protobuf, postcard) and by name (JSON,
    /// MessagePack). Another type where an old one stood is compared member
    /// by member, like any renamed type.
    pub(super) fn throws(&mut self, name: &str, old: MethodSide<'_>, new: MethodSide<'_>) {
        let (old_file, old_method, old_spans, old_name_span) = old;
        let (new_file, new_method, new_spans, new_name_span) = new;
        let old_span = |position: usize| {
            old_spans
                .and_then(|s| s.throws.get(position).copied())
                .unwrap_or(old_name_span)
        };
        let by_position = SerializerSet::PROTOBUF.union(SerializerSet::POSTCARD);
        for (position, error) in new_method.throws.iter().enumerate() {
            let new_span = new_spans
                .and_then(|s| s.throws.get(position).copied())
                .unwrap_or(new_name_span);
            let mut added = SerializerSet::NONE;
            // protobuf and postcard: what old clients read at this position.
            let at_position = old_method.throws.get(position);
            let moved_from = old_method
                .throws
                .iter()
                .position(|e| same(e, error))
                .filter(|&old_position| old_position != position);
            match (at_position, moved_from) {
                (_, Some(old_position)) => self.report(
                    Rule::ThrowsReordered,
                    by_position,
                    format!(
                        "error `{}` of `{name}` moved from position {} to {} in `throws`",
                        error.name,
                        old_position + 1,
                        position + 1
                    ),
                    Some(self.new.at(
                        new_file,
                        new_span,
                        format!("now error tag {}", position + 1),
                    )),
                    Some(self.old.at(
                        old_file,
                        old_span(old_position),
                        format!("was error tag {}", old_position + 1),
                    )),
                ),
                (None, None) => added = by_position,
                (Some(was), None) if !same(was, error) => {
                    self.renamed.push((was.clone(), error.clone()));
                }
                (Some(_), None) => {}
            }
            // JSON and MessagePack: the old error of the same name.
            let wire_name = error.name.to_snake_case();
            match old_method
                .throws
                .iter()
                .find(|e| e.name.to_snake_case() == wire_name)
            {
                None => added = added.union(SerializerSet::BY_NAME),
                Some(was) if !same(was, error) => self.renamed.push((was.clone(), error.clone())),
                Some(_) => {}
            }
            if added.is_empty() {
                continue;
            }
            let (message, old_at) = match at_position {
                Some(was) if !added.contains(Serializer::Protobuf) => (
                    format!(
                        "method `{name}` now throws `{}` in place of `{}` (error tag {}): \
                         JSON and MessagePack name it `{wire_name}`",
                        error.name,
                        was.name,
                        position + 1
                    ),
                    self.old
                        .at(old_file, old_span(position), format!("was `{}`", was.name)),
                ),
                _ => (
                    format!("method `{name}` now throws `{}`", error.name),
                    self.old.at(
                        old_file,
                        old_name_span,
                        format!("did not throw `{}`", error.name),
                    ),
                ),
            };
            self.report(
                Rule::ThrowsAdded,
                added,
                message,
                Some(self.new.at(new_file, new_span, "new error")),
                Some(old_at),
            );
        }
    }
}
