//! Building a whole frame, header and body, in one buffer.

use bytes::{Bytes, BytesMut};

use super::buffer_pool::{BufferPool, LARGE_BUFFERS, POOLED_MIN};
use super::header::{BODY_LEN_OFFSET, FrameHeader, HEADER_LEN, MessageKind};

/// A frame whose body is larger than the limit, or than a `u32` can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame body of {len} bytes exceeds the limit of {max} bytes")]
pub struct BodyTooLarge {
    /// The body's length.
    pub len: usize,
    /// The limit.
    pub max: u32,
}

/// Writes the header first, lets the caller append the body, then patches
/// the body length in: one allocation per frame. A frame of 32 KiB or more
/// is built in a buffer recycled through the runtime's pool of large
/// buffers, and goes back to it when the frame has been written (see
/// `buffer_pool.rs`).
#[derive(Debug)]
pub struct FrameBuilder {
    buf: BytesMut,
    /// Where a large frame's buffer comes from and goes back to.
    pool: &'static BufferPool,
}

impl FrameBuilder {
    /// Starts a frame; `header.body_len` is ignored. `body_hint` is the
    /// expected body length (room is reserved for it).
    pub fn new(header: FrameHeader, body_hint: usize) -> FrameBuilder {
        FrameBuilder::new_in(header, body_hint, &LARGE_BUFFERS)
    }

    /// [`new`](Self::new), a large frame's buffer from `pool`.
    fn new_in(header: FrameHeader, body_hint: usize, pool: &'static BufferPool) -> FrameBuilder {
        let capacity = HEADER_LEN.saturating_add(body_hint);
        let mut buf = if capacity >= POOLED_MIN {
            // `bytes` has no `From<Vec<u8>>` for `BytesMut`: through a
            // `Bytes` of its own (unique, so no copy) it is one.
            Bytes::from(pool.take_or_allocate(capacity))
                .try_into_mut()
                .unwrap_or_else(|_| BytesMut::with_capacity(capacity))
        } else {
            BytesMut::with_capacity(capacity)
        };
        FrameHeader {
            body_len: 0,
            ..header
        }
        .encode_into(&mut buf);
        FrameBuilder { buf, pool }
    }

    /// The buffer to append the body to (it already holds the header).
    pub fn body_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The body length so far.
    pub fn body_len(&self) -> usize {
        self.buf.len() - HEADER_LEN
    }

    /// Drops the body written so far, keeping the header.
    pub fn clear_body(&mut self) {
        self.buf.truncate(HEADER_LEN);
    }

    /// Finishes the frame, refusing a body longer than `max_body` bytes.
    pub fn finish(mut self, max_body: u32) -> Result<Bytes, BodyTooLarge> {
        let len = self.body_len();
        let body_len = u32::try_from(len)
            .ok()
            .filter(|len| *len <= max_body)
            .ok_or(BodyTooLarge { len, max: max_body })?;
        self.buf[BODY_LEN_OFFSET..HEADER_LEN].copy_from_slice(&body_len.to_be_bytes());
        if self.buf.capacity() >= POOLED_MIN {
            // A `BytesMut` made from a `Vec` (or grown by one) is one
            // again without a copy.
            return Ok(self.pool.recycling_bytes(Vec::from(self.buf)));
        }
        Ok(self.buf.freeze())
    }
}

/// A frame with an empty body (cancel, ping, pong).
pub fn empty_frame(kind: MessageKind, serializer: u8, request_id: u64) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN);
    FrameHeader {
        serializer,
        kind,
        status: 0,
        request_id,
        body_len: 0,
    }
    .encode_into(&mut buf);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Frame, FrameDecoder};

    fn header(request_id: u64) -> FrameHeader {
        FrameHeader {
            serializer: 1,
            kind: MessageKind::Response,
            status: 0,
            request_id,
            body_len: 0,
        }
    }

    #[test]
    fn a_large_frame_is_built_in_a_recycled_buffer_that_comes_back() {
        const BODY: usize = 64 * 1024;
        let pool: &'static BufferPool = Box::leak(Box::new(BufferPool::new()));
        let mut builder = FrameBuilder::new_in(header(1), BODY, pool);
        builder.body_mut().extend_from_slice(&[1; BODY]);
        let first = builder.finish(u32::MAX).expect("fits");
        let address = first.as_ptr();
        assert_eq!(first.len(), HEADER_LEN + BODY);
        drop(first);
        assert_eq!(pool.idle_bytes(), HEADER_LEN + BODY, "given back whole");
        // The next frame of that size is built in the same buffer, and
        // holds its own bytes.
        let mut builder = FrameBuilder::new_in(header(2), BODY, pool);
        builder.body_mut().extend_from_slice(&[2; BODY]);
        let second = builder.finish(u32::MAX).expect("fits");
        assert_eq!(second.as_ptr(), address);
        assert_eq!(
            &second[14..18],
            &u32::try_from(BODY).expect("small").to_be_bytes()
        );
        assert!(second[HEADER_LEN..].iter().all(|&b| b == 2));
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn a_large_frame_longer_than_its_hint_grows_and_is_still_recycled() {
        let pool: &'static BufferPool = Box::leak(Box::new(BufferPool::new()));
        let mut builder = FrameBuilder::new_in(header(1), 40 * 1024, pool);
        builder.body_mut().extend_from_slice(&[3; 100 * 1024]);
        let frame = builder.finish(u32::MAX).expect("fits");
        assert_eq!(frame.len(), HEADER_LEN + 100 * 1024);
        assert!(frame[HEADER_LEN..].iter().all(|&b| b == 3));
        drop(frame);
        assert!(pool.idle_bytes() >= HEADER_LEN + 100 * 1024);
    }

    #[test]
    fn builder_patches_the_length_and_decodes_back() {
        let header = FrameHeader {
            serializer: 2,
            kind: MessageKind::Response,
            status: 3,
            request_id: 42,
            body_len: 999,
        };
        let mut builder = FrameBuilder::new(header, 16);
        builder.body_mut().extend_from_slice(b"unknown method");
        let frame = builder.finish(1024).expect("small");
        assert_eq!(&frame[14..18], &[0, 0, 0, 14]);
        let mut buf = BytesMut::from(&frame[..]);
        let decoded = FrameDecoder::default()
            .decode(&mut buf)
            .expect("valid")
            .expect("whole");
        assert_eq!(
            decoded,
            Frame {
                header: FrameHeader {
                    body_len: 14,
                    ..header
                },
                body: Bytes::from_static(b"unknown method"),
            }
        );
    }

    #[test]
    fn builder_refuses_bodies_over_the_limit() {
        let header = FrameHeader {
            serializer: 1,
            kind: MessageKind::Request,
            status: 0,
            request_id: 1,
            body_len: 0,
        };
        let mut builder = FrameBuilder::new(header, 0);
        builder.body_mut().extend_from_slice(&[0; 10]);
        assert_eq!(builder.finish(9), Err(BodyTooLarge { len: 10, max: 9 }));
    }

    #[test]
    fn empty_frames_have_no_body() {
        let frame = empty_frame(MessageKind::Cancel, 0, 7);
        assert_eq!(
            &frame[..],
            &[0xCA, 0x11, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0]
        );
    }
}
