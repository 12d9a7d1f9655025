//! Test support shared by the `zookeeper_*` integration tests.

pub mod zookeeper;
