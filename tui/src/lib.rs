//! The `plantwatch` client: the terminal console and the clap subcommands for scripts. It talks
//! to servers only through `plantwatch_shared::Client`, never through server code.

pub mod cli;
pub mod profile;
