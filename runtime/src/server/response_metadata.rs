//! Response metadata (message type 10): what a handler sets on its
//! [`CallContext`](crate::CallContext) is checked against the server's
//! metadata limits, kept in the call's slot (charged to the connection),
//! and sent just before the call's answer, in the same batch.

use std::sync::{Arc, Weak};

use super::connection_shared::ConnShared;
use super::respond::Responder;
use super::slots::SlotId;
use crate::context::{Metadata, ResponseMetadataError};

/// Where a call's handler puts the metadata it sends back: the call's slot
/// on its connection. Held by the handler's context (a weak refcount per
/// call: a context kept after its call does not keep the connection).
#[derive(Clone)]
pub(crate) struct ResponseMetadataSlot {
    conn: Weak<ConnShared>,
    slot: SlotId,
}

impl std::fmt::Debug for ResponseMetadataSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseMetadataSlot")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl ResponseMetadataSlot {
    pub fn new(conn: &Arc<ConnShared>, slot: SlotId) -> ResponseMetadataSlot {
        ResponseMetadataSlot {
            conn: Arc::downgrade(conn),
            slot,
        }
    }

    /// Keeps `metadata` to send before the call's answer (replacing what
    /// the call set before), if it is within the server's metadata limits
    /// and the call has not been answered or stopped.
    pub fn set(&self, metadata: Metadata) -> Result<(), ResponseMetadataError> {
        // The connection is gone: so is the call.
        let Some(conn) = self.conn.upgrade() else {
            return Err(ResponseMetadataError::AlreadyAnswered);
        };
        let config = &conn.env.config;
        let limits = config.metadata_limits;
        let max_entries = limits.max_entries.min(usize::from(u16::MAX));
        if metadata.len() > max_entries {
            return Err(ResponseMetadataError::TooManyEntries {
                count: metadata.len(),
                max: max_entries,
            });
        }
        let bytes: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > limits.max_bytes {
            return Err(ResponseMetadataError::TooLarge {
                bytes,
                max: limits.max_bytes,
            });
        }
        if let Some((key, value)) = metadata
            .iter()
            .find(|(k, v)| k.len() > usize::from(u16::MAX) || v.len() > usize::from(u16::MAX))
        {
            return Err(ResponseMetadataError::TooLarge {
                bytes: key.len().max(value.len()),
                max: usize::from(u16::MAX),
            });
        }
        // The frame must fit the frame size limit, or it could not be sent.
        let frame_body = 2 + 4 * metadata.len() + bytes;
        let max_body = usize::try_from(config.max_frame_size).unwrap_or(usize::MAX);
        if frame_body > max_body {
            return Err(ResponseMetadataError::TooLarge {
                bytes: frame_body,
                max: max_body,
            });
        }
        let held = metadata.heap_bytes();
        conn.charge_forced(held);
        match conn.slots.set_response_metadata(self.slot, metadata) {
            Ok(replaced) => {
                conn.release(replaced.as_ref().map_or(0, Metadata::heap_bytes));
                Ok(())
            }
            Err(_) => {
                conn.release(held);
                Err(ResponseMetadataError::AlreadyAnswered)
            }
        }
    }
}

/// Queues the response metadata frame of the call in `slot`, if its
/// handler set metadata (the call has just claimed its answer, which goes
/// right after it). On a connection no call of which set any, one load.
pub(crate) fn send_response_metadata(conn: &ConnShared, slot: SlotId, responder: &Responder) {
    let Some(metadata) = conn.slots.take_response_metadata(slot) else {
        return;
    };
    conn.release(metadata.heap_bytes());
    if let Some(frame) = responder.response_metadata(&metadata) {
        conn.send_control(frame);
    }
}
