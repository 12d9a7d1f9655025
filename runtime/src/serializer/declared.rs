//! [`DeclaredError`]: how the declared error of a method (its `throws`)
//! travels in a status-1 response.

use bytes::{Bytes, BytesMut};

use super::{Serializer, WireMessage};
use crate::error::{NoDeclaredError, TransportError};

/// The declared error of a method (its `throws`), as the runtime carries it
/// in a status-1 response.
pub trait DeclaredError: std::fmt::Debug + Send + Sync + 'static + Sized {
    /// Appends the error message to `buf`.
    fn encode_declared(
        &self,
        serializer: Serializer,
        buf: &mut BytesMut,
    ) -> Result<(), TransportError>;
    /// Decodes the error message of a status-1 response.
    fn decode_declared(serializer: Serializer, payload: Bytes) -> Result<Self, TransportError>;
}

impl<M: WireMessage + std::fmt::Debug> DeclaredError for M {
    fn encode_declared(
        &self,
        serializer: Serializer,
        buf: &mut BytesMut,
    ) -> Result<(), TransportError> {
        serializer.encode(self, buf)
    }

    fn decode_declared(serializer: Serializer, payload: Bytes) -> Result<Self, TransportError> {
        serializer.decode(payload)
    }
}

impl DeclaredError for NoDeclaredError {
    fn encode_declared(&self, _: Serializer, _: &mut BytesMut) -> Result<(), TransportError> {
        match *self {}
    }

    fn decode_declared(_: Serializer, _: Bytes) -> Result<Self, TransportError> {
        Err(TransportError::Protocol(
            "a declared error (status 1) came back for a method that declares none".into(),
        ))
    }
}
