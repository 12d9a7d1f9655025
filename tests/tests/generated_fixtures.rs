//! Values of every fixture's generated types travel through every
//! serializer unchanged, and the generated Rust has the promised shape.

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};
use courier::Serializer;
use courier::serializer::WireMessage;
use courier_tests::btree_collections;
use courier_tests::fixtures::{
    collections, constants, defaults, enums, imports, imports_common, keywords, recursion, scalars,
    unions,
};

fn round_trip<M: WireMessage + PartialEq + std::fmt::Debug>(value: &M) {
    for serializer in Serializer::ALL {
        let mut buf = BytesMut::new();
        serializer.encode(value, &mut buf).expect("encode");
        let back: M = serializer.decode(buf.freeze()).expect("decode");
        assert_eq!(&back, value, "round trip through {serializer}");
    }
}

#[test]
fn scalars_at_their_extremes() {
    round_trip(&scalars::Scalars {
        flag: true,
        small: i32::MIN,
        big: i64::MAX,
        count: u32::MAX,
        id: u64::MAX,
        ratio: -1.5,
        precise: f64::MIN_POSITIVE,
        text: "héllo \u{1F600}".into(),
        blob: Bytes::from_static(&[0, 255, 1]),
    });
    round_trip(&scalars::Scalars::default());
}

#[test]
fn collections_of_every_kind_with_both_map_types() {
    let item = |name: &str| collections::Item { name: name.into() };
    round_trip(&collections::Collections {
        numbers: vec![0, 1, u32::MAX],
        names: vec!["a".into(), String::new()],
        blobs: vec![Bytes::from_static(b"x"), Bytes::new()],
        items: vec![item("one"), item("two")],
        totals: HashMap::from([("a".into(), -1), ("b".into(), i64::MAX)]),
        by_id: HashMap::from([(7, item("seven"))]),
        flags: HashMap::from([(true, Bytes::from_static(b"yes")), (false, Bytes::new())]),
        note: Some(String::new()),
        first: Some(item("first")),
        digest: Some(Bytes::from_static(b"\x01")),
        limit: Some(0),
    });
    let ordered = btree_collections::Collections {
        by_id: BTreeMap::from([(1, btree_collections::Item { name: "x".into() })]),
        flags: BTreeMap::from([(true, Bytes::from_static(b"\xff"))]),
        ..Default::default()
    };
    round_trip(&ordered);
    // The extra derives were applied.
    let item = btree_collections::Item { name: "a".into() };
    assert!(item < btree_collections::Item { name: "b".into() });
    let _: std::collections::HashSet<btree_collections::Item> = [item].into_iter().collect();
}

#[test]
fn enums_are_real_enums_and_keep_unknown_values() {
    let crossing = enums::Crossing {
        main: enums::Light::BlinkingAmber,
        side: Some(enums::Light::Red),
        history: vec![enums::Light::Green, enums::Light::Unrecognized(42)],
        by_street: HashMap::from([("main".into(), enums::Light::Amber)]),
    };
    round_trip(&crossing);
    let json = serde_json::to_value(&crossing).expect("json");
    assert_eq!(json["main"], "BLINKING_AMBER");
    assert_eq!(json["history"], serde_json::json!(["GREEN", 42]));
    match crossing.main {
        enums::Light::Red | enums::Light::Amber | enums::Light::Green => panic!("wrong variant"),
        enums::Light::BlinkingAmber => {}
        enums::Light::Unrecognized(_) => panic!("known value"),
    }
}

#[test]
fn unions_hold_one_arm_and_recurse_through_boxes() {
    use unions::{Binary, Expr, Negate};
    // -(1 + 2)
    let expr = Expr::Negate(Box::new(Negate {
        inner: Expr::Binary(Box::new(Binary {
            left: Expr::Literal(1),
            operator: "+".into(),
            right: Expr::Literal(2),
        })),
    }));
    round_trip(&expr);
    let checkout = unions::Checkout {
        payment: unions::Payment::Card(unions::Card {
            number: "4111".into(),
            expiry_month: 12,
        }),
        fallback: Some(unions::Payment::Token(Bytes::from_static(b"tok"))),
        history: vec![unions::Payment::Voucher(String::new())],
    };
    round_trip(&checkout);
    let json = serde_json::to_value(&checkout).expect("json");
    assert_eq!(json["payment"]["card"]["number"], "4111");
    assert_eq!(json["fallback"]["token"], "dG9r");
    assert_eq!(json["history"][0]["voucher"], "");
}

#[test]
fn recursive_structs_box_their_optional_self() {
    let leaf = recursion::Node {
        label: "leaf".into(),
        ..Default::default()
    };
    let root = recursion::Node {
        label: "root".into(),
        children: vec![leaf.clone(), leaf],
        parent: Some(Box::new(recursion::Node {
            label: "above".into(),
            ..Default::default()
        })),
    };
    round_trip(&root);
    round_trip(&recursion::Ping {
        pong: Some(Box::new(recursion::Pong {
            ping: Some(Box::new(recursion::Ping::default())),
        })),
    });
}

#[test]
fn idl_defaults_are_the_rust_defaults_and_zero_still_travels() {
    let settings = defaults::Settings::default();
    assert_eq!(settings.retries, 3);
    assert_eq!(settings.greeting, "hello\n\"world\"");
    assert!(settings.enabled);
    assert_eq!(settings.ratio, 0.5);
    assert_eq!(settings.offset, -7);
    assert_eq!(settings.mode, defaults::Mode::On);
    round_trip(&settings);
    round_trip(&defaults::Settings {
        retries: 0,
        greeting: String::new(),
        enabled: false,
        ratio: 0.0,
        offset: 0,
        mode: defaults::Mode::Off,
    });
}

#[test]
fn constants_have_their_values() {
    assert_eq!(constants::MAX_ITEMS, 100u32);
    assert_eq!(constants::MIN_BALANCE, -500i64);
    assert_eq!(constants::TAX_RATE, 0.2f64);
    const { assert!(constants::STRICT) };
    assert_eq!(constants::GREETING, "hello \"world\"\n\u{1F600}");
    assert_eq!(constants::BIG, 0xFFFF_FFFFu64);
}

#[test]
fn keyword_names_compile_and_keep_their_idl_names_on_the_wire() {
    let value = keywords::Type {
        r#match: "m".into(),
        self_: 7,
        r#async: true,
        crate_: "c".into(),
    };
    round_trip(&value);
    let json = serde_json::to_value(&value).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"match": "m", "self": 7, "async": true, "crate": "c"})
    );
    assert_eq!(keywords::Self_::Mod, keywords::Self_::Mod);
}

#[test]
fn types_of_imported_packages_are_used_by_path() {
    let money = |cents| imports_common::Money {
        cents,
        currency: imports_common::Currency::Usd,
    };
    round_trip(&imports::Invoice {
        total: money(300),
        lines: vec![money(100), money(200)],
        currency: Some(imports_common::Currency::Eur),
    });
}

#[test]
fn a_declared_error_with_no_fields_is_an_empty_message() {
    use courier_tests::fixtures::services::ReadOnly;
    use courier_tests::fixtures::services::store::DeleteError;
    let error = DeleteError::ReadOnly(ReadOnly {});
    round_trip(&error);
    assert_eq!(
        serde_json::to_string(&error).expect("json"),
        r#"{"read_only":{}}"#
    );
}
