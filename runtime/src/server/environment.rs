//! What a connection and its calls need from their server, and nothing
//! else: the tunables, the interceptors, the admission of calls, the
//! memory pool, and the register of the bytes each connection holds. The
//! reader alone also sees the router, the serializers and the shutdown
//! phase (`shared.rs`); a call reaches only this.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

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
    /// Set when the server closes its connections (see [`CloseSignal`]).
    closing: AtomicBool,
    /// The readers waiting for the close, by connection id.
    close_watchers: Mutex<foldhash::HashMap<u64, Waker>>,
}

impl ServerEnv {
    pub fn new(config: ServerConfig, interceptors: Box<[Arc<dyn ServerInterceptor>]>) -> ServerEnv {
        ServerEnv {
            interceptors,
            admission: Admission::new(config.max_in_flight),
            memory: MemoryPool::new(config.max_buffered_bytes),
            held: Mutex::new(foldhash::HashMap::default()),
            next_connection_id: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            close_watchers: Mutex::new(foldhash::HashMap::default()),
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
        self.watchers().remove(&id);
    }

    fn watchers(&self) -> MutexGuard<'_, foldhash::HashMap<u64, Waker>> {
        self.close_watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes every connection: their readers see it at once (woken if
    /// they wait).
    pub fn close_connections(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let watchers: Vec<Waker> = self.watchers().drain().map(|(_, waker)| waker).collect();
        for waker in watchers {
            waker.wake();
        }
    }

    /// Whether the server closes its connections.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
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

/// A connection reader's wait for the server's close: one atomic load per
/// poll while its task's waker stays the same (the reader is polled for
/// every read), a registration when it changes.
///
/// (It replaced a wait on the server's phase watch that skipped polling
/// the watch while a receiver of its own saw no change: a watch's version
/// moves before its notification goes out, so a wait armed in between was
/// woken by that late notification, which that poll then skipped, and it
/// was no longer armed when the close came: one shutdown in twenty-five
/// missed it, and the close grace aborted the connection, whose calls saw
/// it vanish instead of their status 6. Polling the watch on every turn
/// cost ~400 instructions a call.)
pub(crate) struct CloseSignal<'a> {
    env: &'a ServerEnv,
    connection: u64,
    registered: Option<Waker>,
}

impl<'a> CloseSignal<'a> {
    pub fn new(env: &'a ServerEnv, connection: u64) -> CloseSignal<'a> {
        CloseSignal {
            env,
            connection,
            registered: None,
        }
    }

    /// Ready once the server closes its connections.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.env.is_closing() {
            return Poll::Ready(());
        }
        let same = self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if !same {
            self.registered = Some(cx.waker().clone());
            self.env
                .watchers()
                .insert(self.connection, cx.waker().clone());
            // Set meanwhile: the closer may have woken the watchers
            // before this one was in.
            if self.env.is_closing() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}
