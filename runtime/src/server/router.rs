//! The services of a server, looked up by wire name for each request.

use std::collections::HashMap;
use std::sync::Arc;

use super::call::ServiceHandler;

/// The services by wire name. Looked up on every request: foldhash, not
/// SipHash; by the name's bytes, as the request carries them (checked as
/// UTF-8 already: a `&str` of them would check them again, ~125
/// instructions a call, callgrind).
pub(crate) struct Router {
    services: foldhash::HashMap<&'static [u8], (&'static str, Arc<dyn ServiceHandler>)>,
}

impl Router {
    pub fn new(services: HashMap<&'static str, Arc<dyn ServiceHandler>>) -> Router {
        Router {
            services: services
                .into_iter()
                .map(|(name, service)| (name.as_bytes(), (name, service)))
                .collect(),
        }
    }

    /// The service whose wire name is `wire_name`, with its name as the
    /// server holds it.
    pub fn route(&self, wire_name: &[u8]) -> Option<(&'static str, &Arc<dyn ServiceHandler>)> {
        self.services
            .get(wire_name)
            .map(|(name, service)| (*name, service))
    }

    /// The wire names of the services.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.services.values().map(|(name, _)| *name)
    }
}
