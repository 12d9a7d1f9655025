//! `courier.Reflection`: the services a server serves and the `.rpc`
//! sources idlc embedded in each one's generated adapter.

pub use super::generated::reflection::reflection::{
    FileContainingError, Reflection, ReflectionClient, ReflectionServer,
};
pub use super::generated::reflection::{IdlFile, ServiceInfo, UnknownService};
use crate::codegen::ServiceIdl;
use crate::context::CallContext;
use crate::error::RpcError;
use crate::server::ServiceHandler;

/// The `courier.Reflection` implementation a server serves when
/// [`enable_reflection`](crate::server::ServerBuilder::enable_reflection)
/// is on: a fixed list of services (taken when the server starts), sorted
/// by wire name.
#[derive(Debug, Clone)]
pub struct ReflectionService {
    services: Box<[(&'static str, Option<&'static ServiceIdl>)]>,
}

impl ReflectionService {
    /// Describes `services` (wire names and embedded sources).
    pub fn new(
        services: impl IntoIterator<Item = (&'static str, Option<&'static ServiceIdl>)>,
    ) -> ReflectionService {
        let mut services: Vec<_> = services.into_iter().collect();
        services.sort_unstable_by_key(|(name, _)| *name);
        services.dedup_by_key(|(name, _)| *name);
        ReflectionService {
            services: services.into_boxed_slice(),
        }
    }

    /// The adapter that serves `handlers` and itself.
    pub(crate) fn serving<'a>(
        handlers: impl Iterator<Item = &'a dyn ServiceHandler>,
    ) -> ReflectionServer<ReflectionService> {
        // The adapter knows its own embedded source.
        let own = ReflectionServer::new(ReflectionService::new([]));
        let own = (own.wire_name(), own.idl());
        let services = handlers.map(|h| (h.wire_name(), h.idl())).chain([own]);
        ReflectionServer::new(ReflectionService::new(services))
    }

    fn find(&self, service: &str) -> Option<&'static ServiceIdl> {
        self.services
            .binary_search_by_key(&service, |(name, _)| name)
            .ok()
            .and_then(|index| self.services.get(index))
            .and_then(|(_, idl)| *idl)
    }
}

impl Reflection for ReflectionService {
    async fn list_services(&self, _ctx: CallContext) -> Result<Vec<ServiceInfo>, RpcError> {
        Ok(self
            .services
            .iter()
            .map(|(name, idl)| ServiceInfo {
                name: (*name).to_owned(),
                file: idl.map(|idl| idl.file.name.to_owned()).unwrap_or_default(),
            })
            .collect())
    }

    async fn file_containing(
        &self,
        _ctx: CallContext,
        service: String,
    ) -> Result<Vec<IdlFile>, RpcError<FileContainingError>> {
        match self.find(&service) {
            Some(idl) => Ok(idl
                .files()
                .map(|file| IdlFile {
                    name: file.name.to_owned(),
                    source: file.text.to_owned(),
                })
                .collect()),
            None => Err(RpcError::Declared(FileContainingError::UnknownService(
                UnknownService { service },
            ))),
        }
    }
}
