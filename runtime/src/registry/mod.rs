//! Service discovery: the [`Registry`] trait, the in-process
//! [`MemoryRegistry`], [`ServiceInstance`], and registry URLs
//! ([`RegistryUrl`], DISCOVERY.md).
//!
//! ZooKeeper URLs parse, but connecting to ZooKeeper is not supported yet:
//! [`connect_registry`] says so with [`RegistryError::Unsupported`].

mod instance;
mod memory;
mod url;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use instance::{DEFAULT_WEIGHT, PROTOCOL, ServiceInstance, random_instance_id};
pub use memory::MemoryRegistry;
pub use url::{
    DEFAULT_BASE_PATH, DigestCredentials, RegistryUrl, RegistryUrlError, ZooKeeperHost,
    ZooKeeperUrl,
};

/// The future a [`Registry`] method returns.
pub type RegistryFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, RegistryError>> + Send + 'a>>;

/// A registry failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// This kind of registry is not supported by this version.
    #[error("{what} is not supported yet")]
    Unsupported {
        /// What is missing.
        what: &'static str,
    },
    /// The registry's backend failed (connection, session, data).
    #[error("registry failure: {0}")]
    Backend(String),
}

/// Where providers register their instances and consumers find them.
/// Object safe: use it as `&dyn Registry` or `Arc<dyn Registry>`.
pub trait Registry: Send + Sync {
    /// Adds an instance (or replaces the one with the same service and id).
    fn register(&self, instance: ServiceInstance) -> RegistryFuture<'_, ()>;

    /// Removes an instance; removing one that is not there is not an error.
    fn deregister<'a>(&'a self, service: &'a str, id: &'a str) -> RegistryFuture<'a, ()>;

    /// The instances of `service` (its wire name), in no particular order.
    fn list<'a>(&'a self, service: &'a str) -> RegistryFuture<'a, Vec<ServiceInstance>>;
}

/// Opens the registry a URL names: `memory` is the process-wide
/// [`MemoryRegistry::global`]; ZooKeeper is not supported yet.
pub async fn connect_registry(url: &RegistryUrl) -> Result<Arc<dyn Registry>, RegistryError> {
    match url {
        RegistryUrl::Memory => Ok(Arc::new(MemoryRegistry::global())),
        RegistryUrl::ZooKeeper(_) => Err(RegistryError::Unsupported {
            what: "the ZooKeeper registry",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_urls_share_the_global_registry() {
        let registry = connect_registry(&RegistryUrl::Memory)
            .await
            .expect("memory");
        let instance = ServiceInstance::from_host("registry.test.Url", "127.0.0.1", 1);
        registry.register(instance.clone()).await.expect("ok");
        let again = connect_registry(&"memory".parse().expect("valid"))
            .await
            .expect("memory");
        assert_eq!(
            again.list("registry.test.Url").await.expect("ok"),
            std::slice::from_ref(&instance)
        );
        again
            .deregister("registry.test.Url", &instance.id)
            .await
            .expect("ok");
    }

    #[tokio::test]
    async fn zookeeper_is_not_supported_yet() {
        let url: RegistryUrl = "zk://127.0.0.1:2181".parse().expect("valid");
        let error = connect_registry(&url).await.err().expect("unsupported");
        assert_eq!(
            error,
            RegistryError::Unsupported {
                what: "the ZooKeeper registry"
            }
        );
        assert_eq!(
            error.to_string(),
            "the ZooKeeper registry is not supported yet"
        );
    }
}
