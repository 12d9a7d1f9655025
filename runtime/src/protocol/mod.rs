//! The frame codec of PROTOCOL.md: the 18-byte header, a decoder that
//! splits frames out of a read buffer without trusting claimed lengths,
//! request bodies, building frames in one buffer, and the queues frames
//! wait in before they are written.
//!
//! Everything here is synchronous and allocation-aware; the server and the
//! client drive it from their socket tasks.

mod body;
pub(crate) mod buffer_pool;
mod decoder;
mod frame;
mod header;
pub(crate) mod outbox;
pub(crate) mod write_queue;

pub use body::{
    BodyError, MetadataLimits, RequestBody, Utf8Bytes, encode_request_prefix,
    encode_response_metadata, parse_response_metadata, refusal_message, status_message,
    timeout_to_ms,
};
pub use decoder::{DEFAULT_MAX_FRAME_SIZE, Frame, FrameDecoder, FrameError};
pub use frame::{BodyTooLarge, FrameBuilder, empty_frame};
pub use header::{FrameHeader, HEADER_LEN, MAGIC, MessageKind, VERSION};

/// The credits each direction of a streaming call starts with: the sender
/// may send this many items before the receiver gives more (message type
/// 9 adds credit).
pub const CREDIT_WINDOW: u32 = 16;
