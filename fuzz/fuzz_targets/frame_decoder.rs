//! `FrameDecoder` fed arbitrary bytes in arbitrary chunks.
//!
//! Input layout: byte 0 picks the frame size limit, byte 1 the chunking and
//! the buffer mode, the rest is the stream. Besides "never panics", every
//! run checks that:
//!
//! - the frames and the final error are exactly those of a plain reference
//!   decoder run on the whole stream at once (chunking changes nothing);
//! - each frame's body has the header's length, within the limit, and
//!   re-encoding the frame gives back the bytes of the stream;
//! - the decoder reserves room only for bytes that may still come: never
//!   more than `min(limit, 64 KiB) + header` beyond what has arrived, and
//!   nothing proportional to a claimed length.
#![no_main]

use bytes::BytesMut;
use courier::protocol::{
    DEFAULT_MAX_FRAME_SIZE, Frame, FrameDecoder, FrameError, FrameHeader, HEADER_LEN, MAGIC,
    MessageKind, VERSION,
};
use libfuzzer_sys::fuzz_target;

/// The decoder's look-ahead bound on reservations (`RESERVE_AHEAD` in
/// runtime/src/protocol/decoder.rs).
const RESERVE_AHEAD: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let [limit_byte, chunk_byte, stream @ ..] = data else {
        return;
    };
    let max_frame_size = match limit_byte % 4 {
        0 => DEFAULT_MAX_FRAME_SIZE,
        1 => u32::from(limit_byte >> 2), // 0..=63: tiny limits, often hit
        2 => 1024,
        _ => 70_000, // above the reservation look-ahead
    };
    let fresh_buffers = chunk_byte & 0x80 != 0;
    let chunk_len = usize::from(chunk_byte & 0x7F);

    let expected = reference_decode(stream, max_frame_size);
    let mut decoder = FrameDecoder::new(max_frame_size);
    let mut got = Outcome::default();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut chunks = chunk_iter(stream, chunk_len);
    'feed: loop {
        let more = chunks.next();
        if let Some(chunk) = more {
            buf.extend_from_slice(chunk);
            fed += chunk.len();
        }
        loop {
            if fresh_buffers {
                // A buffer of exactly its length: any growth is the decoder's.
                let mut exact = BytesMut::with_capacity(buf.len());
                exact.extend_from_slice(&buf);
                buf = exact;
            }
            let len_before = buf.len();
            let capacity_before = buf.capacity();
            let result = decoder.decode(&mut buf);
            check_reservation(
                &buf,
                len_before,
                capacity_before,
                fed,
                max_frame_size,
                fresh_buffers,
            );
            match result {
                Ok(Some(frame)) => {
                    check_frame(&frame, max_frame_size);
                    got.frames.push(frame);
                }
                Ok(None) => break,
                Err(error) => {
                    got.error = Some(error);
                    break 'feed;
                }
            }
        }
        if more.is_none() {
            break;
        }
    }
    assert_eq!(got, expected, "chunked decoding differs from the reference");
    if got.error.is_none() {
        // Whatever was not a whole frame is still in the buffer.
        let consumed: usize = got.frames.iter().map(|f| HEADER_LEN + f.body.len()).sum();
        let mut rest = &stream[consumed..];
        if rest.len() >= HEADER_LEN {
            rest = &rest[HEADER_LEN..]; // a valid header, already taken
        }
        assert_eq!(&buf[..], rest, "the unfinished tail is kept as is");
    }
    // Re-encoding the frames gives back the stream's bytes.
    let mut reencoded = BytesMut::new();
    for frame in &got.frames {
        frame.header.encode_into(&mut reencoded);
        reencoded.extend_from_slice(&frame.body);
    }
    assert_eq!(&reencoded[..], &stream[..reencoded.len()]);
});

#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Frame>,
    error: Option<FrameError>,
}

/// Splits `stream` into chunks of `len` bytes (`0`: one chunk).
fn chunk_iter(stream: &[u8], len: usize) -> std::slice::Chunks<'_, u8> {
    stream.chunks(if len == 0 { stream.len().max(1) } else { len })
}

fn check_frame(frame: &Frame, max_frame_size: u32) {
    let claimed = usize::try_from(frame.header.body_len).expect("u32 fits usize");
    assert_eq!(frame.body.len(), claimed, "body length is the header's");
    assert!(
        frame.header.body_len <= max_frame_size,
        "frame over the limit"
    );
}

/// The decoder never reserves room for more than the rest of the current
/// frame, capped at the look-ahead, beyond what has arrived.
fn check_reservation(
    buf: &BytesMut,
    len_before: usize,
    capacity_before: usize,
    fed: usize,
    max_frame_size: u32,
    fresh_buffers: bool,
) {
    let limit = usize::try_from(max_frame_size).expect("u32 fits usize");
    let ahead = limit.min(RESERVE_AHEAD) + HEADER_LEN;
    if fresh_buffers {
        // Growth of a buffer of exactly `len_before` bytes: `Vec::reserve`
        // grows to max(2 × len, len + additional, 8), so "additional" is
        // bounded when the capacity exceeds twice the length.
        let capacity = buf.capacity();
        if capacity > capacity_before {
            assert!(
                capacity <= (2 * len_before).max(len_before + ahead).max(8),
                "decoder reserved {capacity} bytes with {len_before} in the buffer \
                 (limit {max_frame_size})"
            );
        }
    } else {
        // A buffer that only ever grew by what was fed and what the decoder
        // asked for: bounded by what arrived, never by a claimed length.
        let bound = 2 * (fed + RESERVE_AHEAD + HEADER_LEN) + 64;
        assert!(
            buf.capacity() <= bound,
            "buffer capacity {} after {fed} bytes fed",
            buf.capacity()
        );
    }
}

/// A plain decoder of a whole stream, written from PROTOCOL.md's table.
fn reference_decode(stream: &[u8], max_frame_size: u32) -> Outcome {
    let mut outcome = Outcome::default();
    let mut rest = stream;
    while let Some((head, after)) = rest.split_first_chunk::<HEADER_LEN>() {
        let magic = u16::from_be_bytes([head[0], head[1]]);
        let version = head[2];
        let serializer = head[3];
        let request_id = u64::from_be_bytes(head[6..14].try_into().expect("8 bytes"));
        let body_len = u32::from_be_bytes(head[14..18].try_into().expect("4 bytes"));
        if magic != MAGIC {
            outcome.error = Some(FrameError::BadMagic { found: magic });
            break;
        }
        if version != VERSION {
            outcome.error = Some(FrameError::UnsupportedVersion {
                version,
                request_id,
                serializer,
            });
            break;
        }
        if body_len > max_frame_size {
            outcome.error = Some(FrameError::FrameTooLarge {
                request_id,
                serializer,
                len: body_len,
                max: max_frame_size,
            });
            break;
        }
        let len = usize::try_from(body_len).expect("u32 fits usize");
        let Some((body, after)) = after.split_at_checked(len) else {
            break;
        };
        outcome.frames.push(Frame {
            header: FrameHeader {
                serializer,
                kind: MessageKind::from_u8(head[4]),
                status: head[5],
                request_id,
                body_len,
            },
            body: bytes::Bytes::copy_from_slice(body),
        });
        rest = after;
    }
    outcome
}
