//! Splits frames out of a read buffer, checking the header before trusting
//! it (in the style of tokio-util's `length_delimited` decoder).

use bytes::buf::Limit;
use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::buffer_pool::{BufferPool, LARGE_BUFFERS};
use super::header::{FrameHeader, HEADER_LEN, MAGIC, RawHeader, VERSION};

/// The default limit on a frame's body length: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16 * 1024 * 1024;

/// How far ahead of the bytes that have arrived the decoder reserves room
/// for a body: a peer that claims a large body makes us allocate only as
/// its bytes come in.
const RESERVE_AHEAD: usize = 64 * 1024;

/// Bodies up to this long are copied out of the read buffer into an
/// allocation of their own; longer ones are split out without copying.
///
/// A body split out of the read buffer keeps the buffer's whole allocation
/// alive for as long as the body lives (a call in flight, a response
/// waiting for its caller). Copying small bodies means a small call never
/// pins a buffer larger than itself, and that the read buffer is no longer
/// shared once its frames are taken, so it is reused instead of being
/// reallocated. A copy of a few KiB costs less than the allocation it
/// saves.
pub(crate) const COPY_BODY_MAX: usize = 32 * 1024;

/// How far ahead of the bytes that have arrived a large body's own buffer
/// grows at first: what the read buffer could hold ahead of arrived bytes
/// before (the 64 KiB reserved here plus the 8 KiB the read loops keep
/// free), enough for a 64 KiB payload and its request's names in one
/// allocation. Past it, the buffer at most doubles what has arrived.
const BODY_STEP: usize = 72 * 1024;

/// After a large body is split out, the bytes that followed it move to a
/// fresh buffer with this much room, so that later frames are not read into
/// (and do not pin) the large body's allocation.
const DETACHED_ROOM: usize = 8 * 1024;

/// One decoded frame: its header and its body. A body of at most 32 KiB
/// has an allocation of its own; a larger one is
/// split out of the read buffer without copying, and the read buffer moves
/// on to a new allocation, so no body ever keeps another frame's bytes
/// alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: FrameHeader,
    /// Exactly `header.body_len` bytes.
    pub body: Bytes,
}

/// A header that breaks PROTOCOL.md. The stream can't be decoded past it:
/// the connection is closed after the answer the error calls for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first two bytes are not `0xCA11`: close the connection at once.
    #[error("bad magic 0x{found:04X} (expected 0xCA11)")]
    BadMagic {
        /// The two bytes found instead.
        found: u16,
    },
    /// A version this runtime does not speak: answer status 11, then close.
    #[error("unsupported protocol version {version} (request id {request_id})")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
        /// The request id of the frame, for the answer.
        request_id: u64,
        /// The serializer byte of the frame, for the answer.
        serializer: u8,
    },
    /// A body longer than the limit: answer status 10, then close.
    #[error("frame body of {len} bytes exceeds the limit of {max} bytes (request id {request_id})")]
    FrameTooLarge {
        /// The request id of the frame, for the answer.
        request_id: u64,
        /// The serializer byte of the frame, for the answer.
        serializer: u8,
        /// The claimed body length.
        len: u32,
        /// The limit.
        max: u32,
    },
}

#[derive(Debug, Clone)]
enum State {
    /// Waiting for the 18 header bytes.
    Head,
    /// The header is checked; waiting for its body.
    Body(FrameHeader),
    /// The header is checked; its body, longer than 32 KiB, is read into a
    /// buffer of its own (see [`FrameDecoder::reserve_for_read`]).
    LargeBody(FrameHeader, BodyBuffer),
}

/// A large body being read: never longer than the body, and never more
/// than [`BODY_STEP`] (or the bytes already arrived) ahead of what arrived;
/// or, when that rule would allocate the whole body at once anyway, a
/// buffer recycled from the pool of large buffers that fits it (with at
/// most 4 KiB to spare).
#[derive(Clone, Default)]
struct BodyBuffer(Vec<u8>);

impl std::fmt::Debug for BodyBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyBuffer")
            .field("len", &self.0.len())
            .field("capacity", &self.0.capacity())
            .finish()
    }
}

impl BodyBuffer {
    /// A buffer for a body of `len` bytes whose first bytes are `arrived`.
    fn start(len: usize, arrived: &[u8], pool: &BufferPool) -> BodyBuffer {
        let ahead = (len - arrived.len()).min(BODY_STEP);
        // A recycled buffer only where a fresh one would hold the whole
        // body too: a peer's claim never takes more room ahead of its bytes
        // than the step rule gives it (plus the buffer's little spare).
        let recycled = (arrived.len() + ahead == len)
            .then(|| pool.take(len))
            .flatten();
        let mut body = recycled.unwrap_or_else(|| Vec::with_capacity(arrived.len() + ahead));
        body.extend_from_slice(arrived);
        BodyBuffer(body)
    }

    /// The whole body, as `Bytes` that give the buffer back to the pool
    /// when they are dropped.
    fn finish(&mut self, pool: &'static BufferPool) -> Bytes {
        pool.recycling_bytes(std::mem::take(&mut self.0))
    }

    /// Makes room for the next bytes of a body of `len` bytes, if it is
    /// full and not whole: the bytes that arrived again (at least
    /// [`BODY_STEP`]), never past the body's end. Exact: no rounding up.
    fn grow(&mut self, len: usize) {
        let body = &mut self.0;
        let missing = len.saturating_sub(body.len());
        if missing > 0 && body.capacity() == body.len() {
            body.reserve_exact(missing.min(body.len().max(BODY_STEP)));
        }
    }

    /// Moves bytes of `src` that belong to the body into it.
    fn absorb(&mut self, len: usize, src: &mut BytesMut) {
        let take = len.saturating_sub(self.0.len()).min(src.len());
        if take > 0 {
            let body = &mut self.0;
            let room = body.capacity() - body.len();
            if room < take {
                body.reserve_exact(take - room);
            }
            body.extend_from_slice(&src[..take]);
            src.advance(take);
        }
    }
}

/// Decodes frames from a read buffer, one at a time.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_size: u32,
    state: State,
    /// Set by the first [`FrameDecoder::reserve_for_read`]: the caller
    /// reads large bodies into their own buffers.
    large_bodies_apart: bool,
    /// Where large bodies' buffers come from and go back to.
    pool: &'static BufferPool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder that refuses bodies longer than `max_frame_size` bytes.
    pub fn new(max_frame_size: u32) -> FrameDecoder {
        FrameDecoder {
            max_frame_size,
            state: State::Head,
            large_bodies_apart: false,
            pool: &LARGE_BUFFERS,
        }
    }

    /// The same decoder with large bodies' buffers from `pool` (a test's
    /// own, instead of the process-wide one).
    #[cfg(test)]
    fn with_buffer_pool(self, pool: &'static BufferPool) -> FrameDecoder {
        FrameDecoder { pool, ..self }
    }

    /// The body length limit.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Whether a frame has begun: its header was taken and its body is
    /// still missing. (Bytes of a header still in the buffer are not seen
    /// here; the caller's buffer holds them.)
    pub fn in_body(&self) -> bool {
        !matches!(self.state, State::Head)
    }

    /// Gets room ready for the next read, which goes into
    /// [`read_buffer`](Self::read_buffer): at least `min_room` free bytes
    /// in `src`, or, while a body longer than 32 KiB is missing bytes,
    /// room in a buffer of the body's own.
    ///
    /// A body longer than 32 KiB that has not arrived whole moves (what
    /// arrived of it: at most one read) into an exact-size buffer of its
    /// own, which grows as its bytes arrive: never past the body's end,
    /// and never more than 72 KiB or the bytes already arrived ahead of
    /// them, so a peer that claims a large body makes the reader allocate
    /// only in proportion to what it sent ([`reserved_ahead`](Self::reserved_ahead)
    /// says how much; charge it to the peer). Where that rule gives the
    /// whole body at once, a recycled buffer that fits it (with at most
    /// 4 KiB to spare) may be taken instead. Reads then never cross the
    /// body's end, the body is never copied again nor reallocated while
    /// an earlier body still shares its buffer, and `src` stays free for
    /// the next frames (it is not shared with any body, so it is reused in
    /// place).
    ///
    /// Optional: a caller that reads into `src` only (and never calls
    /// this) gets the same frames.
    pub fn reserve_for_read(&mut self, src: &mut BytesMut, min_room: usize) {
        self.large_bodies_apart = true;
        if let State::Body(header) = self.state {
            let len = body_len(header);
            if len > COPY_BODY_MAX && src.len() < len {
                self.state = State::LargeBody(header, BodyBuffer::start(len, src, self.pool));
                src.clear();
            }
        }
        if let State::LargeBody(header, body) = &mut self.state {
            let len = body_len(*header);
            if body.0.len() < len {
                body.grow(len);
                return;
            }
        }
        if src.capacity() - src.len() < min_room {
            src.reserve(min_room);
        }
    }

    /// Where the next read goes, once [`reserve_for_read`](Self::reserve_for_read)
    /// made room: the large body being read (never past its end), or
    /// `src`. Never full.
    pub fn read_buffer<'a>(
        &'a mut self,
        src: &'a mut BytesMut,
    ) -> Limit<&'a mut (dyn BufMut + Send)> {
        if let State::LargeBody(header, body) = &mut self.state {
            let missing = body_len(*header).saturating_sub(body.0.len());
            if body.0.len() < body.0.capacity() && missing > 0 {
                let body: &mut (dyn BufMut + Send) = &mut body.0;
                return body.limit(missing);
            }
        }
        let src: &mut (dyn BufMut + Send) = src;
        src.limit(usize::MAX)
    }

    /// Bytes allocated for the large body being read beyond those that
    /// arrived (what a peer made the reader allocate ahead of its bytes).
    pub fn reserved_ahead(&self) -> usize {
        match &self.state {
            State::LargeBody(_, body) => body.0.capacity() - body.0.len(),
            _ => 0,
        }
    }

    /// Takes the next whole frame out of `src` (or out of the large body's
    /// own buffer, see [`reserve_for_read`](Self::reserve_for_read)).
    ///
    /// Returns `Ok(None)` until the frame has fully arrived; it then has
    /// reserved room in `src` for (part of) what is still missing, never
    /// more than the current frame needs and never the whole claimed
    /// length of a large body up front. After an error the stream is
    /// unusable and the decoder must not be called again.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let header = match &mut self.state {
            State::LargeBody(header, body) => {
                let (header, len) = (*header, body_len(*header));
                body.absorb(len, src);
                if body.0.len() < len {
                    return Ok(None);
                }
                let body = body.finish(self.pool);
                self.state = State::Head;
                return Ok(Some(Frame { header, body }));
            }
            State::Body(header) => *header,
            State::Head => match self.decode_head(src)? {
                Some(header) => {
                    self.state = State::Body(header);
                    header
                }
                None => return Ok(None),
            },
        };
        let len = body_len(header);
        match len.checked_sub(src.len()) {
            Some(missing) if missing > 0 && self.large_bodies_apart && len > COPY_BODY_MAX => {
                self.state = State::LargeBody(header, BodyBuffer::start(len, src, self.pool));
                src.clear();
                Ok(None)
            }
            Some(missing) if missing > 0 => {
                src.reserve(missing.min(RESERVE_AHEAD));
                Ok(None)
            }
            _ => {
                let body = take_body(src, len);
                self.state = State::Head;
                Ok(Some(Frame { header, body }))
            }
        }
    }

    /// Reads and checks a header, consuming its bytes once it is whole.
    fn decode_head(&self, src: &mut BytesMut) -> Result<Option<FrameHeader>, FrameError> {
        let Some(bytes) = src.first_chunk::<HEADER_LEN>() else {
            src.reserve(HEADER_LEN - src.len());
            return Ok(None);
        };
        let raw = RawHeader::read(bytes);
        if raw.magic != MAGIC {
            return Err(FrameError::BadMagic { found: raw.magic });
        }
        let header = raw.header;
        if raw.version != VERSION {
            return Err(FrameError::UnsupportedVersion {
                version: raw.version,
                request_id: header.request_id,
                serializer: header.serializer,
            });
        }
        if header.body_len > self.max_frame_size {
            return Err(FrameError::FrameTooLarge {
                request_id: header.request_id,
                serializer: header.serializer,
                len: header.body_len,
                max: self.max_frame_size,
            });
        }
        src.advance(HEADER_LEN);
        Ok(Some(header))
    }
}

/// The body length of a checked header.
fn body_len(header: FrameHeader) -> usize {
    // `body_len <= max_frame_size`, checked by `decode_head`; a `u32`
    // always fits a `usize` on the targets tokio supports.
    usize::try_from(header.body_len).unwrap_or(usize::MAX)
}

/// Takes the first `len` bytes of `src` (which holds at least that many)
/// as a body that shares its allocation with no other frame.
fn take_body(src: &mut BytesMut, len: usize) -> Bytes {
    if len <= COPY_BODY_MAX {
        let body = Bytes::copy_from_slice(&src[..len]);
        src.advance(len);
        return body;
    }
    let body = src.split_to(len).freeze();
    // What follows the body (part of the next frames) still lives in the
    // body's allocation: move it out, so the frames read next get a buffer
    // of their own instead of pinning this one.
    let mut rest = BytesMut::with_capacity(src.len() + DETACHED_ROOM);
    rest.extend_from_slice(src);
    *src = rest;
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::MessageKind;

    fn request_header(request_id: u64, body_len: u32) -> FrameHeader {
        FrameHeader {
            serializer: 1,
            kind: MessageKind::Request,
            status: 0,
            request_id,
            body_len,
        }
    }

    fn frame_bytes(request_id: u64, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        request_header(request_id, u32::try_from(body.len()).expect("small")).encode_into(&mut buf);
        buf.extend_from_slice(body);
        buf
    }

    #[test]
    fn round_trip_of_several_frames_in_one_buffer() {
        let mut buf = frame_bytes(1, b"hello");
        buf.extend_from_slice(&frame_bytes(2, b""));
        buf.extend_from_slice(&frame_bytes(3, b"xyz"));
        let mut decoder = FrameDecoder::default();
        let first = decoder.decode(&mut buf).expect("valid").expect("whole");
        assert_eq!(first.header, request_header(1, 5));
        assert_eq!(&first.body[..], b"hello");
        let second = decoder.decode(&mut buf).expect("valid").expect("whole");
        assert_eq!(second.header.request_id, 2);
        assert!(second.body.is_empty());
        let third = decoder.decode(&mut buf).expect("valid").expect("whole");
        assert_eq!(&third.body[..], b"xyz");
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_by_byte_arrival_yields_the_frame_once_complete() {
        let whole = frame_bytes(9, b"payload");
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        for (i, byte) in whole.iter().enumerate() {
            assert_eq!(decoder.decode(&mut buf), Ok(None), "after {i} bytes");
            buf.extend_from_slice(&[*byte]);
        }
        let frame = decoder.decode(&mut buf).expect("valid").expect("whole");
        assert_eq!(frame.header.request_id, 9);
        assert_eq!(&frame.body[..], b"payload");
    }

    #[test]
    fn truncated_header_is_not_an_error() {
        let whole = frame_bytes(1, b"x");
        let mut buf = BytesMut::from(&whole[..HEADER_LEN - 1]);
        let mut decoder = FrameDecoder::default();
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), HEADER_LEN - 1, "nothing consumed");
    }

    #[test]
    fn body_shorter_than_its_length_waits_for_more() {
        let whole = frame_bytes(4, &[7; 100]);
        let mut buf = BytesMut::from(&whole[..HEADER_LEN + 40]);
        let mut decoder = FrameDecoder::default();
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(None),
            "asking again is harmless"
        );
        buf.extend_from_slice(&whole[HEADER_LEN + 40..]);
        let frame = decoder.decode(&mut buf).expect("valid").expect("whole");
        assert_eq!(frame.body.len(), 100);
    }

    #[test]
    fn bad_magic_is_rejected() {
        let mut buf = frame_bytes(1, b"x");
        buf[0] = 0xDE;
        buf[1] = 0xAD;
        let mut decoder = FrameDecoder::default();
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::BadMagic { found: 0xDEAD })
        );
    }

    #[test]
    fn version_2_is_rejected_with_its_request_id() {
        let mut buf = frame_bytes(77, b"x");
        buf[2] = 2;
        let mut decoder = FrameDecoder::default();
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::UnsupportedVersion {
                version: 2,
                request_id: 77,
                serializer: 1
            })
        );
    }

    #[test]
    fn huge_length_is_rejected_without_allocating() {
        let mut buf = BytesMut::new();
        request_header(5, u32::MAX).encode_into(&mut buf);
        let capacity_before = buf.capacity();
        let mut decoder = FrameDecoder::default();
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::FrameTooLarge {
                request_id: 5,
                serializer: 1,
                len: u32::MAX,
                max: DEFAULT_MAX_FRAME_SIZE
            })
        );
        assert_eq!(buf.capacity(), capacity_before);
    }

    #[test]
    fn configurable_limit_is_inclusive() {
        let mut decoder = FrameDecoder::new(4);
        let mut ok = frame_bytes(1, b"1234");
        assert!(decoder.decode(&mut ok).expect("at the limit").is_some());
        let mut too_big = frame_bytes(2, b"12345");
        assert!(matches!(
            decoder.decode(&mut too_big),
            Err(FrameError::FrameTooLarge { len: 5, max: 4, .. })
        ));
    }

    #[test]
    fn large_claimed_body_reserves_only_a_bounded_chunk() {
        let mut buf = BytesMut::new();
        request_header(1, DEFAULT_MAX_FRAME_SIZE).encode_into(&mut buf);
        let mut decoder = FrameDecoder::default();
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(
            buf.capacity() <= 2 * RESERVE_AHEAD + HEADER_LEN,
            "reserved {} bytes for a body that has not arrived",
            buf.capacity()
        );
    }

    /// The size of the allocation behind `bytes` (converting a unique
    /// `Bytes` back into a `Vec` reclaims its whole buffer).
    fn allocation_of(bytes: Bytes) -> usize {
        Vec::<u8>::from(bytes).capacity()
    }

    #[test]
    fn small_bodies_get_an_allocation_of_their_own() {
        let mut buf = frame_bytes(1, &[1; 50]);
        buf.extend_from_slice(&frame_bytes(2, &[2; 70]));
        buf.reserve(1 << 20);
        let mut decoder = FrameDecoder::default();
        let first = decoder.decode(&mut buf).expect("valid").expect("whole");
        let second = decoder.decode(&mut buf).expect("valid").expect("whole");
        // The read buffer is shared with no body: it is reused in place
        // while both calls are still alive.
        assert!(buf.is_empty());
        assert!(buf.try_reclaim(1 << 20), "the read buffer is shared");
        drop(buf);
        assert_eq!(allocation_of(first.body), 50);
        assert_eq!(allocation_of(second.body), 70);
    }

    #[test]
    fn a_small_call_after_a_large_frame_does_not_pin_the_large_buffer() {
        const LARGE: usize = 4 << 20;
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let large = frame_bytes(1, &vec![7; LARGE]);
        // The large frame arrives in pieces (the buffer grows as it comes),
        // and its last piece brings the start of two small frames.
        let mut small = frame_bytes(2, b"small call");
        small.extend_from_slice(&frame_bytes(3, &[3; 40_000]));
        let mut arriving = large.clone();
        arriving.extend_from_slice(&small[..HEADER_LEN + 4]);
        let mut large_frame = None;
        for piece in arriving.chunks(64 * 1024) {
            buf.extend_from_slice(piece);
            if let Some(frame) = decoder.decode(&mut buf).expect("valid") {
                large_frame = Some(frame);
            }
        }
        let large_frame = large_frame.expect("the large frame");
        buf.extend_from_slice(&small[HEADER_LEN + 4..]);
        let small_frame = decoder.decode(&mut buf).expect("valid").expect("whole");
        let medium_frame = decoder.decode(&mut buf).expect("valid").expect("whole");
        assert_eq!(&small_frame.body[..], b"small call");
        // An allocation is only seen whole once nothing else shares it:
        // measure in an order where a shared one would show.
        drop(buf);
        let large = allocation_of(large_frame.body);
        assert!(
            large <= 2 * LARGE + HEADER_LEN + 2 * RESERVE_AHEAD,
            "a {LARGE}-byte body pins {large} bytes"
        );
        let medium = allocation_of(medium_frame.body);
        assert!(
            medium < 2 * 40_000 + 2 * DETACHED_ROOM,
            "a 40 kB body pins {medium} bytes"
        );
        let small = allocation_of(small_frame.body);
        assert_eq!(small, 10, "a 10-byte body pins {small} bytes");
    }

    /// Reads `input` the way a read loop does: room first, then at most
    /// `chunk` bytes into the buffer the decoder names, then decode.
    /// Returns the frames and the most bytes ever reserved ahead.
    fn read_through(input: &[u8], chunk: usize) -> (Vec<Frame>, usize, BytesMut) {
        read_through_with(
            FrameDecoder::default().with_buffer_pool(own_pool()),
            input,
            chunk,
        )
    }

    /// A buffer pool of the test's own.
    fn own_pool() -> &'static BufferPool {
        Box::leak(Box::new(BufferPool::new()))
    }

    /// [`read_through`] with a given decoder.
    fn read_through_with(
        mut decoder: FrameDecoder,
        input: &[u8],
        chunk: usize,
    ) -> (Vec<Frame>, usize, BytesMut) {
        let mut buf = BytesMut::new();
        let (mut frames, mut most_ahead, mut at) = (Vec::new(), 0, 0);
        while at < input.len() {
            decoder.reserve_for_read(&mut buf, 8 * 1024);
            most_ahead = most_ahead.max(decoder.reserved_ahead());
            let mut target = decoder.read_buffer(&mut buf);
            let n = chunk.min(input.len() - at).min(target.remaining_mut());
            let room = target.chunk_mut();
            let n = n.min(room.len());
            room[..n].copy_from_slice(&input[at..at + n]);
            // SAFETY: the first `n` bytes of the chunk were just written.
            unsafe { target.advance_mut(n) };
            at += n;
            while let Some(frame) = decoder.decode(&mut buf).expect("valid") {
                frames.push(frame);
            }
        }
        (frames, most_ahead, buf)
    }

    #[test]
    fn a_large_body_is_read_into_an_exact_buffer_of_its_own() {
        const LARGE: usize = 64 * 1024 + 40;
        let mut input = frame_bytes(1, &[1; 100]).to_vec();
        input.extend_from_slice(&frame_bytes(2, &[2; LARGE]));
        input.extend_from_slice(&frame_bytes(3, b"after"));
        for chunk in [1000, 16 * 1024, 64 * 1024] {
            let pool = own_pool();
            let decoder = FrameDecoder::default().with_buffer_pool(pool);
            let (frames, most_ahead, buf) = read_through_with(decoder, &input, chunk);
            assert_eq!(frames.len(), 3, "chunk {chunk}");
            assert!(most_ahead <= BODY_STEP, "chunk {chunk}: {most_ahead} ahead");
            assert_eq!(&frames[2].body[..], b"after");
            drop(buf);
            let mut frames = frames;
            let large = frames.remove(1);
            assert!(large.body.iter().all(|&b| b == 2));
            // The body's buffer goes back to the pool when it is dropped:
            // the pool then holds exactly its capacity.
            drop(large);
            assert_eq!(pool.idle_bytes(), LARGE, "chunk {chunk}: exact size");
        }
    }

    #[test]
    fn a_large_body_is_read_into_a_recycled_buffer_and_never_past_its_end() {
        const LARGE: usize = 60 * 1024;
        const SPARE: usize = super::super::buffer_pool::MAX_SPARE;
        let pool = own_pool();
        // A recycled buffer with room to spare.
        pool.give(Vec::with_capacity(LARGE + SPARE));
        let mut input = frame_bytes(1, &[1; LARGE]).to_vec();
        input.extend_from_slice(&frame_bytes(2, b"next"));
        let decoder = FrameDecoder::default().with_buffer_pool(pool);
        let (frames, most_ahead, _) = read_through_with(decoder, &input, 80 * 1024);
        assert_eq!(pool.idle_bytes(), 0, "taken from the pool");
        assert!(most_ahead <= LARGE + SPARE);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].body.len(), LARGE);
        assert!(frames[0].body.iter().all(|&b| b == 1));
        assert_eq!(&frames[1].body[..], b"next");
        drop(frames);
        assert_eq!(pool.idle_bytes(), LARGE + SPARE, "given back");
    }

    #[test]
    fn a_claimed_body_takes_no_recycled_buffer_larger_than_a_step() {
        // 200 KiB claimed, 10 bytes sent: the step rule allocates 72 KiB
        // ahead at most, and a recycled buffer of the whole body (which the
        // pool has) is not taken.
        const CLAIMED: usize = 200 * 1024;
        let pool = own_pool();
        pool.give(Vec::with_capacity(CLAIMED));
        let input = frame_bytes(1, &vec![4; CLAIMED]);
        let mut decoder = FrameDecoder::default().with_buffer_pool(pool);
        let mut buf = BytesMut::new();
        decoder.reserve_for_read(&mut buf, 8 * 1024);
        buf.extend_from_slice(&input[..HEADER_LEN + 10]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        decoder.reserve_for_read(&mut buf, 8 * 1024);
        assert!(
            decoder.reserved_ahead() <= BODY_STEP,
            "{}",
            decoder.reserved_ahead()
        );
        assert_eq!(pool.idle_bytes(), CLAIMED, "not taken");
    }

    #[test]
    fn a_large_body_grows_only_as_its_bytes_arrive() {
        const LARGE: usize = 1 << 20;
        let input = frame_bytes(1, &vec![9; LARGE]);
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&input[..HEADER_LEN + 10]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        decoder.reserve_for_read(&mut buf, 8 * 1024);
        assert!(decoder.in_body());
        assert!(decoder.reserved_ahead() <= BODY_STEP);
        // Whatever the pace, never more ahead than what arrived (or one
        // step), never past the body's end.
        let (frames, most_ahead, _) = read_through(&input, 4096);
        assert_eq!(frames.len(), 1);
        assert!(most_ahead <= LARGE / 2 + BODY_STEP, "{most_ahead} ahead");
        assert_eq!(
            allocation_of(frames.into_iter().next().expect("one").body),
            LARGE
        );
    }

    #[test]
    fn a_huge_claim_allocates_one_step_at_most() {
        let mut buf = BytesMut::new();
        request_header(1, DEFAULT_MAX_FRAME_SIZE).encode_into(&mut buf);
        let mut decoder = FrameDecoder::default();
        decoder.reserve_for_read(&mut buf, 8 * 1024);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        decoder.reserve_for_read(&mut buf, 8 * 1024);
        assert!(decoder.reserved_ahead() <= BODY_STEP);
        assert!(decoder.read_buffer(&mut buf).remaining_mut() > 0);
    }

    #[test]
    fn bytes_read_into_the_read_buffer_still_reach_a_large_body() {
        // A caller that reads into `src` while a large body has a buffer
        // of its own still gets the frame.
        let input = frame_bytes(1, &[5; 40_000]);
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&input[..HEADER_LEN + 100]);
        decoder.reserve_for_read(&mut buf, 1024);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&input[HEADER_LEN + 100..]);
        let frame = decoder.decode(&mut buf).expect("valid").expect("whole");
        assert_eq!(frame.body.len(), 40_000);
        assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_garbage_never_panics() {
        // A cheap deterministic generator; no input may panic the decoder.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2_000 {
            let mut buf = BytesMut::new();
            let len = (state % 64) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf.extend_from_slice(&[(state & 0xFF) as u8]);
            }
            if state % 2 == 0 && buf.len() >= 3 {
                buf[0] = 0xCA;
                buf[1] = 0x11;
                buf[2] = 1;
            }
            let mut decoder = FrameDecoder::new(1024);
            while let Ok(Some(_)) = decoder.decode(&mut buf) {}
        }
    }
}
