//! The services of a server, looked up by wire name for each request.

use std::collections::HashMap;
use std::sync::Arc;

use super::call::ServiceHandler;

/// The services by wire name. Looked up on every request: foldhash, not
/// SipHash.
pub(crate) struct Router {
    services: foldhash::HashMap<&'static str, Arc<dyn ServiceHandler>>,
}

impl Router {
    pub fn new(services: HashMap<&'static str, Arc<dyn ServiceHandler>>) -> Router {
        Router {
            services: services.into_iter().collect(),
        }
    }

    /// The service named `wire_name`, with its name as the server holds it.
    pub fn route(&self, wire_name: &str) -> Option<(&'static str, &Arc<dyn ServiceHandler>)> {
        self.services
            .get_key_value(wire_name)
            .map(|(&name, service)| (name, service))
    }

    /// The wire names of the services.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.services.keys().copied()
    }
}
