//! Test support for `curator_interop.rs`: child processes that are killed on
//! drop and read with deadlines, temporary directories, a real ZooKeeper
//! server per test, and the Java Curator client compiled once per test run.
//!
//! Std only (the tests are blocking), so the `idl-examples` package needs no
//! test dependencies. The ZooKeeper part is the blocking twin of
//! `runtime/tests/support/zookeeper.rs`.
//!
//! Whatever is missing (ZooKeeper, Java, Curator) fails the test with a clear
//! message naming the script that installs it; nothing is skipped.

#![allow(dead_code)]

pub mod java;
pub mod process;
pub mod zookeeper;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under the system's temporary directory, deleted on drop.
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

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
