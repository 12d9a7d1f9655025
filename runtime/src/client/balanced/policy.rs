//! What an attempt's outcome says: about the instance ([`Verdict`], which
//! feeds ejection) and about the call ([`Retry`]: may it fail over?); and
//! the instances one call has [`Tried`].

use crate::client::command::RawResponse;
use crate::client::pool::StreamHandle;
use crate::error::{StatusCode, TransportError};

/// The most attempts a call can make, whatever the options say.
pub(super) const ATTEMPTS_CAP: usize = 8;

/// What an attempt's outcome says about the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It answered: in rotation, failures reset.
    Healthy,
    /// It failed in a way that counts toward ejection.
    Failed,
    /// Says nothing about the instance (overload, deadline, codec).
    Neutral,
}

/// Whether a failed attempt may be retried on another instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Never: the call may have run.
    Never,
    /// Only if the method is `@idempotent`: the call may have run.
    IfIdempotent,
    /// Always: the call did not run, or may safely run again elsewhere
    /// (status 7, 9 or 19, or it was never sent).
    Always,
}

/// An attempt's outcome, sorted.
pub(super) trait Outcome {
    /// What it says about the instance, and whether the call may fail
    /// over; `Retry::Never` for a success.
    fn classify(&self) -> (Verdict, Retry);
}

impl Outcome for Result<Option<RawResponse>, TransportError> {
    fn classify(&self) -> (Verdict, Retry) {
        match self {
            Ok(Some(response)) => classify_status(StatusCode::from_u8(response.status)),
            Ok(None) => classify_status(StatusCode::DeadlineExceeded),
            Err(error) => classify_error(error),
        }
    }
}

impl Outcome for Result<Option<()>, TransportError> {
    fn classify(&self) -> (Verdict, Retry) {
        match self {
            Ok(Some(())) => (Verdict::Healthy, Retry::Never),
            Ok(None) => classify_status(StatusCode::DeadlineExceeded),
            Err(error) => classify_error(error),
        }
    }
}

/// Only a stream's opening: its own outcome comes later, to its caller
/// (and is not recorded against the instance); failures to hand the
/// request over are retried as for any call, and a connection lost
/// afterwards ends the stream.
impl Outcome for Result<Option<StreamHandle>, TransportError> {
    fn classify(&self) -> (Verdict, Retry) {
        match self {
            Ok(Some(_)) => (Verdict::Healthy, Retry::Never),
            Ok(None) => classify_status(StatusCode::DeadlineExceeded),
            Err(error) => classify_error(error),
        }
    }
}

/// Sorts an attempt that failed before an answer.
fn classify_error(error: &TransportError) -> (Verdict, Retry) {
    match error {
        // A TLS failure happens before the server reads any request.
        TransportError::Connect { .. } | TransportError::Tls { .. } => {
            (Verdict::Failed, Retry::Always)
        }
        // No room in the send queue before the deadline: nothing was sent
        // (but no time is left). Like overload, it may be the client's own
        // burst, so it says nothing about the instance.
        TransportError::SendQueueFull { .. } => (Verdict::Neutral, Retry::Always),
        TransportError::ConnectionLost(_) | TransportError::HeartbeatTimeout { .. } => {
            (Verdict::Failed, Retry::IfIdempotent)
        }
        _ => (Verdict::Neutral, Retry::Never),
    }
}

/// Sorts an answer by its status (0 and 1: the instance served it).
fn classify_status(code: StatusCode) -> (Verdict, Retry) {
    match code {
        StatusCode::Overloaded => (Verdict::Neutral, Retry::Always),
        // Not executed (9), or transient (19): both "safe to retry
        // elsewhere" (PROTOCOL.md), and both say the instance can't serve
        // now.
        StatusCode::ShuttingDown | StatusCode::Unavailable => (Verdict::Failed, Retry::Always),
        StatusCode::Internal => (Verdict::Failed, Retry::Never),
        StatusCode::DeadlineExceeded => (Verdict::Neutral, Retry::Never),
        _ => (Verdict::Healthy, Retry::Never),
    }
}

/// The instances one call has tried, so a retry goes elsewhere.
#[derive(Default)]
pub(super) struct Tried {
    keys: [u64; ATTEMPTS_CAP],
    len: usize,
}

impl Tried {
    pub(super) fn contains(&self, key: u64) -> bool {
        self.keys[..self.len].contains(&key)
    }

    pub(super) fn push(&mut self, key: u64) {
        if self.len < ATTEMPTS_CAP {
            self.keys[self.len] = key;
            self.len += 1;
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn answer(code: StatusCode) -> Result<Option<RawResponse>, TransportError> {
        Ok(Some(RawResponse {
            status: code.as_u8(),
            body: Bytes::new(),
            metadata: crate::context::Metadata::new(),
        }))
    }

    #[test]
    fn outcomes_are_classified() {
        let lost: Result<Option<()>, TransportError> =
            Err(TransportError::ConnectionLost("reset".into()));
        assert_eq!(lost.classify(), (Verdict::Failed, Retry::IfIdempotent));
        let overloaded = answer(StatusCode::Overloaded);
        assert_eq!(overloaded.classify(), (Verdict::Neutral, Retry::Always));
        let stopping = answer(StatusCode::ShuttingDown);
        assert_eq!(stopping.classify(), (Verdict::Failed, Retry::Always));
        let unavailable = answer(StatusCode::Unavailable);
        assert_eq!(unavailable.classify(), (Verdict::Failed, Retry::Always));
        let stalled: Result<Option<()>, TransportError> = Err(TransportError::SendQueueFull {
            addr: "127.0.0.1:1".into(),
            waited: std::time::Duration::from_millis(50),
            queued_calls: 1024,
            queued_bytes: 1 << 20,
        });
        assert_eq!(stalled.classify(), (Verdict::Neutral, Retry::Always));
        let refused: Result<Option<RawResponse>, TransportError> = Err(TransportError::Connect {
            addr: "127.0.0.1:1".into(),
            source: std::sync::Arc::new(std::io::ErrorKind::ConnectionRefused.into()),
        });
        assert_eq!(refused.classify(), (Verdict::Failed, Retry::Always));
        let internal = answer(StatusCode::Internal);
        assert_eq!(internal.classify(), (Verdict::Failed, Retry::Never));
        let timed_out: Result<Option<RawResponse>, TransportError> = Ok(None);
        assert_eq!(timed_out.classify(), (Verdict::Neutral, Retry::Never));
        for served in [
            StatusCode::Ok,
            StatusCode::DeclaredError,
            StatusCode::UnknownMethod,
        ] {
            assert_eq!(answer(served).classify(), (Verdict::Healthy, Retry::Never));
        }
        assert_eq!(
            Ok::<_, TransportError>(Some(())).classify(),
            (Verdict::Healthy, Retry::Never)
        );
    }
}
