//! Built-in services a server can turn on: `courier.Reflection`
//! ([`ServerBuilder::enable_reflection`](crate::server::ServerBuilder::enable_reflection))
//! and `courier.Health`
//! ([`ServerBuilder::enable_health`](crate::server::ServerBuilder::enable_health)).
//!
//! Both are described in `.rpc` files (`runtime/idl/`) and compiled by idlc
//! like any user service; the generated code is checked in under
//! `generated/` (a test fails when it is stale), so users of `courier` never
//! run idlc for them. They are ordinary services: the request path does not
//! know them.

pub mod generated {
    //! The code idlc generated from `runtime/idl/*.rpc`, checked in.
    //! Refresh it with
    //! `cargo run -p idlc -- build runtime/idl/health.rpc runtime/idl/reflection.rpc -o runtime/src/builtin/generated`.

    // Kept exactly as idlc wrote them (rustfmt would reflow them). Each
    // holds its service's message module, named after the service too.
    #[rustfmt::skip]
    #[allow(clippy::module_inception)]
    pub mod health;
    #[rustfmt::skip]
    #[allow(clippy::module_inception)]
    pub mod reflection;
}
pub mod health;
mod health_probe;
pub mod reflection;

use std::sync::Arc;

use crate::server::ServiceHandler;
pub use health::{HealthReporter, HealthService};
pub use reflection::ReflectionService;

/// Which built-in services a server serves (all off by default).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Builtins {
    pub reflection: bool,
    pub health: bool,
}

impl Builtins {
    /// Adds the enabled built-ins to `services` (replacing a user service of
    /// the same wire name); returns the health reporter if health is on.
    pub(crate) fn install(
        self,
        services: &mut std::collections::HashMap<&'static str, Arc<dyn ServiceHandler>>,
    ) -> Option<HealthReporter> {
        let health = self.health.then(|| {
            let names =
                services
                    .keys()
                    .copied()
                    .chain([<health::HealthClient as crate::codegen::Stub>::WIRE_NAME])
                    .chain(self.reflection.then_some(
                        <reflection::ReflectionClient as crate::codegen::Stub>::WIRE_NAME,
                    ));
            let reporter = HealthReporter::new(names);
            let handler = health::HealthServer::new(HealthService::new(reporter.clone()));
            insert(services, Arc::new(handler));
            reporter
        });
        if self.reflection {
            let handler = ReflectionService::serving(services.values().map(|s| s.as_ref()));
            insert(services, Arc::new(handler));
        }
        health
    }
}

/// Serves a built-in under its wire name, replacing a user service there.
fn insert(
    services: &mut std::collections::HashMap<&'static str, Arc<dyn ServiceHandler>>,
    handler: Arc<dyn ServiceHandler>,
) {
    let name = handler.wire_name();
    if services.insert(name, handler).is_some() {
        tracing::warn!(
            service = name,
            "a service with a built-in's wire name is replaced by the built-in"
        );
    }
}
