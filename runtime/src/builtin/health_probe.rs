//! [`HealthCheckProbe`]: the default health probe of a balanced channel,
//! which asks an ejected instance `courier.Health.check(service)`.

use super::generated::health::health::{self, CheckArgs};
use super::health::{CheckError, ServingStatus};
use crate::BoxFuture;
use crate::client::{HealthProbe, ProbeOutcome, ProbeTarget};
use crate::codegen::Reply;
use crate::error::{RpcError, StatusCode, TransportError};

/// Asks an ejected instance `courier.Health.check(service)`, the service
/// being the balanced service's wire name: `SERVING` readmits it,
/// `NOT_SERVING` or a failure keeps it out; an instance that does not
/// serve `courier.Health` (or not for this service), or refuses the check,
/// is probed with the next real call instead. The default
/// [`BalanceOptions::health_probe`](crate::client::BalanceOptions::health_probe).
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthCheckProbe;

impl HealthProbe for HealthCheckProbe {
    fn check<'a>(&'a self, target: &'a ProbeTarget<'_>) -> BoxFuture<'a, ProbeOutcome> {
        Box::pin(async move {
            let args = CheckArgs {
                service: target.service().to_owned(),
            };
            let result: Result<Reply<ServingStatus>, RpcError<CheckError>> =
                target.unary(&health::CHECK, &args).await;
            classify(&result.map(|reply| reply.value))
        })
    }
}

/// Sorts a health check's outcome.
fn classify(result: &Result<ServingStatus, RpcError<CheckError>>) -> ProbeOutcome {
    match result {
        Ok(ServingStatus::Serving) => ProbeOutcome::Serving,
        Ok(_) => ProbeOutcome::NotServing,
        Err(RpcError::Declared(CheckError::NoSuchService(_))) => ProbeOutcome::NoHealthService,
        Err(RpcError::Status(status))
            if matches!(
                status.code(),
                StatusCode::UnknownService
                    | StatusCode::UnknownMethod
                    | StatusCode::BadRequest
                    | StatusCode::UnsupportedSerializer
                    | StatusCode::Unauthenticated
                    | StatusCode::PermissionDenied
            ) =>
        {
            ProbeOutcome::NoHealthService
        }
        // The check or its answer does not go through the serializer here:
        // every check would fail the same way.
        Err(RpcError::Transport(TransportError::Encode { .. } | TransportError::Decode { .. })) => {
            ProbeOutcome::NoHealthService
        }
        Err(_) => ProbeOutcome::NotServing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;

    #[test]
    fn health_probe_outcomes_are_classified() {
        let serving = Ok(ServingStatus::Serving);
        assert_eq!(classify(&serving), ProbeOutcome::Serving);
        let down = Ok(ServingStatus::NotServing);
        assert_eq!(classify(&down), ProbeOutcome::NotServing);
        let stopping = Err(Status::new(StatusCode::ShuttingDown, "").into());
        assert_eq!(classify(&stopping), ProbeOutcome::NotServing);
        let lost = Err(TransportError::ConnectionLost("reset".into()).into());
        assert_eq!(classify(&lost), ProbeOutcome::NotServing);
        let unknown = Err(Status::new(StatusCode::UnknownService, "").into());
        assert_eq!(classify(&unknown), ProbeOutcome::NoHealthService);
        let not_served = Err(RpcError::Declared(CheckError::NoSuchService(
            crate::builtin::health::NoSuchService::default(),
        )));
        assert_eq!(classify(&not_served), ProbeOutcome::NoHealthService);
        for refused in [
            StatusCode::BadRequest,
            StatusCode::UnsupportedSerializer,
            StatusCode::Unauthenticated,
            StatusCode::PermissionDenied,
        ] {
            let refused = Err(Status::new(refused, "").into());
            assert_eq!(classify(&refused), ProbeOutcome::NoHealthService);
        }
        let undecodable = Err(TransportError::Decode {
            what: "CheckReply",
            reason: "bad".into(),
        }
        .into());
        assert_eq!(classify(&undecodable), ProbeOutcome::NoHealthService);
        let timed_out = Err(Status::deadline_exceeded("").into());
        assert_eq!(classify(&timed_out), ProbeOutcome::NotServing);
    }
}
