//! The task behind one connection of a channel: runs the connection, and
//! after a loss reconnects when the next call comes, spacing failed
//! attempts with exponential backoff and jitter.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use super::answers::Answers;
use super::backoff::{Backoff, Reconnect};
use super::command::Command;
use super::command_queue::CommandReceiver;
use super::connection::{Connection, ConnectionEnd, ConnectionSettings};
use super::dial::Dialer;
use super::outbox::Unsent;
use super::stream::ClientStream;
use super::stream_items::StreamBytes;
use crate::error::TransportError;

/// What a connection task shares with its callers' end (`pool.rs`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Shared {
    /// The answer slots its callers wait on.
    pub answers: Arc<Answers>,
    /// The size of its pending map (a test hook).
    pub pending_len: Arc<AtomicUsize>,
    /// What it holds unwritten (a test hook).
    pub unsent: Arc<Unsent>,
    /// The bytes of stream items it holds that no call has taken yet.
    pub stream_bytes: Arc<StreamBytes>,
}

/// Runs until every `Channel` is dropped.
pub(crate) async fn run_connection(
    mut commands: CommandReceiver,
    first: ClientStream,
    dialer: Arc<Dialer>,
    settings: ConnectionSettings,
    backoff: Backoff,
    shared: Shared,
) {
    // However the task ends (a bug may panic), no caller waits on forever.
    let answers = Arc::clone(&shared.answers);
    let _fail_waiting = FailWaiting(Arc::clone(&answers));
    let mut stream = Some(first);
    let mut reconnect = Reconnect::new(backoff);
    // A command taken while disconnected, for the next connection.
    let mut carried: Option<Command> = None;
    loop {
        if let Some(stream) = stream.take() {
            let mut connection =
                Connection::new(stream, &dialer.target, &mut commands, &shared, settings);
            if let Some(command) = carried.take() {
                connection.accept(command);
            }
            match (&mut connection).await {
                ConnectionEnd::ChannelDropped => return,
                ConnectionEnd::Lost(e) => {
                    tracing::debug!(target = %dialer.target, error = %e, "connection lost; reconnecting on the next call");
                }
            }
            // A connection the server refused (its connection limit, or
            // TLS against plaintext) counts as a failed attempt, so the
            // next one waits out the backoff instead of redialing per call.
            if connection.served() {
                reconnect.succeeded();
            } else {
                reconnect.failed();
            }
            continue;
        }
        // Disconnected: wait for a command that needs the connection.
        let Some(command) = commands.recv().await else {
            return;
        };
        if command.is_abandoned(&answers) {
            continue;
        }
        // After failed attempts, wait out the backoff; commands that come
        // meanwhile queue up (bounded by the send queue's room, and by
        // their callers' timeouts).
        if let Some(at) = reconnect.next_attempt() {
            tokio::time::sleep_until(at).await;
            if command.is_abandoned(&answers) {
                // Its caller gave up while waiting: no attempt for nobody.
                continue;
            }
        }
        match dialer.dial().await {
            Ok(connected) => {
                // Whether it succeeded is known when it ends (see above).
                stream = Some(connected);
                carried = Some(command);
            }
            Err(e) => {
                reconnect.failed();
                tracing::debug!(target = %dialer.target, error = %e, "reconnect failed");
                fail_queued(command, &mut commands, &answers, &e);
            }
        }
    }
}

/// Answers the calls still waiting when the task ends.
struct FailWaiting(Arc<Answers>);

impl Drop for FailWaiting {
    fn drop(&mut self) {
        self.0.fail_waiting(&super::pool::task_gone());
    }
}

/// Fails `command` and the commands queued behind it with the error of the
/// attempt they waited for. Only those: they are counted before any caller
/// hears of the failure, so a call made after that (a caller retrying at
/// once) stays queued and gets an attempt of its own, after the backoff,
/// instead of this stale error.
fn fail_queued(
    command: Command,
    commands: &mut CommandReceiver,
    answers: &Answers,
    error: &TransportError,
) {
    let queued = commands.len();
    command.fail(answers, error.clone());
    for _ in 0..queued {
        // The queue is FIFO, so these are the ones counted.
        let Some(command) = commands.try_recv() else {
            break;
        };
        command.fail(answers, error.clone());
    }
}
