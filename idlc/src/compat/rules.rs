//! The rules `idlc compat` checks: stable kebab-case ids (for `--allow` and
//! the `compat::<id>` diagnostic codes), what each means, and which
//! serializers a change breaks.

use std::fmt;

/// One kind of change between an old and a new `.rpc` tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A service of the old tree is gone (by name and package).
    ServiceRemoved,
    /// A service's wire name changed other than by `@version` (its package).
    WireNameChanged,
    /// A service's `@version` changed, was added or was removed.
    VersionChanged,
    /// A method of a service is gone.
    MethodRemoved,
    /// A method became `oneway`, or stopped being `oneway`.
    OnewayChanged,
    /// A method throws an error old clients do not know: at a new position
    /// (protobuf, postcard), or under a new type name (JSON, MessagePack).
    ThrowsAdded,
    /// An error type of `throws` moved to another position (its tag).
    ThrowsReordered,
    /// A method's return type changed in a way its result does not survive.
    ReturnTypeChanged,
    /// A method's streaming shape changed (unary, server streaming, client
    /// streaming, bidirectional).
    StreamingChanged,
    /// The item type of a stream (a `stream` result or parameter) changed
    /// in a way its items do not survive.
    StreamItemTypeChanged,
    /// A field or parameter is gone.
    FieldRemoved,
    /// A field or parameter kept its name but got another tag.
    FieldRenumbered,
    /// A field, parameter or union arm kept its tag but got another name.
    FieldRenamed,
    /// A tag now belongs to a field of a type its old field does not decode as.
    TagTypeChanged,
    /// A field, parameter or arm kept name and tag, but its type is encoded
    /// differently.
    WireEncodingChanged,
    /// A field or parameter became `optional`, or stopped being `optional`.
    OptionalityChanged,
    /// A field's or parameter's default value changed.
    DefaultChanged,
    /// An integer changed width with its signedness (`i32` ↔ `i64`,
    /// `u32` ↔ `u64`): decodes fine while the values fit (a warning).
    IntegerWidthChanged,
    /// An enum variant is gone.
    EnumValueRemoved,
    /// An enum variant kept its name but got another number.
    EnumValueRenumbered,
    /// An enum number kept but its variant renamed.
    EnumValueRenamed,
    /// An enum variant was added: old JSON and MessagePack readers reject
    /// its name if a new peer sends it (a warning).
    EnumValueAdded,
    /// A union arm is gone.
    UnionArmRemoved,
    /// A union arm kept its name but got another tag.
    UnionArmRenumbered,
    /// The order or number of fields of a message changed (postcard only:
    /// it encodes fields by position).
    PostcardLayoutChanged,
}

impl Rule {
    /// Every rule, in the order the book lists them.
    pub const ALL: [Rule; 25] = [
        Rule::ServiceRemoved,
        Rule::WireNameChanged,
        Rule::VersionChanged,
        Rule::MethodRemoved,
        Rule::OnewayChanged,
        Rule::ThrowsAdded,
        Rule::ThrowsReordered,
        Rule::ReturnTypeChanged,
        Rule::StreamingChanged,
        Rule::StreamItemTypeChanged,
        Rule::FieldRemoved,
        Rule::FieldRenumbered,
        Rule::FieldRenamed,
        Rule::TagTypeChanged,
        Rule::WireEncodingChanged,
        Rule::OptionalityChanged,
        Rule::DefaultChanged,
        Rule::IntegerWidthChanged,
        Rule::EnumValueRemoved,
        Rule::EnumValueRenumbered,
        Rule::EnumValueRenamed,
        Rule::EnumValueAdded,
        Rule::UnionArmRemoved,
        Rule::UnionArmRenumbered,
        Rule::PostcardLayoutChanged,
    ];

    /// The stable id: `field-removed`, ...
    pub fn id(self) -> &'static str {
        match self {
            Rule::ServiceRemoved => "service-removed",
            Rule::WireNameChanged => "wire-name-changed",
            Rule::VersionChanged => "version-changed",
            Rule::MethodRemoved => "method-removed",
            Rule::OnewayChanged => "oneway-changed",
            Rule::ThrowsAdded => "throws-added",
            Rule::ThrowsReordered => "throws-reordered",
            Rule::ReturnTypeChanged => "return-type-changed",
            Rule::StreamingChanged => "streaming-changed",
            Rule::StreamItemTypeChanged => "stream-item-type-changed",
            Rule::FieldRemoved => "field-removed",
            Rule::FieldRenumbered => "field-renumbered",
            Rule::FieldRenamed => "field-renamed",
            Rule::TagTypeChanged => "tag-type-changed",
            Rule::WireEncodingChanged => "wire-encoding-changed",
            Rule::OptionalityChanged => "optionality-changed",
            Rule::DefaultChanged => "default-changed",
            Rule::IntegerWidthChanged => "integer-width-changed",
            Rule::EnumValueRemoved => "enum-value-removed",
            Rule::EnumValueRenumbered => "enum-value-renumbered",
            Rule::EnumValueRenamed => "enum-value-renamed",
            Rule::EnumValueAdded => "enum-value-added",
            Rule::UnionArmRemoved => "union-arm-removed",
            Rule::UnionArmRenumbered => "union-arm-renumbered",
            Rule::PostcardLayoutChanged => "postcard-layout-changed",
        }
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.id() == id)
    }

    /// Whether a change of this kind fails the check (otherwise it is a
    /// warning).
    pub fn is_breaking(self) -> bool {
        !matches!(self, Rule::IntegerWidthChanged | Rule::EnumValueAdded)
    }

    /// Why the change hurts old peers (the diagnostic's help).
    pub fn why(self) -> &'static str {
        match self {
            Rule::ServiceRemoved => "old clients calling it get `unknown service` (status 2)",
            Rule::WireNameChanged => {
                "requests carry the wire name `package.Service[:version]`: old clients get `unknown service`"
            }
            Rule::VersionChanged => {
                "`@version` is part of the wire name: old clients get `unknown service`; serve both versions as two services instead"
            }
            Rule::MethodRemoved => "old clients calling it get `unknown method` (status 3)",
            Rule::OnewayChanged => {
                "a oneway call is sent without waiting for a reply; a peer that disagrees either waits for an answer that never comes or answers nobody"
            }
            Rule::ThrowsAdded => {
                "old clients cannot decode an error they do not know; add a new method instead, or report it through an existing error"
            }
            Rule::ThrowsReordered => {
                "a declared error travels under its position in `throws` (tag 1, 2, ...): old clients decode it as another error"
            }
            Rule::ReturnTypeChanged => "old clients decode the result as the old type",
            Rule::StreamingChanged => {
                "a stream's items travel in frames of their own between the request and the response: a peer of the other shape gets frames it does not expect, or waits for items or a response that never come"
            }
            Rule::StreamItemTypeChanged => {
                "each item travels as its own message (field `value`, tag 1, like a result): old peers decode every item as the old type"
            }
            Rule::FieldRemoved => {
                "old peers still send it and expect it back; keep it (and stop using it), or retire its tag and name for good"
            }
            Rule::FieldRenumbered => {
                "protobuf identifies fields by tag: old peers read the value under the old tag, i.e. not at all"
            }
            Rule::FieldRenamed => {
                "JSON and MessagePack identify fields by name: old peers miss the value"
            }
            Rule::TagTypeChanged => {
                "protobuf identifies fields by tag: old peers decode the new field's bytes as the old field's type"
            }
            Rule::WireEncodingChanged => {
                "old peers cannot decode the new encoding, nor new peers the old"
            }
            Rule::OptionalityChanged => {
                "an absent `optional` is written as `null` in JSON (MessagePack `nil`) and as a presence byte in postcard; a non-optional decoder rejects it"
            }
            Rule::DefaultChanged => {
                "protobuf leaves out a value equal to the default: a value equal to the old default, sent by an old peer, decodes as the new default"
            }
            Rule::IntegerWidthChanged => {
                "values that fit both types decode fine; a wider value sent to an old peer is truncated (protobuf) or rejected (JSON, MessagePack, postcard)"
            }
            Rule::EnumValueRemoved => "old peers still send it; new peers no longer know it",
            Rule::EnumValueRenumbered => {
                "protobuf and postcard carry enum variants as numbers: old peers read another variant"
            }
            Rule::EnumValueRenamed => {
                "JSON and MessagePack carry enum variants by name: old peers do not know the new name"
            }
            Rule::EnumValueAdded => {
                "JSON and MessagePack readers reject a variant name they do not know: old peers break only if a new peer actually sends them the new value"
            }
            Rule::UnionArmRemoved => "old peers still send it; new peers no longer know it",
            Rule::UnionArmRenumbered => {
                "protobuf identifies arms by tag: old peers read another arm, or none"
            }
            Rule::PostcardLayoutChanged => {
                "postcard encodes fields by position, not by tag or name: any field added, removed or moved shifts every later byte"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A serializer of PROTOCOL.md whose compatibility rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// protobuf (id 1): fields by tag.
    Protobuf,
    /// JSON (id 2): fields by name.
    Json,
    /// postcard (id 3): fields by position.
    Postcard,
    /// MessagePack (id 4): fields by name.
    MessagePack,
}

impl Serializer {
    /// Every serializer.
    pub const ALL: [Serializer; 4] = [
        Serializer::Protobuf,
        Serializer::Json,
        Serializer::Postcard,
        Serializer::MessagePack,
    ];

    /// The name on the command line: `protobuf`, `json`, `postcard`, `msgpack`.
    pub fn id(self) -> &'static str {
        match self {
            Serializer::Protobuf => "protobuf",
            Serializer::Json => "json",
            Serializer::Postcard => "postcard",
            Serializer::MessagePack => "msgpack",
        }
    }

    /// The serializer with this command-line name.
    pub fn from_id(id: &str) -> Option<Serializer> {
        Serializer::ALL.into_iter().find(|s| s.id() == id)
    }

    fn bit(self) -> u8 {
        match self {
            Serializer::Protobuf => 1,
            Serializer::Json => 2,
            Serializer::Postcard => 4,
            Serializer::MessagePack => 8,
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            Serializer::Protobuf => "protobuf",
            Serializer::Json => "JSON",
            Serializer::Postcard => "postcard",
            Serializer::MessagePack => "MessagePack",
        }
    }
}

/// A set of serializers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SerializerSet(u8);

impl SerializerSet {
    /// No serializer.
    pub const NONE: SerializerSet = SerializerSet(0);
    /// All four.
    pub const ALL: SerializerSet = SerializerSet(1 | 2 | 4 | 8);
    /// What `idlc compat` checks by default: protobuf, JSON and MessagePack
    /// (postcard's positional rules only when asked for).
    pub const DEFAULT: SerializerSet = SerializerSet(1 | 2 | 8);
    /// protobuf alone.
    pub const PROTOBUF: SerializerSet = SerializerSet(1);
    /// The by-name serializers: JSON and MessagePack.
    pub const BY_NAME: SerializerSet = SerializerSet(2 | 8);
    /// postcard alone.
    pub const POSTCARD: SerializerSet = SerializerSet(4);

    /// The set of the given serializers.
    pub fn of(serializers: impl IntoIterator<Item = Serializer>) -> SerializerSet {
        SerializerSet(serializers.into_iter().fold(0, |bits, s| bits | s.bit()))
    }

    /// Whether `serializer` is in the set.
    pub fn contains(self, serializer: Serializer) -> bool {
        self.0 & serializer.bit() != 0
    }

    /// Both sets together.
    pub fn union(self, other: SerializerSet) -> SerializerSet {
        SerializerSet(self.0 | other.0)
    }

    /// What both sets have.
    pub fn intersection(self, other: SerializerSet) -> SerializerSet {
        SerializerSet(self.0 & other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The serializers in the set, in protocol-id order.
    pub fn iter(self) -> impl Iterator<Item = Serializer> {
        Serializer::ALL
            .into_iter()
            .filter(move |s| self.contains(*s))
    }
}

impl fmt::Display for SerializerSet {
    /// `protobuf, JSON and MessagePack`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Serializer::display_name).collect();
        match names.as_slice() {
            [] => f.write_str("no serializer"),
            [one] => f.write_str(one),
            [rest @ .., last] => write!(f, "{} and {last}", rest.join(", ")),
        }
    }
}
