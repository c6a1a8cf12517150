//! `plantwatch-collector`.

use clap::Parser as _;
use plantwatch_collector::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    plantwatch_shared::daemon::main(cli.log_format, cli::run(cli))
}
