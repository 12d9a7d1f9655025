//! [`MemoryRegistry`]: the in-process registry (`memory`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::{Registry, RegistryFuture, ServiceInstance};

/// A registry in this process's memory; clones share it.
///
/// [`MemoryRegistry::new`] makes an independent one; [`MemoryRegistry::global`]
/// is the one `memory` URLs name, shared by the whole process.
#[derive(Debug, Clone, Default)]
pub struct MemoryRegistry {
    services: Arc<Mutex<HashMap<String, Vec<ServiceInstance>>>>,
}

impl MemoryRegistry {
    /// An empty registry of its own.
    pub fn new() -> MemoryRegistry {
        MemoryRegistry::default()
    }

    /// The process-wide registry that `memory` URLs name.
    pub fn global() -> MemoryRegistry {
        static GLOBAL: OnceLock<MemoryRegistry> = OnceLock::new();
        GLOBAL.get_or_init(MemoryRegistry::new).clone()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<ServiceInstance>>> {
        self.services.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register_now(&self, instance: ServiceInstance) {
        let mut services = self.lock();
        let instances = services.entry(instance.service.clone()).or_default();
        match instances.iter_mut().find(|known| known.id == instance.id) {
            Some(known) => *known = instance,
            None => instances.push(instance),
        }
    }

    fn deregister_now(&self, service: &str, id: &str) {
        let mut services = self.lock();
        if let Some(instances) = services.get_mut(service) {
            instances.retain(|instance| instance.id != id);
            if instances.is_empty() {
                services.remove(service);
            }
        }
    }

    fn list_now(&self, service: &str) -> Vec<ServiceInstance> {
        self.lock().get(service).cloned().unwrap_or_default()
    }
}

impl Registry for MemoryRegistry {
    fn register(&self, instance: ServiceInstance) -> RegistryFuture<'_, ()> {
        self.register_now(instance);
        Box::pin(std::future::ready(Ok(())))
    }

    fn deregister<'a>(&'a self, service: &'a str, id: &'a str) -> RegistryFuture<'a, ()> {
        self.deregister_now(service, id);
        Box::pin(std::future::ready(Ok(())))
    }

    fn list<'a>(&'a self, service: &'a str) -> RegistryFuture<'a, Vec<ServiceInstance>> {
        let instances = self.list_now(service);
        Box::pin(std::future::ready(Ok(instances)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn register_list_deregister() {
        let registry = MemoryRegistry::new();
        let a = ServiceInstance::from_host("s", "127.0.0.1", 1);
        let mut b = ServiceInstance::from_host("s", "127.0.0.1", 2);
        registry
            .register(a.clone())
            .await
            .expect("memory never fails");
        registry
            .register(b.clone())
            .await
            .expect("memory never fails");
        assert_eq!(
            registry.list("s").await.expect("ok"),
            [a.clone(), b.clone()]
        );
        assert!(registry.list("other").await.expect("ok").is_empty());

        b.weight = 5;
        registry.register(b.clone()).await.expect("ok");
        assert_eq!(
            registry.list("s").await.expect("ok"),
            [a.clone(), b.clone()],
            "same id replaces"
        );

        registry.deregister("s", &a.id).await.expect("ok");
        assert_eq!(registry.list("s").await.expect("ok"), [b.clone()]);
        registry
            .deregister("s", "missing")
            .await
            .expect("deregistering twice is fine");
        registry.deregister("s", &b.id).await.expect("ok");
        assert!(registry.list("s").await.expect("ok").is_empty());
    }

    #[tokio::test]
    async fn clones_and_the_global_registry_share_state() {
        let registry = MemoryRegistry::new();
        let clone = registry.clone();
        clone
            .register(ServiceInstance::from_host("shared", "h", 1))
            .await
            .expect("ok");
        assert_eq!(registry.list("shared").await.expect("ok").len(), 1);
        assert!(
            MemoryRegistry::new()
                .list("shared")
                .await
                .expect("ok")
                .is_empty()
        );

        let instance = ServiceInstance::from_host("memory.test.Global", "h", 1);
        MemoryRegistry::global()
            .register(instance.clone())
            .await
            .expect("ok");
        assert_eq!(
            MemoryRegistry::global()
                .list("memory.test.Global")
                .await
                .expect("ok"),
            std::slice::from_ref(&instance)
        );
        MemoryRegistry::global()
            .deregister("memory.test.Global", &instance.id)
            .await
            .expect("ok");
    }
}
