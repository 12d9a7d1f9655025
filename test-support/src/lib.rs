//! Test support shared by Courier's test suites (std only, so any test
//! crate can use it, blocking or async).
//!
//! - [`zookeeper::ZooKeeperServer`]: a real ZooKeeper server per test.
//! - [`fault_proxy::FaultProxy`]: a TCP proxy that injects faults (delay,
//!   throttle, blackhole, reset, cut) between a client and a server.
//! - [`TempDir`]: a directory deleted on drop.

pub mod fault_proxy;
pub mod zookeeper;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under the system's temporary directory, deleted on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory named `PREFIX-PID-N`.
    pub fn new(prefix: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
