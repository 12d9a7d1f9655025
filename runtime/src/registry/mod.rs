//! Service discovery: the [`Registry`] trait, the in-process
//! [`MemoryRegistry`], the [`ZooKeeperRegistry`] (Curator-compatible layout),
//! [`ServiceInstance`], and registry URLs ([`RegistryUrl`], DISCOVERY.md).
//!
//! [`connect_registry`] opens the registry a URL names.

mod instance;
mod memory;
mod url;
mod zookeeper;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

pub use instance::{DEFAULT_WEIGHT, PROTOCOL, ServiceInstance, random_instance_id};
pub use memory::MemoryRegistry;
pub use url::{
    DEFAULT_BASE_PATH, DigestCredentials, RegistryUrl, RegistryUrlError, ZooKeeperHost,
    ZooKeeperUrl,
};
pub use zookeeper::{ZooKeeperOptions, ZooKeeperRegistry};

/// The future a [`Registry`] method returns.
pub type RegistryFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, RegistryError>> + Send + 'a>>;

/// What [`Registry::watch`] gives: the current instances of one service,
/// replaced whenever they change (`borrow()` reads the list, `changed()`
/// waits for the next one).
pub type InstanceWatch = tokio::sync::watch::Receiver<Vec<ServiceInstance>>;

/// A registry failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// The registry cannot be reached and has nothing cached to answer
    /// with.
    #[error("the registry at {ensemble} is unreachable: {reason}")]
    Unavailable {
        /// Where the registry is (a ZooKeeper connect string).
        ensemble: String,
        /// Why it cannot be reached.
        reason: String,
    },
    /// The digest password is wrong: the node's ACL names the same user
    /// with another password.
    #[error(
        "wrong password for ZooKeeper digest user `{user}`: the ACL of {path} grants that user with a different password"
    )]
    WrongPassword {
        /// The digest user.
        user: String,
        /// The node whose ACL says so.
        path: String,
    },
    /// ZooKeeper refused an operation: the node's ACL does not allow it for
    /// this session's credentials (or for a session without any).
    #[error("ZooKeeper denied {operation} of {path}: not authorized ({credentials})")]
    NotAuthorized {
        /// What was refused (`create`, `delete`, ...).
        operation: &'static str,
        /// The node.
        path: String,
        /// `digest user NAME`, or `no credentials`; never a password.
        credentials: String,
    },
    /// ZooKeeper failed the session's authentication.
    #[error("ZooKeeper rejected the session's authentication")]
    AuthFailed,
    /// A ZooKeeper operation failed for another reason.
    #[error("ZooKeeper {operation} of {path} failed: {reason}")]
    ZooKeeper {
        /// The operation (`create`, `get_data`, ...).
        operation: &'static str,
        /// The node.
        path: String,
        /// ZooKeeper's answer.
        reason: String,
    },
    /// A service name, instance id or base path that cannot be used as a
    /// ZooKeeper path.
    #[error("invalid {what} `{name}`: {reason}")]
    InvalidName {
        /// `service name`, `instance id` or `base path`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The registry was closed ([`Registry::close`]).
    #[error("the registry is closed")]
    Closed,
    /// The registry needs a tokio runtime and was used outside one.
    #[error("the ZooKeeper registry must be started inside a tokio runtime")]
    NoRuntime,
    /// The cache file could not be read or written.
    #[error("registry cache file {}: {reason}", path.display())]
    CacheFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
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

    /// The instances of `service`, kept current: the receiver holds the list
    /// as it is when the future completes, and is sent a new list whenever
    /// an instance of that service (and only that service) appears, changes
    /// or goes away.
    ///
    /// The default implementation, for registries that cannot notify, lists
    /// once and never updates.
    fn watch<'a>(&'a self, service: &'a str) -> RegistryFuture<'a, InstanceWatch> {
        Box::pin(async move {
            let instances = self.list(service).await?;
            let (_, receiver) = tokio::sync::watch::channel(instances);
            Ok(receiver)
        })
    }

    /// Gracefully leaves the registry: deregisters every instance this
    /// handle registered and releases its connection. Later calls fail with
    /// [`RegistryError::Closed`] where the registry has a connection to
    /// lose. The default does nothing.
    fn close(&self) -> RegistryFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Opens the registry a URL names: `memory` is the process-wide
/// [`MemoryRegistry::global`]; `zk://` connects a [`ZooKeeperRegistry`] (see
/// [`ZooKeeperRegistry::connect`]).
pub async fn connect_registry(url: &RegistryUrl) -> Result<Arc<dyn Registry>, RegistryError> {
    match url {
        RegistryUrl::Memory => Ok(Arc::new(MemoryRegistry::global())),
        RegistryUrl::ZooKeeper(zk) => {
            let registry = ZooKeeperRegistry::connect(ZooKeeperOptions::from_url(zk)).await?;
            Ok(Arc::new(registry))
        }
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

    #[test]
    fn errors_never_show_a_password() {
        let error = RegistryError::NotAuthorized {
            operation: "delete",
            path: "/courier/s/1".into(),
            credentials: "digest user app".into(),
        };
        assert_eq!(
            error.to_string(),
            "ZooKeeper denied delete of /courier/s/1: not authorized (digest user app)"
        );
    }
}
