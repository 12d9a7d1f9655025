//! Byte-exactness: every value is encoded twice, by the dynamic codec from
//! its JSON and by the runtime from the type idlc generated, and the bytes
//! must be the same; each side's bytes decode on the other side to the same
//! value.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use courier::Serializer;
use courier::codegen::Reply;
use courier::serializer::{DeclaredError, WireMessage};
use courier_tests::fixtures::{collections, defaults, enums, nested, recursion, scalars, unions};
use courier_tests::{btree_collections, btree_nested};
use idl_examples::shop;
use idlc::model::{TypeDef, TypeKind, TypeRef};
use serde_json::json;

use super::value::{Shape, message_from_json, message_to_json};
use super::*;
use crate::schema::Schema;

const FORMATS: [Serializer; 3] = [
    Serializer::Protobuf,
    Serializer::Postcard,
    Serializer::MessagePack,
];

fn fixture(name: &str) -> Schema {
    let path = format!(
        "{}/../idlc/tests/fixtures/codegen/{name}.rpc",
        env!("CARGO_MANIFEST_DIR")
    );
    Schema::from_files(&[path]).expect("the fixture checks")
}

fn example(name: &str) -> Schema {
    let path = format!(
        "{}/../idl-examples/idl/{name}.rpc",
        env!("CARGO_MANIFEST_DIR")
    );
    Schema::from_files(&[path]).expect("the example checks")
}

/// The shape of the declared struct or union `name`.
fn shape<'a>(schema: &'a Schema, name: &str) -> Shape<'a> {
    for file in schema.files() {
        for ty in &file.types {
            if ty.name() == name {
                let kind = match ty {
                    TypeDef::Struct(_) => TypeKind::Struct,
                    TypeDef::Union(_) => TypeKind::Union,
                    TypeDef::Enum(_) => panic!("{name} is an enum"),
                };
                let r = TypeRef {
                    package: file.package.clone(),
                    module_name: file.module_name.clone(),
                    name: name.to_owned(),
                    kind,
                };
                return Shape::of(schema, &r).expect("declared");
            }
        }
    }
    panic!("no type {name}");
}

fn encode_dyn(serializer: Serializer, schema: &Schema, shape: &Shape<'_>, value: &Dyn) -> Vec<u8> {
    let mut buf = Vec::new();
    match serializer {
        Serializer::Protobuf => protobuf::encode(schema, shape, value, &mut buf),
        Serializer::Postcard => postcard::encode(schema, shape, value, &mut buf),
        Serializer::MessagePack => msgpack::encode(schema, shape, value, &mut buf),
        _ => unreachable!(),
    }
    .expect("encodes");
    buf
}

fn decode_dyn(
    serializer: Serializer,
    schema: &Schema,
    shape: &Shape<'_>,
    bytes: &[u8],
) -> Result<Dyn, DynError> {
    match serializer {
        Serializer::Protobuf => protobuf::decode(schema, shape, bytes),
        Serializer::Postcard => postcard::decode(schema, shape, bytes),
        Serializer::MessagePack => msgpack::decode(schema, shape, bytes),
        _ => unreachable!(),
    }
}

fn typed_bytes<T: WireMessage>(serializer: Serializer, typed: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    serializer
        .encode(typed, &mut buf)
        .expect("the runtime encodes");
    buf.to_vec()
}

/// Encodes `typed` both ways in every format; same bytes, and each side
/// reads the other's; what we decode prints as serde_json prints `typed`.
fn same_bytes<T: WireMessage + Debug + PartialEq>(schema: &Schema, name: &str, typed: &T) {
    same_bytes_inner(schema, name, typed, true);
}

fn same_bytes_inner<T: WireMessage + Debug + PartialEq>(
    schema: &Schema,
    name: &str,
    typed: &T,
    compare_json: bool,
) {
    let json = serde_json::to_value(typed).expect("to JSON");
    let shape = shape(schema, name);
    let value = message_from_json(schema, &shape, &json).unwrap_or_else(|e| panic!("{name}: {e}"));
    for serializer in FORMATS {
        let ours = encode_dyn(serializer, schema, &shape, &value);
        let theirs = typed_bytes(serializer, typed);
        assert_eq!(ours, theirs, "{name} in {serializer}: {json}");
        let back: T = serializer
            .decode(Bytes::from(ours))
            .expect("the runtime decodes ours");
        assert_eq!(&back, typed, "{name} in {serializer}");
        let decoded = decode_dyn(serializer, schema, &shape, &theirs).expect("we decode theirs");
        assert_eq!(decoded, value, "{name} in {serializer}");
        if compare_json {
            assert_eq!(
                message_to_json(schema, &shape, &decoded).expect("to JSON"),
                json,
                "{name} in {serializer}"
            );
        }
    }
}

#[test]
fn scalars_zero_negative_extreme_and_unicode() {
    let schema = fixture("scalars");
    same_bytes(&schema, "Scalars", &scalars::Scalars::default());
    same_bytes(
        &schema,
        "Scalars",
        &scalars::Scalars {
            flag: true,
            small: -1,
            big: i64::MIN,
            count: u32::MAX,
            id: u64::MAX,
            ratio: 1.25,
            precise: -2.5e300,
            text: "héllo, 世界".into(),
            blob: Bytes::from_static(&[0, 1, 255]),
        },
    );
    same_bytes(
        &schema,
        "Scalars",
        &scalars::Scalars {
            small: i32::MIN,
            big: 300,
            count: 128,
            id: 1 << 40,
            ratio: -0.0,
            ..scalars::Scalars::default()
        },
    );
}

#[test]
fn idl_defaults_decide_presence() {
    let schema = fixture("defaults");
    same_bytes(&schema, "Settings", &defaults::Settings::default());
    same_bytes(
        &schema,
        "Settings",
        &defaults::Settings {
            retries: 0,
            greeting: String::new(),
            enabled: false,
            ratio: 0.0,
            offset: 0,
            mode: defaults::Mode::Off,
        },
    );
    // A missing key takes the IDL default, not zero.
    let shape = shape(&schema, "Settings");
    let value = message_from_json(&schema, &shape, &json!({})).expect("empty is fine");
    let mut protobuf = Vec::new();
    super::protobuf::encode(&schema, &shape, &value, &mut protobuf).expect("encodes");
    assert!(protobuf.is_empty(), "every field is at its default");
}

#[test]
fn collections_with_hash_maps_of_one_entry() {
    let schema = fixture("collections");
    same_bytes(&schema, "Collections", &collections::Collections::default());
    same_bytes(
        &schema,
        "Collections",
        &collections::Collections {
            numbers: vec![0, 1, 300, u32::MAX],
            names: vec!["a".into(), String::new()],
            blobs: vec![Bytes::from_static(b"x"), Bytes::new()],
            items: vec![
                collections::Item { name: "i".into() },
                collections::Item::default(),
            ],
            totals: HashMap::from([("sum".to_owned(), -5)]),
            by_id: HashMap::from([(
                7,
                collections::Item {
                    name: "seven".into(),
                },
            )]),
            flags: HashMap::from([(true, Bytes::from_static(b"on"))]),
            note: Some(String::new()),
            first: Some(collections::Item::default()),
            digest: Some(Bytes::from_static(&[9; 3])),
            limit: Some(0),
        },
    );
    // Map entries whose key or value is the default leave it out (prost).
    same_bytes(
        &schema,
        "Collections",
        &collections::Collections {
            totals: HashMap::from([(String::new(), 0)]),
            by_id: HashMap::from([(0, collections::Item::default())]),
            flags: HashMap::from([(false, Bytes::new())]),
            ..collections::Collections::default()
        },
    );
}

#[test]
fn collections_with_ordered_maps_of_many_entries() {
    let schema = fixture("collections");
    same_bytes(
        &schema,
        "Collections",
        &btree_collections::Collections {
            totals: BTreeMap::from([
                ("a".to_owned(), 1),
                ("b".to_owned(), -2),
                ("c".to_owned(), 3),
            ]),
            by_id: BTreeMap::from([
                (1, btree_collections::Item { name: "one".into() }),
                (2, btree_collections::Item { name: "two".into() }),
            ]),
            flags: BTreeMap::from([
                (false, Bytes::from_static(b"f")),
                (true, Bytes::from_static(b"t")),
            ]),
            ..btree_collections::Collections::default()
        },
    );
}

#[test]
fn unions_nested_recursive_and_default_arms() {
    let schema = fixture("unions");
    same_bytes(&schema, "Checkout", &unions::Checkout::default());
    same_bytes(
        &schema,
        "Checkout",
        &unions::Checkout {
            payment: unions::Payment::Card(unions::Card {
                number: "4111".into(),
                expiry_month: 12,
            }),
            fallback: Some(unions::Payment::Voucher(String::new())),
            history: vec![
                unions::Payment::Token(Bytes::from_static(b"tok")),
                unions::Payment::Voucher("v".into()),
            ],
        },
    );
    let expr = unions::Expr::Negate(Box::new(unions::Negate {
        inner: unions::Expr::Binary(Box::new(unions::Binary {
            left: unions::Expr::Literal(-3),
            operator: "+".into(),
            right: unions::Expr::Literal(0),
        })),
    }));
    same_bytes(&schema, "Expr", &expr);
}

#[test]
fn enums_known_and_unknown() {
    let schema = fixture("enums");
    // Unknown numbers are kept as sent, as the generated enums do.
    for json in [
        json!({}),
        json!({"main": "BLINKING_AMBER", "side": "RED", "history": ["GREEN", "RED"], "by_street": {"elm": "AMBER"}}),
        json!({"main": 77, "side": -3, "history": [0, 77, -1, 10], "by_street": {"oak": 99}}),
        json!({"main": "RED", "side": null, "history": [], "by_street": {"": "RED"}}),
    ] {
        let typed: enums::Crossing = serde_json::from_value(json.clone()).expect("typed");
        same_bytes(&schema, "Crossing", &typed);
    }
}

#[test]
fn recursion_through_optional_and_lists() {
    let schema = fixture("recursion");
    let node: recursion::Node = serde_json::from_value(json!({
        "label": "root",
        "children": [{"label": "a", "children": [{"label": "a1"}]}, {}],
        "parent": {"label": "up", "parent": {"label": "top"}}
    }))
    .expect("typed");
    same_bytes(&schema, "Node", &node);
    let ping: recursion::Ping =
        serde_json::from_value(json!({"pong": {"ping": {"pong": {}}}})).expect("typed");
    same_bytes(&schema, "Ping", &ping);
}

#[test]
fn shop_order_result_and_declared_error() {
    let schema = example("shop");
    let codec = MethodCodec::new(&schema, "shop.OrderBook", "get").expect("method");
    let order = shop::Order {
        id: 42,
        items: vec![shop::LineItem {
            sku: "BOOK".into(),
            quantity: 1,
            unit_price_cents: 1999,
        }],
        note: Some("gift".into()),
        labels: HashMap::from([("channel".to_owned(), "web".to_owned())]),
        status: shop::OrderStatus::Paid,
        receipt: Bytes::from_static(b"\x00receipt"),
        parent: Some(Box::new(shop::Order {
            id: 7,
            ..shop::Order::default()
        })),
    };
    same_bytes(&schema, "Order", &order);
    let reply = Reply::new(order.clone());
    let expected = serde_json::to_value(&order).expect("JSON");
    for serializer in FORMATS.into_iter().chain([Serializer::Json]) {
        let bytes = typed_bytes(serializer, &reply);
        let value = codec.decode_result(serializer, &bytes).expect("decodes");
        assert_eq!(value, Some(expected.clone()), "{serializer}");
        let error = shop::order_book::GetError::OrderNotFound(shop::OrderNotFound { id: 9 });
        let mut buf = BytesMut::new();
        error
            .encode_declared(serializer, &mut buf)
            .expect("encodes");
        assert_eq!(
            codec.decode_error(serializer, &buf).expect("decodes"),
            ("OrderNotFound".to_owned(), json!({"id": 9})),
            "{serializer}"
        );
    }
    let void = MethodCodec::new(&schema, "shop.OrderBook", "set_status").expect("method");
    for serializer in FORMATS.into_iter().chain([Serializer::Json]) {
        let bytes = typed_bytes(serializer, &Reply::new(()));
        assert_eq!(
            void.decode_result(serializer, &bytes).expect("decodes"),
            None
        );
    }
}

/// Lists and maps inside lists and maps, every shape and depth of the
/// fixture: the dynamic codec writes the generated code's bytes (protobuf:
/// one-field wrapper messages) and reads them back.
#[test]
fn nested_collections_of_every_shape() {
    let schema = fixture("nested");
    let cell = |text: &str| btree_nested::Cell { text: text.into() };
    same_bytes(
        &schema,
        "Nested",
        &btree_nested::Nested {
            matrix: vec![vec![1, 2, u32::MAX], vec![], vec![0]],
            rows: vec![
                BTreeMap::from([("".to_owned(), 0), ("a".to_owned(), 1)]),
                BTreeMap::new(),
            ],
            headers: BTreeMap::from([
                (
                    "accept".to_owned(),
                    vec!["text/html".to_owned(), "*/*".to_owned()],
                ),
                ("none".to_owned(), vec![]),
            ]),
            blobs: BTreeMap::from([(
                7,
                BTreeMap::from([
                    (false, Bytes::new()),
                    (true, Bytes::from_static(b"\x00\xff")),
                ]),
            )]),
            cube: vec![vec![vec![cell("c"), cell("")], vec![]], vec![]],
            colors: BTreeMap::from([(
                "x".to_owned(),
                vec![btree_nested::Color::Green, btree_nested::Color::Red],
            )]),
            chunks: vec![vec![Bytes::from_static(b"ab"), Bytes::new()], vec![]],
            series: BTreeMap::from([(-5, BTreeMap::from([("s".to_owned(), vec![1.5, -2.0])]))]),
        },
    );
    same_bytes(&schema, "Nested", &btree_nested::Nested::default());
    same_bytes(
        &schema,
        "Grid",
        &btree_nested::Grid::Numbers(vec![vec![-1, 0], vec![]]),
    );
    same_bytes(
        &schema,
        "Grid",
        &btree_nested::Grid::Cells(BTreeMap::from([("k".to_owned(), vec![cell("a")])])),
    );
    // A method's nested args and result, through the method codec.
    let codec = MethodCodec::new(&schema, "fixtures.nested.Tables", "transpose").expect("method");
    let args = json!({"matrix": [[1, 2], [3]]});
    let typed = nested::tables::TransposeArgs {
        matrix: vec![vec![1, 2], vec![3]],
    };
    for serializer in FORMATS {
        assert_eq!(
            codec.encode_args(serializer, &args).expect("encodes"),
            typed_bytes(serializer, &typed),
            "{serializer}"
        );
        let reply = typed_bytes(serializer, &Reply::new(vec![vec![1u32, 3], vec![2]]));
        assert_eq!(
            codec.decode_result(serializer, &reply).expect("decodes"),
            Some(json!([[1, 3], [2]])),
            "{serializer}"
        );
    }
}

#[test]
fn args_are_checked_then_encoded_like_the_generated_stub() {
    let schema = example("shop");
    let codec = MethodCodec::new(&schema, "shop.OrderBook", "place").expect("method");
    let json = json!({
        "items": [{"sku": "A", "quantity": 3, "unit_price_cents": 250}],
        "note": null,
        "labels": {"k": "v"}
    });
    let typed = shop::order_book::PlaceArgs {
        items: vec![shop::LineItem {
            sku: "A".into(),
            quantity: 3,
            unit_price_cents: 250,
        }],
        note: None,
        labels: HashMap::from([("k".to_owned(), "v".to_owned())]),
    };
    for serializer in FORMATS {
        assert_eq!(
            codec.encode_args(serializer, &json).expect("encodes"),
            typed_bytes(serializer, &typed),
            "{serializer}"
        );
    }
    let hello = example("hello");
    let say_hello = MethodCodec::new(&hello, "hello.Greeter", "say_hello").expect("method");
    assert_eq!(
        say_hello
            .encode_args(Serializer::Protobuf, &json!({"name": "Bob"}))
            .expect("encodes"),
        [0x0a, 0x03, b'B', b'o', b'b'],
        "PROTOCOL.md's example"
    );
    let reply = Reply::new(String::from("Hello, Bob!"));
    assert_eq!(
        say_hello
            .decode_result(
                Serializer::Protobuf,
                &typed_bytes(Serializer::Protobuf, &reply)
            )
            .expect("decodes"),
        Some(json!("Hello, Bob!"))
    );
}

#[test]
fn bad_arguments_name_the_spot() {
    let schema = example("shop");
    let codec = MethodCodec::new(&schema, "shop.OrderBook", "place").expect("method");
    let cases = [
        (
            json!({"items": [{"sku": 5}]}),
            "$.items[0].sku: expected string, got a number",
        ),
        (
            json!({"items": [{"quantity": -1}]}),
            "$.items[0].quantity: -1 is out of the range of u32",
        ),
        (
            json!({"items": [{"quantity": 1.5}]}),
            "$.items[0].quantity: expected u32, got a fractional number",
        ),
        (
            json!({"labels": {"k": 1}}),
            "$.labels.k: expected string, got a number",
        ),
        (
            json!({"itemz": []}),
            "$.itemz: no such field; the fields are: items, note, labels",
        ),
        (
            json!({"items": {}}),
            "$.items: expected list<LineItem (an object)>, got an object",
        ),
        (
            json!({"items": null}),
            "$.items: null is only allowed for optional fields; this one is list<LineItem (an object)>",
        ),
    ];
    for (json, expected) in cases {
        let error = codec
            .encode_args(Serializer::Protobuf, &json)
            .expect_err("bad");
        assert_eq!(error.to_string(), expected);
    }
    let status = MethodCodec::new(&schema, "shop.OrderBook", "set_status").expect("method");
    let error = status
        .encode_args(Serializer::Postcard, &json!({"status": "LOST"}))
        .expect_err("bad");
    assert_eq!(
        error.to_string(),
        "$.status: `LOST` is not a variant of OrderStatus; the variants are: PENDING, PAID, SHIPPED"
    );
    assert_eq!(
        codec.args_template(),
        json!({"items": [{"sku": "", "quantity": 1, "unit_price_cents": 0}], "note": "", "labels": {"KEY": ""}})
    );
    assert_eq!(
        codec.signature(),
        "u64 place(1: list<LineItem> items, 2: optional string note, 3: map<string, string> labels)"
    );
}

#[test]
fn large_maps_with_repeated_keys_decode_in_linear_time() {
    // 200k entries, every key twice: a linear scan per entry would take
    // 4e10 comparisons; the hash index takes one lookup per entry.
    const KEYS: u64 = 100_000;
    let schema = fixture("collections");
    let collections = shape(&schema, "Collections");
    let Dyn::Struct(mut fields) =
        message_from_json(&schema, &collections, &json!({})).expect("empty is fine")
    else {
        panic!("a struct");
    };
    let entries: Vec<(Dyn, Dyn)> = (0..2 * KEYS)
        .map(|i| {
            (
                Dyn::Uint(i % KEYS),
                Dyn::Struct(vec![Dyn::Str(i.to_string())]),
            )
        })
        .collect();
    fields[5] = Dyn::Map(entries);
    let value = Dyn::Struct(fields);
    for serializer in [Serializer::Protobuf, Serializer::MessagePack] {
        let bytes = encode_dyn(serializer, &schema, &collections, &value);
        let decoded = decode_dyn(serializer, &schema, &collections, &bytes).expect("decodes");
        let Dyn::Struct(fields) = decoded else {
            panic!("a struct");
        };
        let Dyn::Map(entries) = &fields[5] else {
            panic!("a map");
        };
        assert_eq!(entries.len(), KEYS as usize, "{serializer:?}");
        // First position, last value.
        assert_eq!(entries[0].0, Dyn::Uint(0));
        assert_eq!(entries[0].1, Dyn::Struct(vec![Dyn::Str(KEYS.to_string())]));
        assert_eq!(entries[7].0, Dyn::Uint(7));
        assert_eq!(
            entries[7].1,
            Dyn::Struct(vec![Dyn::Str((KEYS + 7).to_string())])
        );
    }
}

fn postcard_varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[test]
fn the_template_and_the_signature_show_the_idl_defaults() {
    let schema = Schema::from_sources(&[(
        "search.rpc".to_owned(),
        r#"package search;
enum Mode {
  EXACT = 0;
  FUZZY = 1;
}
struct Page {
  1: u32 size = 50;
  2: u32 number;
}
service Search {
  list<string> find(1: string query, 2: u32 limit = 10, 3: Mode mode = FUZZY, 4: string sep = "a\"b\n\u{1}", 5: f64 boost = 1.5, 6: bool exact = true, 7: Page page);
}
"#
        .to_owned(),
    )])
    .expect("the schema checks");
    let codec = MethodCodec::new(&schema, "search.Search", "find").expect("method");
    assert_eq!(
        codec.args_template(),
        json!({
            "query": "",
            "limit": 10,
            "mode": "FUZZY",
            "sep": "a\"b\n\u{1}",
            "boost": 1.5,
            "exact": true,
            "page": {"size": 50, "number": 0},
        })
    );
    assert_eq!(
        codec.signature(),
        r#"list<string> find(1: string query, 2: u32 limit = 10, 3: Mode mode = FUZZY, 4: string sep = "a\"b\n\u{1}", 5: f64 boost = 1.5, 6: bool exact = true, 7: Page page)"#
    );
    // What the template shows is what an omitted argument is.
    let omitted = codec.args(&json!({})).expect("all optional");
    let shown = codec
        .args(&codec.args_template())
        .expect("the template is valid");
    let without_query = |value: Dyn| match value {
        Dyn::Struct(mut fields) => {
            fields.remove(0);
            fields
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(without_query(omitted), without_query(shown));
}

#[test]
fn postcard_lists_of_empty_structs_are_bounded_by_count_not_bytes() {
    let schema = Schema::from_sources(&[(
        "empties.rpc".to_owned(),
        "package empties;\nstruct Empty {\n}\nstruct Holder {\n  1: list<Empty> a;\n  2: list<Empty> b;\n  3: map<u32, Empty> m;\n}\n"
            .to_owned(),
    )])
    .expect("the schema checks");
    let holder = shape(&schema, "Holder");
    // Five empty items take no bytes after their count (five items, four
    // bytes left: a count bounded by the bytes refused this); the map's
    // two entries take one byte each (the key).
    let bytes = [5, 0, 2, 7, 9];
    let value = decode_dyn(Serializer::Postcard, &schema, &holder, &bytes).expect("valid");
    let empty = || Dyn::Struct(Vec::new());
    assert_eq!(
        value,
        Dyn::Struct(vec![
            Dyn::List(vec![empty(); 5]),
            Dyn::List(Vec::new()),
            Dyn::Map(vec![(Dyn::Uint(7), empty()), (Dyn::Uint(9), empty())]),
        ])
    );
    assert_eq!(
        encode_dyn(Serializer::Postcard, &schema, &holder, &value),
        bytes
    );
    // The claim is bounded: per list, and over the whole message.
    let mut too_many = Vec::new();
    postcard_varint((1 << 20) + 1, &mut too_many);
    too_many.extend([0, 0]);
    assert!(decode_dyn(Serializer::Postcard, &schema, &holder, &too_many).is_err());
    let mut two_big = Vec::new();
    postcard_varint(600_000, &mut two_big);
    postcard_varint(600_000, &mut two_big);
    two_big.push(0);
    assert!(decode_dyn(Serializer::Postcard, &schema, &holder, &two_big).is_err());
    // A map entry always takes a byte: a claim beyond the bytes ends.
    assert!(decode_dyn(Serializer::Postcard, &schema, &holder, &[0, 0, 100, 1]).is_err());
}

#[test]
fn hostile_payloads_are_errors_not_panics() {
    let schema = fixture("collections");
    let collections = shape(&schema, "Collections");
    let inputs: [&[u8]; 6] = [
        &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
        &[0xff; 12],
        &[0x12, 0x05, b'a'],
        &[0x08],
        &[0xdd, 0xff, 0xff, 0xff, 0xff],
        &[0x0b, 0x00],
    ];
    for serializer in FORMATS {
        for input in inputs {
            let _ = decode_dyn(serializer, &schema, &collections, input);
        }
    }
    // A postcard list claiming a billion items in five bytes.
    assert!(
        decode_dyn(
            Serializer::Postcard,
            &schema,
            &collections,
            &[0x80, 0x94, 0xeb, 0xdc, 0x03]
        )
        .is_err()
    );
    // Nesting deeper than the limit.
    let unions = fixture("unions");
    let expr = shape(&unions, "Expr");
    let mut deep = Vec::new();
    for _ in 0..200 {
        deep.extend_from_slice(&[0x1a, 0x7f]);
    }
    assert!(decode_dyn(Serializer::Protobuf, &unions, &expr, &deep).is_err());
}

mod generated {
    //! Random values of the fixtures' types (finite floats: JSON has no
    //! NaN or infinity; map keys whose text order is their order, as the
    //! JSON object that carries them is sorted by text).

    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;

    fn bytes() -> impl Strategy<Value = Bytes> {
        vec(any::<u8>(), 0..12).prop_map(Bytes::from)
    }

    fn item() -> impl Strategy<Value = btree_collections::Item> {
        ".{0,6}".prop_map(|name| btree_collections::Item { name })
    }

    prop_compose! {
        fn scalars()(
            flag in any::<bool>(),
            small in any::<i32>(),
            big in any::<i64>(),
            count in any::<u32>(),
            id in any::<u64>(),
            ratio in any::<f32>().prop_filter("finite", |f| f.is_finite()),
            precise in any::<f64>().prop_filter("finite", |f| f.is_finite()),
            text in ".{0,10}",
            blob in bytes(),
        ) -> scalars::Scalars {
            scalars::Scalars { flag, small, big, count, id, ratio, precise, text, blob }
        }
    }

    prop_compose! {
        fn collections()(
            numbers in vec(any::<u32>(), 0..5),
            names in vec(".{0,4}", 0..4),
            blobs in vec(bytes(), 0..3),
            items in vec(item(), 0..3),
            totals in btree_map("[a-z]{0,3}", any::<i64>(), 0..4),
            by_id in btree_map(100u32..1000, item(), 0..4),
            flags in btree_map(any::<bool>(), bytes(), 0..3),
            note in proptest::option::of(".{0,4}"),
            first in proptest::option::of(item()),
            digest in proptest::option::of(bytes()),
            limit in proptest::option::of(any::<u64>()),
        ) -> btree_collections::Collections {
            btree_collections::Collections {
                numbers, names, blobs, items, totals, by_id, flags, note, first, digest, limit,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn random_scalars_encode_like_the_generated_code(value in scalars()) {
            same_bytes_inner(&fixture("scalars"), "Scalars", &value, false);
        }

        #[test]
        fn random_collections_encode_like_the_generated_code(value in collections()) {
            same_bytes_inner(&fixture("collections"), "Collections", &value, false);
        }
    }
}
