//! Test support for `curator_interop.rs`: child processes that are killed on
//! drop and read with deadlines, temporary directories, a real ZooKeeper
//! server per test, and the Java Curator client compiled once per test run.
//!
//! Blocking, std only; the ZooKeeper server is the shared one of
//! `courier-test-support`, as in `runtime/tests/support/zookeeper.rs`.
//!
//! Whatever is missing (ZooKeeper, Java, Curator) fails the test with a clear
//! message naming the script that installs it; nothing is skipped.

#![allow(dead_code)]

pub mod java;
pub mod process;
pub mod zookeeper;
