//! [`MemoryRegistry`]: the in-process registry (`memory`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::sync::watch;

use super::{InstanceWatch, Registry, RegistryFuture, ServiceInstance};

/// A registry in this process's memory; clones share it.
///
/// [`MemoryRegistry::new`] makes an independent one; [`MemoryRegistry::global`]
/// is the one `memory` URLs name, shared by the whole process.
#[derive(Debug, Clone, Default)]
pub struct MemoryRegistry {
    services: Arc<Mutex<HashMap<String, Service>>>,
}

/// One service: its instances and, once someone watches it, the channel
/// that tells its watchers (one per service, so a change to one service
/// wakes only that service's watchers).
#[derive(Debug, Default)]
struct Service {
    instances: Vec<ServiceInstance>,
    watchers: Option<watch::Sender<Vec<ServiceInstance>>>,
}

impl Service {
    /// Tells the watchers, if any, the current list.
    fn notify(&self) {
        if let Some(watchers) = &self.watchers {
            watchers.send_replace(self.instances.clone());
        }
    }

    /// Nothing registered and nobody watching: the entry can go.
    fn is_unused(&self) -> bool {
        self.instances.is_empty()
            && self
                .watchers
                .as_ref()
                .is_none_or(|watchers| watchers.receiver_count() == 0)
    }
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

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Service>> {
        self.services.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register_now(&self, instance: ServiceInstance) {
        let mut services = self.lock();
        let service = services.entry(instance.service.clone()).or_default();
        match service
            .instances
            .iter_mut()
            .find(|known| known.id == instance.id)
        {
            Some(known) if *known == instance => return,
            Some(known) => *known = instance,
            None => service.instances.push(instance),
        }
        service.notify();
    }

    fn deregister_now(&self, name: &str, id: &str) {
        let mut services = self.lock();
        let Some(service) = services.get_mut(name) else {
            return;
        };
        let before = service.instances.len();
        service.instances.retain(|instance| instance.id != id);
        if service.instances.len() != before {
            service.notify();
        }
        if service.is_unused() {
            services.remove(name);
        }
    }

    fn list_now(&self, service: &str) -> Vec<ServiceInstance> {
        self.lock()
            .get(service)
            .map(|service| service.instances.clone())
            .unwrap_or_default()
    }

    fn watch_now(&self, name: &str) -> InstanceWatch {
        let mut services = self.lock();
        let service = services.entry(name.to_owned()).or_default();
        let instances = &service.instances;
        service
            .watchers
            .get_or_insert_with(|| watch::channel(instances.clone()).0)
            .subscribe()
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

    fn watch<'a>(&'a self, service: &'a str) -> RegistryFuture<'a, InstanceWatch> {
        let watch = self.watch_now(service);
        Box::pin(std::future::ready(Ok(watch)))
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

    #[tokio::test]
    async fn a_change_fires_the_watch_of_its_service_only() {
        let registry = MemoryRegistry::new();
        let existing = ServiceInstance::from_host("a", "h", 1);
        registry.register(existing.clone()).await.expect("ok");

        let mut a = registry.watch("a").await.expect("ok");
        let mut b = registry.watch("b").await.expect("ok");
        assert_eq!(
            *a.borrow_and_update(),
            std::slice::from_ref(&existing),
            "starts current"
        );
        assert!(b.borrow_and_update().is_empty());

        let added = ServiceInstance::from_host("a", "h", 2);
        registry.register(added.clone()).await.expect("ok");
        assert!(a.has_changed().expect("open"));
        assert_eq!(*a.borrow_and_update(), [existing.clone(), added.clone()]);
        assert!(!b.has_changed().expect("open"), "b is not told about a");

        registry.register(added.clone()).await.expect("ok");
        assert!(!a.has_changed().expect("open"), "no change, no wake-up");
        registry.deregister("a", "missing").await.expect("ok");
        assert!(!a.has_changed().expect("open"));

        registry.deregister("a", &existing.id).await.expect("ok");
        assert_eq!(*a.borrow_and_update(), std::slice::from_ref(&added));
        assert!(!b.has_changed().expect("open"));

        let on_b = ServiceInstance::from_host("b", "h", 3);
        registry.register(on_b.clone()).await.expect("ok");
        assert_eq!(*b.borrow_and_update(), [on_b]);
        assert!(!a.has_changed().expect("open"));

        let mut second = registry.watch("a").await.expect("ok");
        registry.deregister("a", &added.id).await.expect("ok");
        assert!(a.borrow_and_update().is_empty());
        assert!(second.borrow_and_update().is_empty());
    }

    #[tokio::test]
    async fn unwatched_empty_services_are_forgotten() {
        let registry = MemoryRegistry::new();
        let instance = ServiceInstance::from_host("s", "h", 1);
        let watch = registry.watch("s").await.expect("ok");
        registry.register(instance.clone()).await.expect("ok");
        drop(watch);
        registry.deregister("s", &instance.id).await.expect("ok");
        assert!(registry.lock().is_empty());
    }
}
