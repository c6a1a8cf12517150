//! plantwatch-collector: enrolls once with a join code, then keeps the current configuration
//! of its targets from the server (pulled every 10 s with `If-None-Match`), saved on disk so
//! that it starts with the last good one even when the server is down, and reports its status.
//! SNMP/ICMP polling, the metric push and discovery build on the configuration this crate
//! keeps. The server runs the same [`run`] in-process as its local collector.

pub mod cli;
pub mod daemon;
pub mod store;

pub use daemon::{Options, run};
