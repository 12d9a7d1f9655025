//! What a client connection runs over: plain TCP, or TLS over TCP. The
//! connection future polls it through two operations, so the TCP path keeps
//! its readiness-based vectored writes and reads untouched.

use std::io;
use std::task::{Context, Poll};

use bytes::BufMut;
use tokio::net::TcpStream;

use crate::protocol::write_queue::{WriteQueue, empty_slices};

/// A connected stream to the server.
#[derive(Debug)]
pub(crate) enum ClientStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP, after the handshake (boxed: the TLS state is large).
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::handshake::ClientStream>),
}

impl ClientStream {
    /// Writes queued frames until the queue is empty or the socket is full
    /// (then the waker is registered); `done` gets each fully written
    /// frame's token. Returns the number of writes that took bytes.
    pub fn write_queued<T>(
        &mut self,
        cx: &mut Context<'_>,
        queue: &mut WriteQueue<T>,
        mut done: impl FnMut(T),
    ) -> io::Result<usize> {
        let mut writes = 0;
        match self {
            ClientStream::Tcp(stream) => {
                while !queue.is_empty() {
                    match stream.poll_write_ready(cx) {
                        Poll::Pending => break,
                        Poll::Ready(result) => result?,
                    }
                    let written = match queue.only() {
                        Some(frame) => stream.try_write(frame),
                        None => {
                            let mut slices = empty_slices();
                            let used = queue.fill(&mut slices);
                            stream.try_write_vectored(&slices[..used])
                        }
                    };
                    match written {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(written) => {
                            queue.advance(written, &mut done);
                            writes += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            #[cfg(feature = "tls")]
            ClientStream::Tls(stream) => {
                use tokio::io::AsyncWrite;
                let mut stream = std::pin::Pin::new(&mut **stream);
                while !queue.is_empty() {
                    let mut slices = empty_slices();
                    let used = queue.fill(&mut slices);
                    match stream.as_mut().poll_write_vectored(cx, &slices[..used]) {
                        Poll::Pending => break,
                        Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                        Poll::Ready(Ok(written)) => {
                            queue.advance(written, &mut done);
                            writes += 1;
                        }
                        Poll::Ready(Err(e)) => return Err(e),
                    }
                }
                // Pushes out the records TLS still holds; when the socket
                // is full, the waker is registered for when it drains.
                if let Poll::Ready(Err(e)) = stream.poll_flush(cx) {
                    return Err(e);
                }
            }
        }
        Ok(writes)
    }

    /// Reads once into `buf` if bytes are ready: `Ready(Ok(0))` at the end
    /// of the stream.
    pub fn poll_read<B: BufMut>(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut B,
    ) -> Poll<io::Result<usize>> {
        match self {
            // Through `AsyncRead`: a read shorter than the room it had
            // shows the socket drained, and tokio clears its readiness
            // then, so the next poll registers the waker without a read
            // that would block (`try_read_buf` needs that read: a syscall
            // and ~300 instructions a call, callgrind).
            ClientStream::Tcp(stream) => {
                use std::future::Future;
                use tokio::io::AsyncReadExt;
                // `read_buf` keeps no state between polls: a fresh one per
                // poll is the same as polling one.
                std::pin::pin!(stream.read_buf(buf)).poll(cx)
            }
            #[cfg(feature = "tls")]
            ClientStream::Tls(stream) => {
                use std::future::Future;
                use tokio::io::AsyncReadExt;
                // `read_buf` keeps no state between polls: a fresh one per
                // poll is the same as polling one.
                std::pin::pin!(stream.read_buf(buf)).poll(cx)
            }
        }
    }
}
