//! `plantwatch`: the console (later) and the scripted subcommands.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = plantwatch_tui::cli::Cli::parse();
    plantwatch_tui::cli::run(cli)
}
