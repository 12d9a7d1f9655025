//! The optional cache file ([`ZooKeeperOptions::cache_file`]): the last
//! known instances of every watched service, so that a consumer started
//! while ZooKeeper is unreachable starts from them.
//!
//! The file is JSON: `{"format":"courier-registry-cache/1","services":
//! {"SERVICE":[INSTANCE...]}}`, each instance in the Curator node format. It
//! is replaced atomically (written beside it, then renamed) whenever a
//! watched list changes.
//!
//! [`ZooKeeperOptions::cache_file`]: super::ZooKeeperOptions::cache_file

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value};

use super::curator;
use crate::registry::{RegistryError, ServiceInstance};

/// The `format` tag of the file.
const FORMAT: &str = "courier-registry-cache/1";

/// The cache file and what it holds.
#[derive(Debug)]
pub(crate) struct CacheFile {
    path: PathBuf,
    services: Mutex<BTreeMap<String, Vec<ServiceInstance>>>,
}

impl CacheFile {
    /// Opens the cache at `path`: what it holds, or nothing if it is missing
    /// or unreadable (a warning, never an error: a cache is optional).
    pub(crate) fn load(path: PathBuf) -> CacheFile {
        let services = match std::fs::read(&path) {
            Ok(bytes) => parse(&bytes).unwrap_or_else(|reason| {
                tracing::warn!(path = %path.display(), %reason, "ignoring an unreadable registry cache file");
                BTreeMap::new()
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read the registry cache file");
                BTreeMap::new()
            }
        };
        CacheFile {
            path,
            services: Mutex::new(services),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<ServiceInstance>>> {
        self.services.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached instances of `service`, if the file had or has them.
    pub(crate) fn get(&self, service: &str) -> Option<Vec<ServiceInstance>> {
        self.lock().get(service).cloned()
    }

    /// Records `instances` as the list of `service` and rewrites the file if
    /// that changed it (on a blocking thread; the lock is never held across
    /// an await).
    pub(crate) async fn store(self: &Arc<Self>, service: &str, instances: Vec<ServiceInstance>) {
        let cache = Arc::clone(self);
        let service = service.to_owned();
        let written =
            tokio::task::spawn_blocking(move || cache.store_now(service, instances)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot update the registry cache file"),
            Err(error) => tracing::warn!(%error, "the registry cache writer failed"),
        }
    }

    fn store_now(
        &self,
        service: String,
        instances: Vec<ServiceInstance>,
    ) -> Result<(), RegistryError> {
        let mut services = self.lock();
        if services.get(&service) == Some(&instances) {
            return Ok(());
        }
        services.insert(service, instances);
        let bytes = render(&services);
        write_atomically(&self.path, &bytes).map_err(|error| RegistryError::CacheFile {
            path: self.path.clone(),
            reason: error.to_string(),
        })
    }
}

fn render(services: &BTreeMap<String, Vec<ServiceInstance>>) -> Vec<u8> {
    let services: Map<String, Value> = services
        .iter()
        .map(|(service, instances)| {
            let instances = instances
                .iter()
                .filter_map(|instance| serde_json::from_slice(&curator::encode(instance, 0)).ok())
                .collect();
            (service.clone(), Value::Array(instances))
        })
        .collect();
    let file = serde_json::json!({ "format": FORMAT, "services": services });
    serde_json::to_vec_pretty(&file).unwrap_or_default()
}

fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Vec<ServiceInstance>>, String> {
    let file: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(format!("not a `{FORMAT}` file"));
    }
    let Some(Value::Object(services)) = file.get("services") else {
        return Err("no `services` object".to_owned());
    };
    let mut parsed = BTreeMap::new();
    for (service, instances) in services {
        let Value::Array(instances) = instances else {
            continue;
        };
        let instances = instances
            .iter()
            .filter_map(|instance| {
                let id = instance.get("id")?.as_str()?;
                let bytes = serde_json::to_vec(instance).ok()?;
                curator::decode(service, id, &bytes).ok()
            })
            .collect();
        parsed.insert(service.clone(), instances);
    }
    Ok(parsed)
}

/// Writes `bytes` to a fresh file beside `path`, then renames it over
/// `path`, so a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "registry-cache".to_owned());
    let temporary = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    if let Err(error) = std::fs::write(&temporary, bytes) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_and_loads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cache.json");
        let cache = Arc::new(CacheFile::load(path.clone()));
        assert_eq!(cache.get("s"), None);
        let mut instance = ServiceInstance::from_host("s", "10.0.0.1", 80);
        instance.metadata.insert("zone".into(), "a".into());
        cache.store("s", vec![instance.clone()]).await;
        cache.store("empty", Vec::new()).await;

        let again = CacheFile::load(path.clone());
        assert_eq!(again.get("s"), Some(vec![instance]));
        assert_eq!(again.get("empty"), Some(Vec::new()));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, ["cache.json"], "no temporary file is left");
    }

    #[test]
    fn a_bad_file_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        for contents in ["", "{", "[]", r#"{"format":"other"}"#] {
            let path = dir.path().join("bad.json");
            std::fs::write(&path, contents).expect("write");
            assert_eq!(CacheFile::load(path).get("s"), None, "{contents}");
        }
        let path = dir.path().join("mixed.json");
        std::fs::write(
            &path,
            r#"{"format":"courier-registry-cache/1","services":{"s":[{"id":"a","address":"h","port":1},{"id":"b"},7]}}"#,
        )
        .expect("write");
        let instances = CacheFile::load(path).get("s").expect("listed");
        assert_eq!(instances.len(), 1, "the bad entries are skipped");
    }
}
