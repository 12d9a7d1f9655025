//! A connection's writer task: takes every queued response frame at once
//! and writes them with one vectored write; no flush timer, so one frame
//! alone goes out at once and many frames cost one syscall.

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::protocol::write_queue::{MAX_IOVECS, WriteQueue, empty_slices};

/// Writes frames from `rx` until every sender is gone (then the write side
/// is shut down: FIN, after TLS's close_notify) or the socket fails.
///
/// `W` is a TCP `OwnedWriteHalf` (whose flush costs nothing) or the write
/// half of a TLS or other stream (whose flush pushes out what the TLS
/// layer buffered).
pub(crate) async fn write_frames<W>(mut socket: W, mut rx: mpsc::Receiver<Bytes>)
where
    W: AsyncWrite + Unpin,
{
    let mut batch = Vec::with_capacity(MAX_IOVECS);
    let mut queue = WriteQueue::<()>::default();
    while rx.recv_many(&mut batch, MAX_IOVECS).await > 0 {
        for frame in batch.drain(..) {
            queue.push(frame, ());
        }
        while !queue.is_empty() {
            let mut slices = empty_slices();
            let used = queue.fill(&mut slices);
            match socket.write_vectored(&slices[..used]).await {
                Ok(0) => {
                    tracing::debug!("connection stopped accepting bytes");
                    return;
                }
                Ok(written) => queue.advance(written, drop),
                Err(e) => {
                    tracing::debug!(error = %e, "write failed; writer stops");
                    return;
                }
            }
        }
        if let Err(e) = socket.flush().await {
            tracing::debug!(error = %e, "flush failed; writer stops");
            return;
        }
    }
    let _ = socket.shutdown().await;
}
