//! `courier.Health`: the serving status of a server and of each of its
//! services, set by the owner through a [`HealthReporter`] and turned to
//! `NOT_SERVING` everywhere once the server starts shutting down.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use super::generated::health::health::{CheckError, Health, HealthClient, HealthServer};
pub use super::generated::health::{NoSuchService, ServingStatus};
pub use super::health_probe::HealthCheckProbe;
use crate::context::CallContext;
use crate::error::RpcError;

/// Sets what `courier.Health` answers: the whole server, or one service,
/// serving or not. Cheap to clone; every clone acts on the same server.
/// Get it from [`ServerHandle::health`](crate::server::ServerHandle::health).
///
/// Everything starts `SERVING`. A check of a service answers `NOT_SERVING`
/// when the service, or the whole server, is marked down, or the server is
/// shutting down.
#[derive(Clone)]
pub struct HealthReporter {
    state: Arc<HealthState>,
}

struct HealthState {
    /// The whole server is marked serving.
    server: AtomicBool,
    /// The server is shutting down: nothing is serving any more.
    draining: AtomicBool,
    /// Each service served, marked serving or not (fixed when the server
    /// starts, so no lock).
    services: HashMap<&'static str, AtomicBool>,
}

impl std::fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut services: Vec<_> = self.state.services.keys().collect();
        services.sort_unstable();
        f.debug_struct("HealthReporter")
            .field("server", &self.status("").ok())
            .field("draining", &self.state.draining.load(Ordering::Acquire))
            .field("services", &services)
            .finish()
    }
}

impl HealthReporter {
    /// A reporter for a server serving `services` (wire names), all serving.
    pub(crate) fn new(services: impl IntoIterator<Item = &'static str>) -> HealthReporter {
        HealthReporter {
            state: Arc::new(HealthState {
                server: AtomicBool::new(true),
                draining: AtomicBool::new(false),
                services: services
                    .into_iter()
                    .map(|name| (name, AtomicBool::new(true)))
                    .collect(),
            }),
        }
    }

    /// Marks `service` (a wire name; `""` for the whole server) serving or
    /// not. Fails with [`NoSuchService`] if the server does not serve it.
    pub fn set_serving(&self, service: &str, serving: bool) -> Result<(), NoSuchService> {
        let flag = if service.is_empty() {
            &self.state.server
        } else {
            self.state
                .services
                .get(service)
                .ok_or_else(|| NoSuchService {
                    service: service.to_owned(),
                })?
        };
        flag.store(serving, Ordering::Release);
        Ok(())
    }

    /// What a check of `service` (`""`: the whole server) answers now.
    pub fn status(&self, service: &str) -> Result<ServingStatus, NoSuchService> {
        let own = if service.is_empty() {
            true
        } else {
            self.state
                .services
                .get(service)
                .ok_or_else(|| NoSuchService {
                    service: service.to_owned(),
                })?
                .load(Ordering::Acquire)
        };
        let serving = own
            && self.state.server.load(Ordering::Acquire)
            && !self.state.draining.load(Ordering::Acquire);
        Ok(if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        })
    }

    /// The server started shutting down: every check answers `NOT_SERVING`
    /// from now on (until the server answers status 9 to every request).
    pub(crate) fn start_draining(&self) {
        self.state.draining.store(true, Ordering::Release);
    }
}

/// The `courier.Health` implementation a server serves when
/// [`enable_health`](crate::server::ServerBuilder::enable_health) is on.
#[derive(Debug, Clone)]
pub struct HealthService {
    reporter: HealthReporter,
}

impl HealthService {
    /// Answers what `reporter` says.
    pub fn new(reporter: HealthReporter) -> HealthService {
        HealthService { reporter }
    }
}

impl Health for HealthService {
    async fn check(
        &self,
        _ctx: CallContext,
        service: String,
    ) -> Result<ServingStatus, RpcError<CheckError>> {
        self.reporter
            .status(&service)
            .map_err(|missing| RpcError::Declared(CheckError::NoSuchService(missing)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_and_the_drain_set_the_status() {
        let reporter = HealthReporter::new(["a.A", "b.B"]);
        assert_eq!(reporter.status(""), Ok(ServingStatus::Serving));
        assert_eq!(reporter.status("a.A"), Ok(ServingStatus::Serving));
        reporter.set_serving("a.A", false).expect("served");
        assert_eq!(reporter.status("a.A"), Ok(ServingStatus::NotServing));
        assert_eq!(reporter.status("b.B"), Ok(ServingStatus::Serving));
        reporter.set_serving("", false).expect("the server");
        assert_eq!(reporter.status("b.B"), Ok(ServingStatus::NotServing));
        reporter.set_serving("", true).expect("the server");
        reporter.set_serving("a.A", true).expect("served");
        reporter.start_draining();
        assert_eq!(reporter.status(""), Ok(ServingStatus::NotServing));
        assert_eq!(reporter.status("a.A"), Ok(ServingStatus::NotServing));
    }

    #[test]
    fn services_not_served_are_errors() {
        let reporter = HealthReporter::new(["a.A"]);
        let missing = reporter.status("c.C").expect_err("not served");
        assert_eq!(missing.service, "c.C");
        assert!(reporter.set_serving("c.C", false).is_err());
    }
}
