//! The connections of a channel: each is one task that owns its socket and
//! its pending map (one owner per connection); calls are spread over them
//! in turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::backoff::Backoff;
use super::command::Command;
use super::connection::ConnectionSettings;
use super::dial::Dialer;
use super::task::run_connection;
use crate::error::TransportError;

/// The caller's end of one connection task.
#[derive(Debug)]
pub(crate) struct Link {
    commands: mpsc::UnboundedSender<Command>,
    /// The size of the connection's pending map (a test hook).
    pending_len: Arc<AtomicUsize>,
}

impl Link {
    /// Hands a command to the connection task.
    pub fn send(&self, command: Command) -> Result<(), TransportError> {
        self.commands.send(command).map_err(|_| task_gone())
    }

    /// Tells the connection task to forget `id` (best effort: if the task
    /// is gone, so is the pending entry).
    pub fn cancel(&self, id: u64) {
        let _ = self.commands.send(Command::Cancel { id });
    }
}

/// Every connection of a channel.
#[derive(Debug)]
pub(crate) struct Pool {
    links: Box<[Link]>,
    next: AtomicUsize,
}

impl Pool {
    /// Opens `count` connections (at least one) and starts their tasks;
    /// fails if any cannot be opened.
    pub async fn connect(
        dialer: Dialer,
        count: usize,
        settings: ConnectionSettings,
        backoff: Backoff,
    ) -> Result<Pool, TransportError> {
        let count = count.max(1);
        let mut streams = Vec::with_capacity(count);
        for _ in 0..count {
            streams.push(dialer.dial().await?);
        }
        let dialer = Arc::new(dialer);
        let links = streams
            .into_iter()
            .map(|stream| {
                let (commands, receiver) = mpsc::unbounded_channel();
                let pending_len = Arc::new(AtomicUsize::new(0));
                tokio::spawn(run_connection(
                    receiver,
                    stream,
                    Arc::clone(&dialer),
                    settings,
                    backoff,
                    Arc::clone(&pending_len),
                ));
                Link {
                    commands,
                    pending_len,
                }
            })
            .collect();
        Ok(Pool {
            links,
            next: AtomicUsize::new(0),
        })
    }

    /// The connection for the next call (round robin).
    pub fn pick(&self) -> &Link {
        let index = match self.links.len() {
            1 => 0,
            n => self.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        &self.links[index]
    }

    /// Calls waiting for a response on all connections.
    pub fn pending_len(&self) -> usize {
        self.links
            .iter()
            .map(|link| link.pending_len.load(Ordering::Acquire))
            .sum()
    }

    /// The number of connections.
    pub fn len(&self) -> usize {
        self.links.len()
    }
}

/// The error of a call whose connection task is gone.
pub(crate) fn task_gone() -> TransportError {
    TransportError::ConnectionLost("the channel's connection task stopped".to_owned())
}
