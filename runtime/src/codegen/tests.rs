//! The field codec on every shape, byte for byte, and through serde.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use prost::Message as _;

use super::*;

/// A message of one field, tag 1, of type `T` (as generated code writes
/// one: a field of any shape).
#[derive(Debug, Default, PartialEq, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct One<T: Field> {
    #[serde(with = "super::mapped")]
    value: T,
}

impl<T: Field> prost::Message for One<T> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encode(1, &self.value, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => merge(wire_type, &mut self.value, buf, ctx),
            _ => skip(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        encoded_len(1, &self.value)
    }

    fn clear(&mut self) {
        *self = Default::default();
    }
}

fn protobuf<T: Field>(value: T) -> Vec<u8> {
    let message = One { value };
    let bytes = message.encode_to_vec();
    assert_eq!(bytes.len(), message.encoded_len(), "encoded_len");
    let back = One::<T>::decode(&bytes[..]).expect("decodes");
    assert_eq!(back, message, "protobuf round trip");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn scalars_are_left_out_at_zero_and_lists_of_numbers_are_packed() {
    assert_eq!(hex(&protobuf(0u32)), "");
    assert_eq!(hex(&protobuf(150u32)), "08 96 01");
    assert_eq!(hex(&protobuf(String::new())), "");
    assert_eq!(hex(&protobuf(vec![1u32, 2])), "0a 02 01 02");
    assert_eq!(hex(&protobuf(vec![String::from("a")])), "0a 01 61");
    assert_eq!(hex(&protobuf(Some(0u32))), "08 00");
    assert_eq!(hex(&protobuf(None::<u32>)), "");
}

#[test]
fn a_list_inside_a_list_is_a_one_field_message_per_item() {
    // [[1, 2], []]: `repeated Inner` with `Inner { repeated uint32 value = 1; }`.
    assert_eq!(
        hex(&protobuf(vec![vec![1u32, 2], vec![]])),
        "0a 04 0a 02 01 02 0a 00"
    );
    // Strings and deeper nesting.
    assert_eq!(
        hex(&protobuf(vec![vec![vec![String::from("x")]]])),
        "0a 05 0a 03 0a 01 78"
    );
}

#[test]
fn a_list_or_map_as_a_map_value_is_wrapped_too() {
    // {"a": ["x"]}: entry { key "a", value Inner { value: ["x"] } }.
    let headers = HashMap::from([(String::from("a"), vec![String::from("x")])]);
    assert_eq!(hex(&protobuf(headers)), "0a 08 0a 01 61 12 03 0a 01 78");
    // An empty list is the value's default: left out of the entry.
    let empty = BTreeMap::from([(String::from("a"), Vec::<String>::new())]);
    assert_eq!(hex(&protobuf(empty)), "0a 03 0a 01 61");
    // {1: {true: b"z"}}: the inner map is a message of map entries.
    let deep = BTreeMap::from([(1u32, BTreeMap::from([(true, Bytes::from_static(b"z"))]))]);
    assert_eq!(
        hex(&protobuf(deep)),
        "0a 0b 08 01 12 07 0a 05 08 01 12 01 7a"
    );
    // A list of maps.
    let rows = vec![BTreeMap::from([(String::from("k"), 7u32)])];
    assert_eq!(hex(&protobuf(rows)), "0a 07 0a 05 0a 01 6b 10 07");
}

#[test]
fn nested_values_merge_as_prost_merges_repeated_fields() {
    // The same outer field twice: items are appended.
    let mut bytes = protobuf(vec![vec![1u32]]);
    bytes.extend(protobuf(vec![vec![2u32, 3]]));
    let back = One::<Vec<Vec<u32>>>::decode(&bytes[..]).expect("decodes");
    assert_eq!(back.value, vec![vec![1], vec![2, 3]]);
    // A wrapper with an unknown field and an unpacked item still decodes.
    let odd = [0x0a, 0x04, 0x10, 0x01, 0x08, 0x2a, 0x0a, 0x00];
    let back = One::<Vec<Vec<u32>>>::decode(&odd[..]).expect("decodes");
    assert_eq!(back.value, vec![vec![42], vec![]]);
}

#[test]
fn truncated_or_deep_nested_input_is_an_error_not_a_panic() {
    let bytes = protobuf(vec![vec![vec![7u64]]]);
    for end in 0..bytes.len() {
        let _ = One::<Vec<Vec<Vec<u64>>>>::decode(&bytes[..end]);
    }
    // A wrapper claiming more bytes than there are.
    assert!(One::<Vec<Vec<u32>>>::decode(&[0x0a, 0x7f, 0x0a][..]).is_err());
    // Wrappers inside wrappers, deeper than the type: an error, no panic.
    let mut deep = Vec::new();
    for _ in 0..200 {
        let mut outer = vec![0x0a];
        prost::encoding::encode_varint(deep.len() as u64, &mut outer);
        outer.extend(deep);
        deep = outer;
    }
    let _ = One::<Vec<Vec<Vec<u32>>>>::decode(&deep[..]);
}

#[test]
fn serde_nests_directly_with_the_protocol_mapping_inside() {
    let value = One {
        value: BTreeMap::from([(
            String::from("h"),
            vec![vec![Bytes::from_static(b"\x00\xff")], vec![]],
        )]),
    };
    let json = serde_json::to_string(&value).expect("json");
    assert_eq!(json, r#"{"value":{"h":[["AP8="],[]]}}"#);
    let back: One<BTreeMap<String, Vec<Vec<Bytes>>>> = serde_json::from_str(&json).expect("back");
    assert_eq!(back, value);
    let packed = postcard::to_stdvec(&value).expect("postcard");
    let back: One<BTreeMap<String, Vec<Vec<Bytes>>>> =
        postcard::from_bytes(&packed).expect("postcard back");
    assert_eq!(back, value);
}

#[test]
fn the_void_reply_is_the_empty_message_everywhere() {
    let reply = Reply::new(());
    assert!(reply.encode_to_vec().is_empty());
    assert_eq!(serde_json::to_string(&reply).expect("json"), "{}");
    assert!(postcard::to_stdvec(&reply).expect("postcard").is_empty());
    let back: Reply<()> = serde_json::from_str(r#"{"value":3,"other":[]}"#).expect("ignores");
    assert_eq!(back, reply);
    let back = Reply::<()>::decode(&[0x08, 0x03][..]).expect("skips an unknown field");
    assert_eq!(back, reply);
}

#[test]
fn a_reply_carries_its_value_as_field_one_and_key_value() {
    let reply = Reply::new(Bytes::from_static(b"hi"));
    assert_eq!(hex(&reply.encode_to_vec()), "0a 02 68 69");
    assert_eq!(
        serde_json::to_string(&reply).expect("json"),
        r#"{"value":"aGk="}"#
    );
    let back: Reply<Bytes> = serde_json::from_str(r#"{"value":"aGk=","x":1}"#).expect("back");
    assert_eq!(back, reply);
    let back: Reply<u32> = serde_json::from_str("{}").expect("missing is default");
    assert_eq!(back, Reply::new(0));
    assert!(serde_json::from_str::<Reply<u32>>(r#"{"value":1,"value":2}"#).is_err());
    let packed = postcard::to_stdvec(&Reply::new(vec![vec![5u32]])).expect("postcard");
    assert_eq!(
        postcard::from_bytes::<Reply<Vec<Vec<u32>>>>(&packed).expect("back"),
        Reply::new(vec![vec![5]])
    );
}
