//! plantwatch-collector: enrolls once with a join code, then keeps the current configuration
//! of its targets from the server (pulled every 10 s with `If-None-Match`), saved on disk so
//! that it starts with the last good one even when the server is down, and reports its status.
//! It polls its targets by ICMP and SNMP (`sources/`) and pushes their metrics through an
//! on-disk outbox (`plantwatch_shared::push`). The server runs the same [`run`] in-process as its local collector.

pub mod cli;
pub mod daemon;
pub mod discovery;
pub mod sources;
pub mod store;

pub use daemon::{Options, run};
