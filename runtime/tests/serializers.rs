//! The four serializers and a custom one: byte-for-byte mappings of
//! postcard and MessagePack, and several clients with different serializers
//! against one server.

mod common;

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::*;
use courier::client::{CallOptions, Channel};
use courier::serializer::{
    CodecError, DecodeSink, PayloadCodec, ReservedSerializerId, erased_serde,
};
use courier::{RpcError, Serializer, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

/// An IDL enum, as idlc generates it: `RED = 0`, `GREEN = 2`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Light {
    #[default]
    Red,
    Green,
    Unrecognized(i32),
}

courier::codegen::idl_enum!(Light, Unrecognized; Red "RED" = 0, Green "GREEN" = 2);

/// An IDL union, as idlc generates it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    #[serde(rename = "circle")]
    Circle(u32),
    #[serde(rename = "label")]
    Label(String),
}

impl Default for Shape {
    fn default() -> Self {
        Shape::Circle(0)
    }
}

/// A struct with every shape the mapping cares about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Mapped {
    name: String,
    light: Light,
    #[serde(with = "courier::codegen::json::bytes_field")]
    data: Bytes,
    count: i64,
    shape: Shape,
}

impl prost::Message for Mapped {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        use prost::encoding::{bytes, int64, string, uint32};
        string::encode(1, &self.name, buf);
        courier::codegen::encode_arm(2, &self.light, buf);
        bytes::encode(3, &self.data, buf);
        int64::encode(4, &self.count, buf);
        match &self.shape {
            Shape::Circle(radius) => uint32::encode(5, radius, buf),
            Shape::Label(label) => string::encode(6, label, buf),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        use prost::encoding::{bytes, int64, skip_field, string, uint32};
        match tag {
            1 => string::merge(wire_type, &mut self.name, buf, ctx),
            2 => courier::codegen::merge(wire_type, &mut self.light, buf, ctx),
            3 => bytes::merge(wire_type, &mut self.data, buf, ctx),
            4 => int64::merge(wire_type, &mut self.count, buf, ctx),
            5 => {
                let mut radius = 0;
                uint32::merge(wire_type, &mut radius, buf, ctx)?;
                self.shape = Shape::Circle(radius);
                Ok(())
            }
            6 => {
                let mut label = String::new();
                string::merge(wire_type, &mut label, buf, ctx)?;
                self.shape = Shape::Label(label);
                Ok(())
            }
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        use prost::encoding::{bytes, int64, string, uint32};
        string::encoded_len(1, &self.name)
            + courier::codegen::arm_len(2, &self.light)
            + bytes::encoded_len(3, &self.data)
            + int64::encoded_len(4, &self.count)
            + match &self.shape {
                Shape::Circle(radius) => uint32::encoded_len(5, radius),
                Shape::Label(label) => string::encoded_len(6, label),
            }
    }

    fn clear(&mut self) {
        *self = Mapped::default();
    }
}

fn sample() -> Mapped {
    Mapped {
        name: "Bob".into(),
        light: Light::Green,
        data: Bytes::from_static(&[1, 2, 3]),
        count: -2,
        shape: Shape::Label("x".into()),
    }
}

fn encode<M: courier::serializer::WireMessage>(serializer: Serializer, message: &M) -> Vec<u8> {
    let mut buf = BytesMut::new();
    serializer.encode(message, &mut buf).expect("encode");
    buf.to_vec()
}

/// A MessagePack string: fixstr marker + UTF-8.
fn fixstr(s: &str) -> Vec<u8> {
    let mut out = vec![0xa0 | u8::try_from(s.len()).expect("short")];
    out.extend_from_slice(s.as_bytes());
    out
}

#[test]
fn messagepack_is_the_json_shape_with_enum_names_and_bin_bytes() {
    let mut expected = vec![0x85];
    expected.extend(fixstr("name"));
    expected.extend(fixstr("Bob"));
    expected.extend(fixstr("light"));
    expected.extend(fixstr("GREEN"));
    expected.extend(fixstr("data"));
    expected.extend([0xc4, 0x03, 1, 2, 3]); // bin 8
    expected.extend(fixstr("count"));
    expected.push(0xfe); // negative fixint -2
    expected.extend(fixstr("shape"));
    expected.push(0x81); // the union: a map with one key, the arm's name
    expected.extend(fixstr("label"));
    expected.extend(fixstr("x"));
    assert_eq!(encode(Serializer::MessagePack, &sample()), expected);
    let back: Mapped = Serializer::MessagePack
        .decode(Bytes::from(expected))
        .expect("decode");
    assert_eq!(back, sample());
    // The same shape as JSON:
    assert_eq!(
        String::from_utf8(encode(Serializer::Json, &sample())).expect("UTF-8"),
        r#"{"name":"Bob","light":"GREEN","data":"AQID","count":-2,"shape":{"label":"x"}}"#
    );
}

#[test]
fn messagepack_decoders_accept_enum_numbers_and_keep_unknown_values() {
    // {"light": 2}: the number instead of the name.
    let mut bytes = vec![0x81];
    bytes.extend(fixstr("light"));
    bytes.push(0x02);
    let back: Mapped = Serializer::MessagePack
        .decode(Bytes::from(bytes))
        .expect("decode");
    assert_eq!(back.light, Light::Green);
    // A value this version does not know goes out as its number.
    let unknown = Mapped {
        light: Light::Unrecognized(9),
        ..Mapped::default()
    };
    let encoded = encode(Serializer::MessagePack, &unknown);
    let mut light = fixstr("light");
    light.push(0x09);
    assert!(
        encoded.windows(light.len()).any(|w| w == light),
        "{encoded:02x?}"
    );
    let back: Mapped = Serializer::MessagePack
        .decode(Bytes::from(encoded))
        .expect("decode");
    assert_eq!(back.light, Light::Unrecognized(9));
}

#[test]
fn postcard_is_compact_with_enum_numbers_and_raw_bytes() {
    let expected = [
        0x03, b'B', b'o', b'b', // name: varint length + UTF-8
        0x04, // light: i32 2, zigzag varint
        0x03, 1, 2, 3,    // data: varint length + raw bytes
        0x03, // count: i64 -2, zigzag varint
        0x01, 0x01, b'x', // shape: arm index 1, then its string
    ];
    assert_eq!(encode(Serializer::Postcard, &sample()), expected);
    let back: Mapped = Serializer::Postcard
        .decode(Bytes::copy_from_slice(&expected))
        .expect("decode");
    assert_eq!(back, sample());
}

#[test]
fn every_serializer_round_trips_and_rejects_garbage() {
    for serializer in Serializer::ALL {
        let back: Mapped = serializer
            .decode(Bytes::from(encode(serializer, &sample())))
            .expect("decode");
        assert_eq!(back, sample(), "through {serializer}");
        let garbage: Result<Mapped, _> =
            serializer.decode(Bytes::from_static(&[0xc1, 0xff, 0xff, 0xff, 0xff, 0x0f]));
        assert!(garbage.is_err(), "{serializer} accepted garbage");
    }
}

/// MessagePack with positional (array) structs, as a user would add it.
struct CompactMsgpack(u8);

impl PayloadCodec for CompactMsgpack {
    fn id(&self) -> u8 {
        self.0
    }

    fn name(&self) -> &'static str {
        "msgpack-compact"
    }

    fn encode(
        &self,
        message: &dyn erased_serde::Serialize,
        buf: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let mut serializer = rmp_serde::Serializer::new(buf.writer());
        message.erased_serialize(&mut <dyn erased_serde::Serializer>::erase(&mut serializer))?;
        Ok(())
    }

    fn decode(&self, payload: &[u8], sink: &mut DecodeSink<'_>) -> Result<(), CodecError> {
        let mut deserializer = rmp_serde::Deserializer::from_read_ref(payload);
        sink.deserialize(&mut <dyn erased_serde::Deserializer>::erase(
            &mut deserializer,
        ))?;
        Ok(())
    }
}

static COMPACT: CompactMsgpack = CompactMsgpack(200);
static UNREGISTERED: CompactMsgpack = CompactMsgpack(201);
static RESERVED: CompactMsgpack = CompactMsgpack(4);

#[test]
fn a_custom_codec_encodes_through_the_same_api() {
    let compact = Serializer::custom(&COMPACT).expect("a free id");
    assert_eq!(compact.id(), 200);
    assert_eq!(compact.name(), "msgpack-compact");
    let bytes = encode(compact, &sample());
    // An array of 5 fields, no names; enums by number (not human-readable).
    assert_eq!(bytes[0], 0x95);
    assert_eq!(bytes[1..5], fixstr("Bob")[..]);
    assert_eq!(bytes[5], 0x02);
    let back: Mapped = compact.decode(Bytes::from(bytes)).expect("decode");
    assert_eq!(back, sample());
    assert!(matches!(
        Serializer::custom(&RESERVED),
        Err(ReservedSerializerId(4))
    ));
}

fn with_serializer(serializer: Serializer) -> CallOptions {
    CallOptions {
        serializer,
        timeout: Some(Duration::from_secs(10)),
        ..CallOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_with_different_serializers_share_one_server() {
    let compact = Serializer::custom(&COMPACT).expect("a free id");
    let server = TestServer::start_with(|builder| builder.add_serializer(compact)).await;
    let mut serializers = Serializer::ALL.to_vec();
    serializers.push(compact);
    let mut clients = JoinSet::new();
    for serializer in serializers {
        let channel = Channel::connect(server.addr()).await.expect("connect");
        clients.spawn(async move {
            let options = with_serializer(serializer);
            for i in 0..50u64 {
                let text = format!("{serializer} {i}");
                let reply: EchoReply = channel
                    .unary::<_, _, courier::NoDeclaredError>(&ECHO, &args(&text), &options)
                    .await
                    .unwrap_or_else(|e| panic!("echo over {serializer}: {e}"));
                assert_eq!(reply.value, text);
            }
            let big = EchoArgs {
                text: "1000".into(),
                size: 2000,
                data: Bytes::from(vec![0xAB; 1000]),
                ..EchoArgs::default()
            };
            let reply: BytesReply = channel
                .unary::<_, _, courier::NoDeclaredError>(&BIG, &big, &options)
                .await
                .unwrap_or_else(|e| panic!("big over {serializer}: {e}"));
            assert_eq!(reply.value.len(), 2000);
            let declared: Result<EchoReply, RpcError<EchoError>> =
                channel.unary(&FAIL_DECLARED, &args("key"), &options).await;
            let key = declared
                .expect_err("declared")
                .declared()
                .and_then(|e| e.not_found.clone())
                .map(|n| n.key);
            assert_eq!(key.as_deref(), Some("key"), "over {serializer}");
            let empty: Empty = channel
                .unary::<_, _, courier::NoDeclaredError>(&EMPTY, &Empty {}, &options)
                .await
                .unwrap_or_else(|e| panic!("empty over {serializer}: {e}"));
            assert_eq!(empty, Empty {});
            serializer
        });
    }
    let mut done = 0;
    while let Some(joined) = within("every client", clients.join_next()).await {
        joined.expect("client task");
        done += 1;
    }
    assert_eq!(done, 5);
}

#[tokio::test]
async fn an_unregistered_custom_serializer_is_status_5() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let options = with_serializer(Serializer::custom(&UNREGISTERED).expect("a free id"));
    let result: Result<EchoReply, RpcError> = channel.unary(&ECHO, &args("x"), &options).await;
    assert_eq!(code(&result), StatusCode::UnsupportedSerializer);
    assert!(result.unwrap_err().to_string().contains("201"));
}
