//! The node data: the JSON that Curator 5's `JsonInstanceSerializer` writes
//! for a `ServiceInstance<Map<String,String>>` (DISCOVERY.md, "ZooKeeper
//! layout"), written byte for byte in Curator's key order, and read
//! leniently (unknown keys ignored, a missing payload means the defaults).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::registry::{DEFAULT_WEIGHT, PROTOCOL, ServiceInstance};
use crate::serializer::Serializer;

/// The payload's Jackson type tag.
const PAYLOAD_CLASS: &str = "java.util.LinkedHashMap";
/// Payload keys that are Courier's own (and `@class`): user metadata with
/// one of these names is not written, and never read back as metadata.
const RESERVED_KEYS: [&str; 4] = ["@class", "weight", "serializers", "protocol"];

/// The node data for `instance`, registered at `registration_time_ms`
/// (milliseconds since the Unix epoch, UTC).
pub(crate) fn encode(instance: &ServiceInstance, registration_time_ms: u64) -> Vec<u8> {
    let mut json = String::with_capacity(320);
    json.push_str("{\"name\":");
    push_str(&mut json, &instance.service);
    json.push_str(",\"id\":");
    push_str(&mut json, &instance.id);
    json.push_str(",\"address\":");
    push_str(&mut json, &instance.address);
    // Curator's two ports: a TLS instance has only `sslPort` (a Java
    // consumer must not take it for a plaintext port).
    if instance.tls {
        let _ = write!(json, ",\"port\":null,\"sslPort\":{}", instance.port);
    } else {
        let _ = write!(json, ",\"port\":{},\"sslPort\":null", instance.port);
    }
    json.push_str(",\"payload\":{\"@class\":");
    push_str(&mut json, PAYLOAD_CLASS);
    let _ = write!(json, ",\"weight\":\"{}\"", instance.weight);
    json.push_str(",\"serializers\":");
    let serializers: Vec<&str> = instance.serializers.iter().map(|s| s.name()).collect();
    push_str(&mut json, &serializers.join(","));
    json.push_str(",\"protocol\":");
    push_str(&mut json, &instance.protocol);
    for (key, value) in &instance.metadata {
        if RESERVED_KEYS.contains(&key.as_str()) {
            continue;
        }
        json.push(',');
        push_str(&mut json, key);
        json.push(':');
        push_str(&mut json, value);
    }
    let _ = write!(
        json,
        "}},\"registrationTimeUTC\":{registration_time_ms},\"serviceType\":\"DYNAMIC\",\"uriSpec\":null}}"
    );
    json.into_bytes()
}

/// Appends a JSON string literal (serde_json's escaping, which is
/// Jackson's: short escapes for `\b \t \n \f \r`, `\u00XX` for other
/// control characters, everything else as UTF-8).
fn push_str(json: &mut String, text: &str) {
    match serde_json::to_string(text) {
        Ok(quoted) => json.push_str(&quoted),
        // Serializing a &str cannot fail; an empty string keeps the JSON valid.
        Err(_) => json.push_str("\"\""),
    }
}

/// Why node data could not be used as an instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Not JSON, or not a JSON object.
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
    /// A required field is missing or of the wrong type.
    #[error("missing or bad `{0}`")]
    BadField(&'static str),
    /// Curator's `enabled` is false: the provider asked not to be used.
    #[error("the instance is disabled (`enabled`: false)")]
    Disabled,
}

/// Reads the data of node `BASE/service/node_id`. The node name is the
/// instance's id and `service` its service (Curator writes the same values
/// in `id` and `name`; a node that disagrees is still found by its path).
pub(crate) fn decode(
    service: &str,
    node_id: &str,
    data: &[u8],
) -> Result<ServiceInstance, DecodeError> {
    let value: Value =
        serde_json::from_slice(data).map_err(|e| DecodeError::NotAnObject(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(DecodeError::NotAnObject("another JSON value".to_owned()));
    };
    if object.get("enabled") == Some(&Value::Bool(false)) {
        return Err(DecodeError::Disabled);
    }
    let address = object
        .get("address")
        .and_then(Value::as_str)
        .filter(|address| !address.is_empty())
        .ok_or(DecodeError::BadField("address"))?;
    // `sslPort` wins when both are set: Courier servers register one, and
    // a TLS-capable instance is reached over TLS.
    let (port, tls) = match (port_field(&object, "sslPort"), port_field(&object, "port")) {
        (Some(ssl_port), _) => (ssl_port, true),
        (None, Some(port)) => (port, false),
        (None, None) => return Err(DecodeError::BadField("port")),
    };

    let mut instance = ServiceInstance {
        service: service.to_owned(),
        id: node_id.to_owned(),
        address: address.to_owned(),
        port,
        tls,
        weight: DEFAULT_WEIGHT,
        serializers: Serializer::ALL.to_vec(),
        protocol: PROTOCOL.to_owned(),
        metadata: BTreeMap::new(),
    };
    let Some(Value::Object(payload)) = object.get("payload") else {
        // No payload (null, absent, or not a map): a plain Curator client.
        return Ok(instance);
    };
    for (key, value) in payload {
        let Some(text) = scalar_text(value) else {
            continue;
        };
        match key.as_str() {
            "@class" => {}
            "weight" => match text.trim().parse::<u32>() {
                Ok(weight) => instance.weight = weight,
                Err(_) => tracing::debug!(
                    service,
                    id = node_id,
                    weight = %text,
                    "ignoring an instance's unreadable weight; using the default"
                ),
            },
            "serializers" => {
                instance.serializers = text
                    .split(',')
                    .filter_map(|name| name.trim().parse::<Serializer>().ok())
                    .collect();
            }
            "protocol" => instance.protocol = text,
            _ => {
                instance.metadata.insert(key.clone(), text);
            }
        }
    }
    Ok(instance)
}

/// A port field: a number in 1..=65535, else `None` (absent, null, or
/// unusable).
fn port_field(object: &serde_json::Map<String, Value>, key: &str) -> Option<u16> {
    object
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port != 0)
}

/// A payload value as text: strings as they are, numbers and booleans as
/// written; anything else (null, arrays, objects) is ignored.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> ServiceInstance {
        ServiceInstance {
            service: "hello.Greeter".into(),
            id: "6f1c2d3e-0000-4000-8000-000000000001".into(),
            address: "127.0.0.1".into(),
            port: 7070,
            tls: false,
            weight: 100,
            serializers: vec![Serializer::Protobuf, Serializer::Json],
            protocol: "courier/1".into(),
            metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn writes_curator_bytes_exactly() {
        let json = encode(&instance(), 1_764_000_000_000);
        assert_eq!(
            std::str::from_utf8(&json).expect("utf-8"),
            concat!(
                r#"{"name":"hello.Greeter","id":"6f1c2d3e-0000-4000-8000-000000000001","#,
                r#""address":"127.0.0.1","port":7070,"sslPort":null,"payload":{"#,
                r#""@class":"java.util.LinkedHashMap","weight":"100","#,
                r#""serializers":"protobuf,json","protocol":"courier/1"},"#,
                r#""registrationTimeUTC":1764000000000,"serviceType":"DYNAMIC","uriSpec":null}"#
            )
        );
    }

    #[test]
    fn metadata_follows_courier_keys_in_order_and_is_escaped() {
        let mut instance = instance();
        instance.metadata.insert("zone".into(), "eu-1".into());
        instance.metadata.insert("a\"b".into(), "line\nnext".into());
        instance.metadata.insert("weight".into(), "shadowed".into());
        let json = String::from_utf8(encode(&instance, 1)).expect("utf-8");
        assert!(
            json.contains(r#""protocol":"courier/1","a\"b":"line\nnext","zone":"eu-1"},"#),
            "{json}"
        );
        assert!(!json.contains("shadowed"));
        let back = decode("hello.Greeter", &instance.id, json.as_bytes()).expect("valid");
        instance.metadata.remove("weight");
        assert_eq!(back, instance);
    }

    #[test]
    fn a_tls_instance_has_only_an_ssl_port() {
        let mut tls = instance();
        tls.tls = true;
        let json = String::from_utf8(encode(&tls, 1)).expect("utf-8");
        assert!(
            json.contains(r#""address":"127.0.0.1","port":null,"sslPort":7070,"payload""#),
            "{json}"
        );
        assert_eq!(decode(&tls.service, &tls.id, json.as_bytes()), Ok(tls));
        // What Curator writes for a Java instance with both ports: TLS wins.
        let both = br#"{"address":"h","port":80,"sslPort":443}"#;
        let both = decode("s", "x", both).expect("valid");
        assert_eq!((both.port, both.tls), (443, true));
        let plain = br#"{"address":"h","port":80,"sslPort":null}"#;
        let plain = decode("s", "x", plain).expect("valid");
        assert_eq!((plain.port, plain.tls), (80, false));
    }

    #[test]
    fn round_trips() {
        let mut original = instance();
        original.weight = 7;
        original.serializers = vec![Serializer::Json];
        original.metadata.insert("region".into(), "north".into());
        let json = encode(&original, 42);
        assert_eq!(decode(&original.service, &original.id, &json), Ok(original));
    }

    #[test]
    fn a_plain_curator_instance_gets_the_defaults() {
        for payload in [
            "null",
            r#"{"@class":"java.util.LinkedHashMap"}"#,
            r#""text""#,
        ] {
            let json = format!(
                r#"{{"name":"s","id":"x","address":"10.0.0.1","port":81,"sslPort":null,"payload":{payload},"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null}}"#
            );
            let instance = decode("s", "x", json.as_bytes()).expect(&json);
            assert_eq!(instance.weight, 100);
            assert_eq!(instance.serializers, Serializer::ALL);
            assert_eq!(instance.protocol, "courier/1");
            assert!(instance.metadata.is_empty());
            assert_eq!((instance.address.as_str(), instance.port), ("10.0.0.1", 81));
        }
        let minimal = decode("s", "x", br#"{"address":"h","port":1}"#).expect("minimal");
        assert_eq!(minimal.weight, 100);
    }

    #[test]
    fn unknown_keys_are_ignored_and_values_are_lenient() {
        let json = br#"{"name":"other","id":"y","address":"h","port":1,"enabled":true,
            "future":{"x":[1]},"payload":{"@class":"java.util.LinkedHashMap",
            "weight":5,"serializers":"json, pigeon ,smoke-signal","protocol":"courier/2",
            "n":3,"flag":true,"nested":{"a":1},"none":null}}"#;
        let instance = decode("s", "x", json).expect("valid");
        assert_eq!(
            (instance.service.as_str(), instance.id.as_str()),
            ("s", "x")
        );
        assert_eq!(instance.weight, 5);
        assert_eq!(instance.serializers, [Serializer::Json]);
        assert_eq!(instance.protocol, "courier/2");
        assert_eq!(
            instance.metadata,
            BTreeMap::from([
                ("flag".to_owned(), "true".to_owned()),
                ("n".to_owned(), "3".to_owned())
            ])
        );
        let bad_weight = br#"{"address":"h","port":1,"payload":{"weight":"heavy"}}"#;
        assert_eq!(decode("s", "x", bad_weight).expect("valid").weight, 100);
    }

    #[test]
    fn bad_data_is_an_error_not_a_panic() {
        let cases: &[(&[u8], DecodeError)] = &[
            (b"", DecodeError::NotAnObject(String::new())),
            (b"[1,2]", DecodeError::NotAnObject(String::new())),
            (b"\xff\xfe", DecodeError::NotAnObject(String::new())),
            (br#"{"port":1}"#, DecodeError::BadField("address")),
            (
                br#"{"address":"","port":1}"#,
                DecodeError::BadField("address"),
            ),
            (br#"{"address":"h"}"#, DecodeError::BadField("port")),
            (
                br#"{"address":"h","port":null,"sslPort":null}"#,
                DecodeError::BadField("port"),
            ),
            (
                br#"{"address":"h","port":null,"sslPort":0}"#,
                DecodeError::BadField("port"),
            ),
            (
                br#"{"address":"h","port":70000}"#,
                DecodeError::BadField("port"),
            ),
            (
                br#"{"address":"h","port":-1}"#,
                DecodeError::BadField("port"),
            ),
            (
                br#"{"address":"h","port":1,"enabled":false}"#,
                DecodeError::Disabled,
            ),
        ];
        for (data, expected) in cases {
            let error = decode("s", "x", data).expect_err("bad");
            match (expected, &error) {
                (DecodeError::NotAnObject(_), DecodeError::NotAnObject(_)) => {}
                _ => assert_eq!(&error, expected, "{}", String::from_utf8_lossy(data)),
            }
        }
    }
}
