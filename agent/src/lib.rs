//! plantwatch-agent: enrolls once with a join code, learns its node when an admin approves it,
//! then sends a heartbeat every 10 s and its system metrics (sysinfo) through the same
//! store-and-forward push as the collector.

pub mod cli;
pub mod daemon;
pub mod inventory;
pub mod metrics;
pub mod processes;
pub mod services;
#[cfg(windows)]
pub mod windows;

pub use daemon::{Options, run};
