//! Generated types through both serializers, and PROTOCOL.md's payload
//! mapping checked byte for byte.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use courier::Serializer;
use courier::codegen::Reply;
use courier::codegen::prost::Message as _;
use idl_examples::hello::EmptyName;
use idl_examples::hello::greeter::{SayHelloArgs, SayHelloError};
use idl_examples::shop::{LineItem, Order, OrderStatus};

fn sample_order() -> Order {
    Order {
        id: 7,
        items: vec![
            LineItem {
                sku: "BOOK-42".into(),
                quantity: 2,
                unit_price_cents: 1_999,
            },
            LineItem {
                sku: "PEN".into(),
                quantity: 0,
                unit_price_cents: 150,
            },
        ],
        note: Some("gift wrap".into()),
        labels: HashMap::from([
            ("channel".into(), "web".into()),
            ("region".into(), "eu".into()),
        ]),
        status: OrderStatus::Shipped,
        receipt: Bytes::from_static(b"\x00\x01receipt\xff"),
        parent: Some(Box::new(Order {
            id: 3,
            status: OrderStatus::Paid,
            ..Order::default()
        })),
    }
}

fn encode<M: courier::serializer::WireMessage>(serializer: Serializer, message: &M) -> Bytes {
    let mut buf = BytesMut::new();
    serializer.encode(message, &mut buf).expect("encode");
    buf.freeze()
}

#[test]
fn a_generated_struct_round_trips_through_every_serializer() {
    let order = sample_order();
    for serializer in Serializer::ALL {
        let bytes = encode(serializer, &order);
        let back: Order = serializer.decode(bytes).expect("decode");
        assert_eq!(back, order, "round trip through {serializer}");
    }
}

#[test]
fn default_values_round_trip_even_when_they_differ_from_the_idl_default() {
    // quantity's IDL default is 1; a 0 must still arrive as 0.
    let item = LineItem {
        sku: "X".into(),
        quantity: 0,
        unit_price_cents: 0,
    };
    assert_eq!(LineItem::default().quantity, 1);
    for serializer in Serializer::ALL {
        let back: LineItem = serializer
            .decode(encode(serializer, &item))
            .expect("decode");
        assert_eq!(back, item, "through {serializer}");
    }
    // And a missing field decodes as the IDL default.
    let from_empty: LineItem = Serializer::Protobuf.decode(Bytes::new()).expect("decode");
    assert_eq!(from_empty.quantity, 1);
    let from_json: LineItem = Serializer::Json
        .decode(Bytes::from_static(b"{\"sku\":\"Y\"}"))
        .expect("decode");
    assert_eq!(from_json.quantity, 1);
    assert_eq!(from_json.sku, "Y");
}

#[test]
fn protocol_md_example_protobuf_bytes() {
    let args = SayHelloArgs { name: "Bob".into() };
    assert_eq!(
        &encode(Serializer::Protobuf, &args)[..],
        &[0x0a, 0x03, 0x42, 0x6f, 0x62]
    );
    let reply = Reply::new(String::from("Hello, Bob!"));
    let mut expected = vec![0x0a, 0x0b];
    expected.extend_from_slice(b"Hello, Bob!");
    assert_eq!(&encode(Serializer::Protobuf, &reply)[..], &expected[..]);
}

#[test]
fn protocol_md_example_json_text() {
    let args = SayHelloArgs { name: "Bob".into() };
    assert_eq!(&encode(Serializer::Json, &args)[..], br#"{"name":"Bob"}"#);
    let reply = Reply::new(String::from("Hello, Bob!"));
    assert_eq!(
        &encode(Serializer::Json, &reply)[..],
        br#"{"value":"Hello, Bob!"}"#
    );
}

#[test]
fn declared_error_message_uses_the_snake_case_type_name_and_its_throws_position() {
    let error = SayHelloError::EmptyName(EmptyName { hint: "h".into() });
    assert_eq!(
        &encode(Serializer::Json, &error)[..],
        br#"{"empty_name":{"hint":"h"}}"#
    );
    // Tag 1 (position in `throws`), length-delimited, holding {1: "h"}.
    assert_eq!(
        &encode(Serializer::Protobuf, &error)[..],
        &[0x0a, 0x03, 0x0a, 0x01, b'h']
    );
    for serializer in Serializer::ALL {
        let back: SayHelloError = serializer
            .decode(encode(serializer, &error))
            .expect("decode");
        assert_eq!(back, error);
    }
}

#[test]
fn json_mapping_uses_idl_names_enum_names_and_base64_bytes() {
    let json: serde_json::Value =
        serde_json::from_slice(&encode(Serializer::Json, &sample_order())).expect("valid JSON");
    assert_eq!(json["id"], 7);
    assert_eq!(json["status"], "SHIPPED");
    assert_eq!(json["receipt"], "AAFyZWNlaXB0/w==");
    assert_eq!(json["note"], "gift wrap");
    assert_eq!(json["items"][0]["sku"], "BOOK-42");
    assert_eq!(json["items"][0]["unit_price_cents"], 1999);
    assert_eq!(json["labels"]["region"], "eu");
    assert_eq!(json["parent"]["status"], "PAID");
}

#[test]
fn json_decoders_accept_enum_numbers_null_optionals_and_ignore_unknown_keys() {
    let text = br#"{"id":1,"status":2,"note":null,"parent":null,"from_a_newer_peer":{"x":[1,2]}}"#;
    let order: Order = Serializer::Json
        .decode(Bytes::from_static(text))
        .expect("decode");
    assert_eq!(order.id, 1);
    assert_eq!(order.status, OrderStatus::Shipped);
    assert_eq!(order.note, None);
    assert_eq!(order.parent, None);
}

#[test]
fn unknown_enum_values_from_newer_peers_survive_protobuf() {
    // Field 5 (status) = 9, a value this version does not know.
    let bytes = Bytes::from_static(&[0x28, 0x09]);
    let order = Order::decode(bytes.clone()).expect("unknown enum values must not fail decoding");
    assert_eq!(order.status, OrderStatus::Unrecognized(9));
    assert_eq!(order.encode_to_vec(), bytes.to_vec());
}

#[test]
fn garbage_is_a_decode_error_not_a_panic() {
    for serializer in Serializer::ALL {
        let result: Result<Order, _> =
            serializer.decode(Bytes::from_static(&[0xff, 0xff, 0xff, 0x0f, 0x00]));
        assert!(result.is_err(), "{serializer} should reject garbage");
    }
}
