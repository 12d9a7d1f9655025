//! What a connection and its calls need from their server, and nothing
//! else: the tunables, the interceptors, the admission of calls, the
//! memory pool, and the register of the bytes each connection holds. The
//! reader alone also sees the router, the serializers and the shutdown
//! phase (`shared.rs`); a call reaches only this.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use super::admission::Admission;
use super::config::ServerConfig;
use super::interceptor::ServerInterceptor;
use super::memory::{ConnMemory, MemoryPool};

/// The environment shared by every connection of a server and its calls.
pub(crate) struct ServerEnv {
    pub config: ServerConfig,
    /// Run on every call before its handler; empty costs nothing.
    pub interceptors: Box<[Arc<dyn ServerInterceptor>]>,
    /// Calls in flight, admitted fairly across connections.
    pub admission: Admission,
    /// The bytes connections hold past their reserved shares.
    pub memory: MemoryPool,
    /// The bytes of every connection whose state is alive (open, or
    /// closed with one-way calls still running), for the accounting hooks.
    held: Mutex<foldhash::HashMap<u64, Weak<ConnMemory>>>,
    next_connection_id: AtomicU64,
}

impl ServerEnv {
    pub fn new(config: ServerConfig, interceptors: Box<[Arc<dyn ServerInterceptor>]>) -> ServerEnv {
        ServerEnv {
            interceptors,
            admission: Admission::new(config.max_in_flight),
            memory: MemoryPool::new(config.max_buffered_bytes),
            held: Mutex::new(foldhash::HashMap::default()),
            next_connection_id: AtomicU64::new(0),
            config,
        }
    }

    fn held(&self) -> MutexGuard<'_, foldhash::HashMap<u64, Weak<ConnMemory>>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection's bytes; returns its id.
    pub fn register(&self, memory: &Arc<ConnMemory>) -> u64 {
        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
        self.held().insert(id, Arc::downgrade(memory));
        id
    }

    /// Forgets a connection (its state is being dropped).
    pub fn unregister(&self, id: u64) {
        self.held().remove(&id);
    }

    /// What each live connection holds now.
    fn each_held(&self) -> Vec<usize> {
        self.held()
            .values()
            .filter_map(Weak::upgrade)
            .map(|memory| memory.charged())
            .collect()
    }

    /// Bytes held by every connection together (see `memory.rs`).
    pub fn buffered_bytes(&self) -> usize {
        self.each_held().into_iter().sum()
    }

    /// The most bytes any one connection holds now.
    pub fn max_connection_bytes(&self) -> usize {
        self.each_held().into_iter().max().unwrap_or(0)
    }
}
