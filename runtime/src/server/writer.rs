//! A connection's writer task: takes every queued response frame at once
//! and writes them with one vectored write; no flush timer, so one frame
//! alone goes out at once and many frames cost one syscall.

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use crate::protocol::write_queue::{MAX_IOVECS, WriteQueue, empty_slices};

/// Writes frames from `rx` until every sender is gone (then the write half
/// is dropped, which sends FIN) or the socket fails.
pub(crate) async fn write_frames(mut socket: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) {
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
    }
}
