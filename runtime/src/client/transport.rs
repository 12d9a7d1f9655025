//! [`Transport`]: where a channel's calls go, one endpoint or a balanced
//! set of them, behind the one [`Route`] seam.

use std::sync::Arc;

use bytes::Bytes;
use tokio::runtime::Handle;

use super::balanced::{Balanced, InstanceState};
use super::command::RawResponse;
use super::endpoint::Endpoint;
use super::pool::StreamHandle;
use super::route::{CallHead, Route};
use crate::error::TransportError;

/// Where a channel's calls go.
#[derive(Clone)]
pub(crate) enum Transport {
    /// One server.
    Endpoint(Arc<Endpoint>),
    /// Every instance of a service, kept current from a registry.
    Balanced(Arc<Balanced>),
}

impl Transport {
    /// The runtime the channel was created on.
    pub fn runtime(&self) -> &Handle {
        match self {
            Transport::Endpoint(endpoint) => endpoint.runtime(),
            Transport::Balanced(balanced) => balanced.runtime(),
        }
    }

    /// The server's address, or the balanced service's name: names the
    /// peer in spans.
    pub fn peer(&self) -> &str {
        match self {
            Transport::Endpoint(endpoint) => endpoint.target(),
            Transport::Balanced(balanced) => balanced.service(),
        }
    }

    /// The instances of a balanced channel (none for one endpoint).
    pub fn instances(&self) -> Vec<InstanceState> {
        match self {
            Transport::Endpoint(_) => Vec::new(),
            Transport::Balanced(balanced) => balanced.instances(),
        }
    }

    /// Calls waiting for a response.
    pub fn pending_len(&self) -> usize {
        match self {
            Transport::Endpoint(endpoint) => endpoint.pending_len(),
            Transport::Balanced(balanced) => balanced.pending_len(),
        }
    }

    /// Frames and bytes the connections hold unwritten.
    pub fn unsent(&self) -> (usize, usize) {
        match self {
            Transport::Endpoint(endpoint) => endpoint.unsent(),
            Transport::Balanced(balanced) => balanced.unsent(),
        }
    }
}

impl Route for Transport {
    #[inline]
    fn next_id(&self) -> u64 {
        match self {
            Transport::Endpoint(endpoint) => endpoint.next_id(),
            Transport::Balanced(balanced) => balanced.next_id(),
        }
    }

    fn max_frame_size(&self) -> u32 {
        match self {
            Transport::Endpoint(endpoint) => endpoint.max_frame_size(),
            Transport::Balanced(balanced) => balanced.max_frame_size(),
        }
    }

    async fn round_trip(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> Result<Option<RawResponse>, TransportError> {
        match self {
            Transport::Endpoint(endpoint) => endpoint.round_trip(call, id, frame).await,
            Transport::Balanced(balanced) => balanced.round_trip(call, id, frame).await,
        }
    }

    async fn send_oneway(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> Result<Option<()>, TransportError> {
        match self {
            Transport::Endpoint(endpoint) => endpoint.send_oneway(call, id, frame).await,
            Transport::Balanced(balanced) => balanced.send_oneway(call, id, frame).await,
        }
    }

    async fn open_stream(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> Result<Option<StreamHandle>, TransportError> {
        match self {
            Transport::Endpoint(endpoint) => endpoint.open_stream(call, id, frame).await,
            Transport::Balanced(balanced) => balanced.open_stream(call, id, frame).await,
        }
    }
}
