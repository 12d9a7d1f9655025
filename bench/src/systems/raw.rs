//! The practical ceiling: a raw tokio TCP echo with Courier's 18-byte
//! header (PROTOCOL.md) and nothing else: no serializer, no request body,
//! no dispatch, no per-call task or table. One task per connection on each
//! side reads whatever arrived, and writes whatever is queued with one
//! (vectored) write.
//!
//! The server flips the message type of each complete request to
//! "response" in place and writes the same bytes back (no copy). The
//! client keeps `concurrency` frames in flight: each answer is timed and
//! immediately replaced by the next request of its slot.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

use crate::alloc::AllocCounters;
use crate::child;
use crate::load::{self, ClientReport, Phase, Timing};

/// The header length (PROTOCOL.md).
pub const HEADER_LEN: usize = 18;
/// The magic of the header.
pub const MAGIC: u16 = 0xCA11;
/// The largest body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How much room a read gets at least.
pub const READ_CHUNK: usize = 64 * 1024;
/// Stop reading while this much is waiting to be written.
const MAX_QUEUED: usize = 8 * 1024 * 1024;
/// Slices per vectored write.
const MAX_IOVECS: usize = 64;

/// Appends one frame: header (request, serializer 0, `id`) and body.
pub fn put_frame(buf: &mut BytesMut, kind: u8, id: u64, body: &[u8]) {
    buf.reserve(HEADER_LEN + body.len());
    buf.put_u16(MAGIC);
    buf.put_u8(1);
    buf.put_u8(0);
    buf.put_u8(kind);
    buf.put_u8(0);
    buf.put_u64(id);
    buf.put_u32(body.len() as u32);
    buf.put_slice(body);
}

/// The length of the complete frame at the start of `buf`, if it is there.
pub fn complete_frame(buf: &[u8]) -> io::Result<Option<usize>> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if u16::from_be_bytes([buf[0], buf[1]]) != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad magic"));
    }
    let body = u32::from_be_bytes([buf[14], buf[15], buf[16], buf[17]]) as usize;
    if body > MAX_BODY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    Ok((buf.len() >= HEADER_LEN + body).then_some(HEADER_LEN + body))
}

/// The request id of the frame at the start of `buf` (its header is there).
pub fn request_id(buf: &[u8]) -> u64 {
    let mut id = [0; 8];
    id.copy_from_slice(&buf[6..14]);
    u64::from_be_bytes(id)
}

/// Reads what is there into `buf`; `Ok(false)` at the end of the stream.
fn read_some(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<bool> {
    loop {
        buf.reserve(READ_CHUNK);
        let room = buf.capacity() - buf.len();
        match stream.try_read_buf(buf) {
            Ok(0) => return Ok(false),
            // A read that filled the room may have left more behind.
            Ok(n) if n == room => continue,
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

/// Starts the echo server on 127.0.0.1 (an ephemeral port).
pub async fn serve() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("raw: cannot bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("raw: {e}"))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = echo_connection(stream).await;
            });
        }
    });
    Ok(addr)
}

async fn echo_connection(stream: TcpStream) -> io::Result<()> {
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output: VecDeque<Bytes> = VecDeque::new();
    let mut queued = 0;
    loop {
        let interest = if output.is_empty() {
            Interest::READABLE
        } else if queued > MAX_QUEUED {
            Interest::WRITABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        let ready = stream.ready(interest).await?;
        if ready.is_readable() && queued <= MAX_QUEUED {
            if !read_some(&stream, &mut input)? {
                return Ok(());
            }
            // Turn every complete request into its response in place.
            let mut complete = 0;
            while let Some(len) = complete_frame(&input[complete..])? {
                input[complete + 4] = 2;
                complete += len;
            }
            if complete > 0 {
                queued += complete;
                output.push_back(input.split_to(complete).freeze());
            }
        }
        if !output.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            for (slot, chunk) in slices.iter_mut().zip(output.iter()) {
                *slot = IoSlice::new(chunk);
                n += 1;
            }
            match stream.try_write_vectored(&slices[..n]) {
                Ok(mut written) => {
                    queued -= written;
                    while written > 0 {
                        let Some(front) = output.front_mut() else {
                            break;
                        };
                        if written >= front.len() {
                            written -= front.len();
                            output.pop_front();
                        } else {
                            front.advance(written);
                            written = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Keeps `concurrency` requests in flight on `stream` for `window`, then
/// waits for the last answers.
async fn phase(
    stream: &TcpStream,
    payload: &Bytes,
    concurrency: usize,
    window: std::time::Duration,
) -> io::Result<Phase> {
    let concurrency = concurrency.max(1);
    let start = Instant::now();
    let end = start + window;
    let mut sent_at = vec![start; concurrency];
    let mut output = BytesMut::with_capacity(concurrency * (HEADER_LEN + payload.len()));
    for slot in 0..concurrency {
        put_frame(&mut output, 1, slot as u64, payload);
    }
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut outstanding = concurrency;
    let mut phase = Phase::new();
    while outstanding > 0 {
        let interest = if output.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        let ready = stream.ready(interest).await?;
        if ready.is_readable() {
            if !read_some(stream, &mut input)? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            while let Some(len) = complete_frame(&input)? {
                let slot = request_id(&input) as usize;
                if slot >= concurrency || len - HEADER_LEN != payload.len() {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "bad echo"));
                }
                input.advance(len);
                let now = Instant::now();
                phase.total += 1;
                if now <= end {
                    phase.in_window += 1;
                    load::record(&mut phase.hist, now - sent_at[slot]);
                }
                if now < end {
                    put_frame(&mut output, 1, slot as u64, payload);
                    sent_at[slot] = now;
                } else {
                    outstanding -= 1;
                }
            }
        }
        if !output.is_empty() {
            match stream.try_write(&output) {
                Ok(written) => output.advance(written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(phase)
}

/// The client's whole run (see [`load::session`]).
pub async fn session(
    addr: SocketAddr,
    payload: Bytes,
    concurrency: usize,
    timing: Timing,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("raw: cannot connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("raw: {e}"))?;
    let failed = |e: io::Error| format!("raw: {e}");
    phase(&stream, &payload, concurrency, timing.warmup)
        .await
        .map_err(failed)?;
    child::say("READY");
    tokio::task::spawn_blocking(load::wait_for_go)
        .await
        .map_err(|e| e.to_string())??;
    let before = AllocCounters::now();
    let measured = phase(&stream, &payload, concurrency, timing.window)
        .await
        .map_err(failed)?;
    let alloc = AllocCounters::now().since(before);
    load::report(&ClientReport::new(&measured, timing.window, alloc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = BytesMut::new();
        put_frame(&mut buf, 1, 7, b"hello");
        assert_eq!(complete_frame(&buf[..10]).unwrap(), None);
        assert_eq!(complete_frame(&buf).unwrap(), Some(HEADER_LEN + 5));
        assert_eq!(request_id(&buf), 7);
        buf[0] = 0;
        assert!(complete_frame(&buf).is_err());
    }
}
