//! plantwatch-agent: enrolls once with a join code, learns its node when an admin approves it,
//! then sends a heartbeat every 10 s. System metrics build on the same loop.

pub mod cli;
pub mod daemon;

pub use daemon::{Options, run};
