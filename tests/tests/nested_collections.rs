//! Nested collections (IDL.md, "Nested collections"): `list<list<T>>`,
//! `list<map<K, V>>`, `map<K, list<T>>`, `map<K, map<K2, V>>` to any depth,
//! through every serializer; on the protobuf wire each inner collection is
//! a one-field message (tag 1), checked byte for byte against protoc.
//!
//! protoc comes from Debian's `protobuf-compiler` (`scripts/ensure-protoc`,
//! which `scripts/test` runs). Without it these tests fail: they never skip.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bytes::{Bytes, BytesMut};
use courier::Serializer;
use courier::codegen::prost::Message as _;
use courier::serializer::WireMessage;
use courier_tests::btree_nested as ordered;
use courier_tests::fixtures::nested;

fn round_trip<M: WireMessage + PartialEq + std::fmt::Debug>(value: &M) {
    for serializer in Serializer::ALL {
        let mut buf = BytesMut::new();
        serializer.encode(value, &mut buf).expect("encode");
        let back: M = serializer.decode(buf.freeze()).expect("decode");
        assert_eq!(&back, value, "round trip through {serializer}");
    }
}

fn cell(text: &str) -> nested::Cell {
    nested::Cell { text: text.into() }
}

fn full() -> nested::Nested {
    nested::Nested {
        matrix: vec![vec![1, 2, u32::MAX], vec![], vec![0]],
        rows: vec![
            HashMap::from([("a".into(), 1), ("".into(), 0)]),
            HashMap::new(),
        ],
        headers: HashMap::from([
            ("accept".into(), vec!["text/html".into(), "*/*".into()]),
            ("empty".into(), vec![]),
        ]),
        blobs: HashMap::from([(
            7,
            HashMap::from([
                (true, Bytes::from_static(b"\x00\xff")),
                (false, Bytes::new()),
            ]),
        )]),
        cube: vec![vec![vec![cell("c"), cell("")], vec![]], vec![]],
        colors: HashMap::from([(
            "x".into(),
            vec![
                nested::Color::Green,
                nested::Color::Red,
                nested::Color::Unrecognized(9),
            ],
        )]),
        chunks: vec![vec![Bytes::from_static(b"ab"), Bytes::new()]],
        series: HashMap::from([(-5, HashMap::from([("s".into(), vec![1.5, -0.0, 1e300])]))]),
    }
}

#[test]
fn every_shape_round_trips_through_every_serializer() {
    round_trip(&full());
    round_trip(&nested::Nested::default());
    round_trip(&nested::Grid::Numbers(vec![vec![-1, 0], vec![]]));
    round_trip(&nested::Grid::Cells(HashMap::from([(
        "k".into(),
        vec![cell("a"), cell("b")],
    )])));
}

#[test]
fn json_nests_directly_with_the_protocol_mapping_inside() {
    let value = nested::Nested {
        matrix: vec![vec![1, 2], vec![]],
        blobs: HashMap::from([(1, HashMap::from([(true, Bytes::from_static(b"z"))]))]),
        chunks: vec![vec![Bytes::from_static(b"\x00\xff")]],
        colors: HashMap::from([("x".into(), vec![nested::Color::Green])]),
        ..Default::default()
    };
    let json = serde_json::to_value(&value).expect("json");
    assert_eq!(json["matrix"], serde_json::json!([[1, 2], []]));
    assert_eq!(json["blobs"], serde_json::json!({"1": {"true": "eg=="}}));
    assert_eq!(json["chunks"], serde_json::json!([["AP8="]]));
    assert_eq!(json["colors"], serde_json::json!({"x": ["GREEN"]}));
    let text = r#"{"headers":{"h":["a","b"]},"series":{"-5":{"s":[2.5]}}}"#;
    let back: nested::Nested = serde_json::from_str(text).expect("from JSON");
    assert_eq!(back.headers["h"], ["a", "b"]);
    assert_eq!(back.series[&-5]["s"], [2.5]);
}

#[test]
fn methods_take_and_return_nested_collections() {
    use nested::tables::{GroupArgs, TransposeArgs};
    round_trip(&TransposeArgs {
        matrix: vec![vec![1, 2], vec![3]],
    });
    round_trip(&GroupArgs {
        words: vec!["apple".into()],
        counts: HashMap::from([("a".into(), HashMap::from([("apple".into(), 1)]))]),
    });
    round_trip(&courier::codegen::Reply::new(HashMap::from([(
        String::from("a"),
        vec![String::from("apple")],
    )])));
}

/// protoc, from `PROTOC` or the `PATH`; the test fails when it is missing.
fn protoc() -> PathBuf {
    let protoc = std::env::var_os("PROTOC").map_or_else(|| PathBuf::from("protoc"), PathBuf::from);
    match Command::new(&protoc).arg("--version").output() {
        Ok(output) if output.status.success() => protoc,
        _ => panic!(
            "protoc is needed for the byte-exact protobuf checks: run scripts/ensure-protoc \
             (Debian's protobuf-compiler) or set PROTOC"
        ),
    }
}

/// `nested.rpc` as protobuf sees it (IDL.md: each inner collection a
/// message with one field, tag 1, holding it).
const NESTED_PROTO: &str = r#"
syntax = "proto3";
package fixtures.nested;

enum Color { RED = 0; GREEN = 1; }
message Cell { string text = 1; }

message ListU32 { repeated uint32 value = 1; }
message MapStringU32 { map<string, uint32> value = 1; }
message ListString { repeated string value = 1; }
message MapBoolBytes { map<bool, bytes> value = 1; }
message ListCell { repeated Cell value = 1; }
message ListListCell { repeated ListCell value = 1; }
message ListColor { repeated Color value = 1; }
message ListBytes { repeated bytes value = 1; }
message ListF64 { repeated double value = 1; }
message MapStringListF64 { map<string, ListF64> value = 1; }

message Nested {
  repeated ListU32 matrix = 1;
  repeated MapStringU32 rows = 2;
  map<string, ListString> headers = 3;
  map<uint32, MapBoolBytes> blobs = 4;
  repeated ListListCell cube = 5;
  map<string, ListColor> colors = 6;
  repeated ListBytes chunks = 7;
  map<int64, MapStringListF64> series = 8;
}
"#;

fn run_protoc(args: &[&str], dir: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(protoc())
        .args(args)
        .arg(format!("--proto_path={}", dir.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("protoc starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to protoc");
    let output = child.wait_with_output().expect("protoc runs");
    assert!(
        output.status.success(),
        "protoc {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// What protoc writes for a `Nested` given in text format.
fn protoc_encode(dir: &Path, text: &str) -> Vec<u8> {
    run_protoc(
        &["--encode=fixtures.nested.Nested", "nested.proto"],
        dir,
        text.as_bytes(),
    )
}

/// How protoc reads bytes without a schema.
fn protoc_decode_raw(dir: &Path, bytes: &[u8]) -> String {
    String::from_utf8(run_protoc(&["--decode_raw"], dir, bytes)).expect("UTF-8")
}

/// One nested value of each shape: our bytes are protoc's, byte for byte,
/// and protoc's decode to the value. (Map entries have no
/// key or value equal to its default here: protoc writes those, prost-style
/// encoders and Courier leave them out, and both read either.)
#[test]
fn protobuf_bytes_of_each_shape_are_protocs() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("nested.proto"), NESTED_PROTO).expect("write the .proto");
    let cases: Vec<(&str, ordered::Nested, &str)> = vec![
        (
            "list<list<u32>>",
            ordered::Nested {
                matrix: vec![vec![1, 300], vec![]],
                ..Default::default()
            },
            "matrix { value: [1, 300] } matrix { }",
        ),
        (
            "list<map<string, u32>>",
            ordered::Nested {
                rows: vec![BTreeMap::from([("a".into(), 1), ("b".into(), 2)])],
                ..Default::default()
            },
            r#"rows { value { key: "a" value: 1 } value { key: "b" value: 2 } }"#,
        ),
        (
            "map<string, list<string>>",
            ordered::Nested {
                headers: BTreeMap::from([(
                    "accept".into(),
                    vec!["text/html".into(), "*/*".into()],
                )]),
                ..Default::default()
            },
            r#"headers { key: "accept" value { value: ["text/html", "*/*"] } }"#,
        ),
        (
            "map<u32, map<bool, bytes>>",
            ordered::Nested {
                blobs: BTreeMap::from([(7, BTreeMap::from([(true, Bytes::from_static(b"z"))]))]),
                ..Default::default()
            },
            r#"blobs { key: 7 value { value { key: true value: "z" } } }"#,
        ),
        (
            "list<list<list<Cell>>>",
            ordered::Nested {
                cube: vec![vec![vec![ordered::Cell { text: "c".into() }]]],
                ..Default::default()
            },
            r#"cube { value { value { text: "c" } } }"#,
        ),
        (
            "map<string, list<Color>>",
            ordered::Nested {
                colors: BTreeMap::from([(
                    "x".into(),
                    vec![ordered::Color::Green, ordered::Color::Red],
                )]),
                ..Default::default()
            },
            r#"colors { key: "x" value { value: [GREEN, RED] } }"#,
        ),
        (
            "list<list<bytes>>",
            ordered::Nested {
                chunks: vec![vec![Bytes::from_static(b"\x01"), Bytes::new()]],
                ..Default::default()
            },
            r#"chunks { value: ["\001", ""] }"#,
        ),
        (
            "map<i64, map<string, list<f64>>>",
            ordered::Nested {
                series: BTreeMap::from([(-5, BTreeMap::from([("s".into(), vec![1.5])]))]),
                ..Default::default()
            },
            r#"series { key: -5 value { value { key: "s" value { value: [1.5] } } } }"#,
        ),
    ];
    for (shape, value, text) in cases {
        let ours = value.encode_to_vec();
        let theirs = protoc_encode(dir.path(), text);
        assert_eq!(
            ours, theirs,
            "{shape}: Courier's bytes differ from protoc's"
        );
        let back = ordered::Nested::decode(&theirs[..]).expect("decodes protoc's bytes");
        assert_eq!(back, value, "{shape}: protoc's bytes decode to the value");
    }
}

/// `protoc --decode_raw` of `list<list<u32>>` and `map<string,
/// list<string>>`, spelled out: the inner collections are nested messages
/// with field 1.
#[test]
fn protoc_reads_the_wrappers_as_one_field_messages() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let value = ordered::Nested {
        headers: BTreeMap::from([("h".into(), vec!["a".into(), "b".into()])]),
        cube: vec![vec![vec![ordered::Cell { text: "c".into() }]]],
        ..Default::default()
    };
    let raw = protoc_decode_raw(dir.path(), &value.encode_to_vec());
    assert_eq!(
        raw,
        "3 {\n  1: \"h\"\n  2 {\n    1: \"a\"\n    1: \"b\"\n  }\n}\n5 {\n  1 {\n    1 {\n      1: \"c\"\n    }\n  }\n}\n"
    );
}
