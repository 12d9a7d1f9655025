//! How a change of a field's type affects each serializer.

use super::rules::{Rule, SerializerSet};
use crate::model::{FieldType, Scalar, TypeKind, TypeRef};

/// What a type change does on the wire: the worst rule it falls under and
/// the serializers it breaks (`None`: nothing changed on any wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TypeChange {
    /// `WireEncodingChanged`, `OptionalityChanged` or `IntegerWidthChanged`.
    pub rule: Rule,
    /// The serializers whose peers are hurt.
    pub breaks: SerializerSet,
}

/// Declared types that now stand where other declared types stood (a field
/// of type `Money` now has type `Price`): their members must be compared.
pub(super) type RenamedTypes = Vec<(TypeRef, TypeRef)>;

fn severity(rule: Rule) -> u8 {
    match rule {
        Rule::WireEncodingChanged => 3,
        Rule::OptionalityChanged => 2,
        _ => 1,
    }
}

/// The worse of two changes (same rule: the union of what they break).
fn worse(a: Option<TypeChange>, b: Option<TypeChange>) -> Option<TypeChange> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) if a.rule == b.rule => Some(TypeChange {
            rule: a.rule,
            breaks: a.breaks.union(b.breaks),
        }),
        (Some(a), Some(b)) => Some(if severity(a.rule) >= severity(b.rule) {
            a
        } else {
            b
        }),
    }
}

fn change(rule: Rule, breaks: SerializerSet) -> Option<TypeChange> {
    Some(TypeChange { rule, breaks })
}

/// Structs and errors are both messages on every wire.
fn same_shape(a: TypeKind, b: TypeKind) -> bool {
    let message = |k| matches!(k, TypeKind::Struct | TypeKind::Error);
    a == b || (message(a) && message(b))
}

fn scalars(old: Scalar, new: Scalar) -> Option<TypeChange> {
    use Scalar::{Bytes, I32, I64, String, U32, U64};
    match (old, new) {
        _ if old == new => None,
        (I32, I64) | (I64, I32) | (U32, U64) | (U64, U32) => {
            change(Rule::IntegerWidthChanged, SerializerSet::ALL)
        }
        // Both are length-delimited bytes in protobuf and postcard; JSON
        // writes `bytes` as base64, MessagePack as `bin`.
        (String, Bytes) | (Bytes, String) => {
            change(Rule::WireEncodingChanged, SerializerSet::BY_NAME)
        }
        _ => change(Rule::WireEncodingChanged, SerializerSet::ALL),
    }
}

/// Compares a field's old and new type. Declared types are compared by
/// name only; where the name changed (with the kind), the pair is pushed to
/// `renamed` so the caller compares their members.
pub(super) fn compare(
    old: &FieldType,
    new: &FieldType,
    renamed: &mut RenamedTypes,
) -> Option<TypeChange> {
    match (old, new) {
        (FieldType::Optional(o), FieldType::Optional(n)) => compare(o, n, renamed),
        // Same wire type in protobuf; `null`/`nil` in JSON and MessagePack
        // and a presence byte in postcard.
        (FieldType::Optional(o), n) | (n, FieldType::Optional(o)) => {
            let inner = if matches!(old, FieldType::Optional(_)) {
                compare(o, n, renamed)
            } else {
                compare(n, o, renamed)
            };
            // protobuf: the same wire type; an absent value is left out,
            // and read back as the old field's default.
            let optional = SerializerSet::BY_NAME.union(SerializerSet::POSTCARD);
            worse(inner, change(Rule::OptionalityChanged, optional))
        }
        (FieldType::Scalar(o), FieldType::Scalar(n)) => scalars(*o, *n),
        (FieldType::Named(o), FieldType::Named(n)) => {
            if !same_shape(o.kind, n.kind) {
                return change(Rule::WireEncodingChanged, SerializerSet::ALL);
            }
            if o.package != n.package || o.name != n.name {
                renamed.push((o.clone(), n.clone()));
            }
            None
        }
        // protobuf and postcard carry an enum as its i32 number; JSON and
        // MessagePack as its name.
        (FieldType::Named(e), FieldType::Scalar(Scalar::I32))
        | (FieldType::Scalar(Scalar::I32), FieldType::Named(e))
            if e.kind == TypeKind::Enum =>
        {
            change(Rule::WireEncodingChanged, SerializerSet::BY_NAME)
        }
        (FieldType::List(o), FieldType::List(n)) => compare(o, n, renamed),
        (FieldType::Map(ok, ov), FieldType::Map(nk, nv)) => {
            worse(scalars(*ok, *nk), compare(ov, nv, renamed))
        }
        _ => change(Rule::WireEncodingChanged, SerializerSet::ALL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scalar::{Bytes, F32, F64, I32, I64, String as Str, U32, U64};

    fn scalar(s: Scalar) -> FieldType {
        FieldType::Scalar(s)
    }

    fn named(name: &str, kind: TypeKind) -> FieldType {
        FieldType::Named(TypeRef {
            package: None,
            module_name: "m".into(),
            name: name.into(),
            kind,
        })
    }

    fn check(old: &FieldType, new: &FieldType) -> Option<(Rule, SerializerSet)> {
        let mut renamed = Vec::new();
        compare(old, new, &mut renamed).map(|c| (c.rule, c.breaks))
    }

    #[test]
    fn the_type_table_of_the_book() {
        let by_name = SerializerSet::BY_NAME;
        let all = SerializerSet::ALL;
        let wire = Rule::WireEncodingChanged;
        assert_eq!(check(&scalar(Str), &scalar(Str)), None);
        assert_eq!(check(&scalar(Str), &scalar(Bytes)), Some((wire, by_name)));
        assert_eq!(check(&scalar(Bytes), &scalar(Str)), Some((wire, by_name)));
        let status = named("Status", TypeKind::Enum);
        assert_eq!(check(&status, &scalar(I32)), Some((wire, by_name)));
        assert_eq!(check(&scalar(I32), &status), Some((wire, by_name)));
        assert_eq!(check(&status, &scalar(I64)), Some((wire, all)));
        for (a, b) in [(I32, I64), (U64, U32)] {
            assert_eq!(
                check(&scalar(a), &scalar(b)),
                Some((Rule::IntegerWidthChanged, all))
            );
        }
        for (a, b) in [(I32, U32), (F32, F64), (U32, Str)] {
            assert_eq!(check(&scalar(a), &scalar(b)), Some((wire, all)));
        }
        let optional = FieldType::Optional(Box::new(scalar(Str)));
        let optional_rule = Some((
            Rule::OptionalityChanged,
            SerializerSet::BY_NAME.union(SerializerSet::POSTCARD),
        ));
        assert_eq!(check(&scalar(Str), &optional), optional_rule);
        assert_eq!(check(&optional, &scalar(Str)), optional_rule);
        // The inner change wins when it is worse.
        assert_eq!(check(&optional, &scalar(U32)), Some((wire, all)));
        let list = |t| FieldType::List(Box::new(t));
        assert_eq!(check(&list(scalar(U32)), &list(scalar(U32))), None);
        assert_eq!(check(&list(scalar(U32)), &scalar(U32)), Some((wire, all)));
        let map = |k, v| FieldType::Map(k, Box::new(v));
        assert_eq!(
            check(&map(Str, scalar(Str)), &map(Str, scalar(Bytes))),
            Some((wire, by_name))
        );
        assert_eq!(
            check(&map(Str, scalar(Str)), &map(U32, scalar(Str))),
            Some((wire, all))
        );
    }

    #[test]
    fn renamed_types_of_the_same_kind_are_compared_later() {
        let mut renamed = Vec::new();
        let money = named("Money", TypeKind::Struct);
        let price = named("Price", TypeKind::Error);
        assert_eq!(compare(&money, &price, &mut renamed), None);
        assert_eq!(renamed.len(), 1);
        let status = named("Status", TypeKind::Enum);
        let change = compare(&money, &status, &mut renamed).map(|c| c.rule);
        assert_eq!(change, Some(Rule::WireEncodingChanged));
        assert_eq!(renamed.len(), 1, "different kinds are not compared");
    }
}
