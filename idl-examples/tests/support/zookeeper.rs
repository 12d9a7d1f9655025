//! A real ZooKeeper server per test: the shared, blocking one of
//! `courier-test-support` (Debian's `zookeeper` on a free loopback port,
//! its own data directory, killed on drop; a server that cannot start
//! fails the test with its log).

pub use courier_test_support::zookeeper::{ZooKeeperServer, java};
