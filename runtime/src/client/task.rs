//! The task behind a channel: runs the connection, and after a loss
//! reconnects when the next call comes.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::command::Command;
use super::connection::{Connection, ConnectionEnd};
use super::dial::Dialer;

/// Runs until every `Channel` is dropped.
pub(crate) async fn run_channel(
    mut commands: mpsc::UnboundedReceiver<Command>,
    first: TcpStream,
    dialer: Dialer,
    max_frame_size: u32,
    pending_len: Arc<AtomicUsize>,
) {
    let mut stream = Some(first);
    // A command taken while disconnected, for the next connection.
    let mut carried: Option<Command> = None;
    loop {
        if let Some(stream) = stream.take() {
            let mut connection = Connection::new(
                stream,
                &mut commands,
                Arc::clone(&pending_len),
                max_frame_size,
            );
            if let Some(command) = carried.take() {
                connection.accept(command);
            }
            match connection.await {
                ConnectionEnd::ChannelDropped => return,
                ConnectionEnd::Lost(e) => {
                    tracing::debug!(target = %dialer.target, error = %e, "connection lost; reconnecting on the next call");
                }
            }
            continue;
        }
        // Disconnected: wait for a call, then reconnect.
        let Some(command) = commands.recv().await else {
            return;
        };
        if matches!(command, Command::Cancel { .. }) {
            continue;
        }
        match dialer.dial().await {
            Ok(connected) => {
                stream = Some(connected);
                carried = Some(command);
            }
            Err(e) => {
                tracing::debug!(target = %dialer.target, error = %e, "reconnect failed");
                command.fail(e.clone());
                // Everything queued meanwhile fails too; later calls retry.
                while let Ok(queued) = commands.try_recv() {
                    queued.fail(e.clone());
                }
            }
        }
    }
}
