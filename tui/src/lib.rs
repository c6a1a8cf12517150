//! The `plantwatch` client: the terminal console and the clap subcommands for scripts. It talks
//! to servers only through `plantwatch_shared::Client`, never through server code.

pub mod app;
pub mod bulk;
pub mod cells;
pub mod cli;
pub mod console;
pub mod demo;
pub mod event;
pub mod keymap;
pub mod overlay;
pub mod profile;
pub mod sites;
pub mod theme;
pub mod ui;
pub mod views;
pub mod widgets;
