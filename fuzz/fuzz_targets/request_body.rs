//! `RequestBody::parse` and `parse_limited` on arbitrary bytes (the body
//! of a request frame).
//!
//! Besides "never panics": a body that parses re-encodes to exactly the
//! input (every field is length-prefixed, so there is one encoding); a body
//! that does not parse fails with a typed error; and metadata limits only
//! ever turn a body within them into the same result, one over them into a
//! limit error, and never hide a malformed body's own error.
#![no_main]

use bytes::{Bytes, BytesMut};
use courier::Metadata;
use courier::protocol::{BodyError, MetadataLimits, RequestBody, encode_request_prefix};
use libfuzzer_sys::fuzz_target;

/// Small limits, so that inputs pass them often.
const LIMITS: MetadataLimits = MetadataLimits {
    max_entries: 3,
    max_bytes: 24,
};

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let unlimited = RequestBody::parse(input.clone());
    check_unlimited(data, &unlimited);
    let limited = RequestBody::parse_limited(input, LIMITS);
    match (&limited, &unlimited) {
        (Ok(limited), Ok(unlimited)) => {
            assert_eq!(limited, unlimited);
            assert!(within_limits(&limited.metadata), "{limited:?}");
        }
        (Ok(limited), Err(error)) => panic!("only the limited parse accepts {limited:?}: {error}"),
        (
            Err(BodyError::TooManyMetadataEntries { .. } | BodyError::MetadataTooLarge { .. }),
            Ok(unlimited),
        ) => assert!(!within_limits(&unlimited.metadata), "{unlimited:?}"),
        (
            Err(BodyError::TooManyMetadataEntries { .. } | BodyError::MetadataTooLarge { .. }),
            Err(_),
        ) => {}
        (Err(limited), unlimited) => assert_eq!(
            Err(limited),
            unlimited.as_ref(),
            "a malformed body fails the same way with limits"
        ),
    }
});

fn within_limits(metadata: &Metadata) -> bool {
    let bytes: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    metadata.len() <= LIMITS.max_entries && bytes <= LIMITS.max_bytes
}

fn check_unlimited(data: &[u8], parsed: &Result<RequestBody, BodyError>) {
    match parsed {
        Ok(body) => {
            let mut encoded = BytesMut::new();
            encode_request_prefix(
                &mut encoded,
                body.service.as_str(),
                body.method.as_str(),
                body.timeout_ms,
                &body.metadata,
            )
            .expect("fields read from u16 lengths fit them again");
            encoded.extend_from_slice(&body.payload);
            assert_eq!(&encoded[..], data, "re-encoding differs from the input");
            assert_eq!(
                body.timeout().is_none(),
                body.timeout_ms == 0,
                "timeout 0 means none"
            );
            let reparsed = RequestBody::parse(encoded.freeze()).expect("re-encoded body parses");
            assert_eq!(&reparsed, body);
        }
        Err(BodyError::Truncated { .. } | BodyError::BadUtf8 { .. }) => {}
        Err(error) => panic!("an unlimited parse only fails on malformed bodies: {error}"),
    }
}
