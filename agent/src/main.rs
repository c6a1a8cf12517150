//! `plantwatch-agent`.

use clap::Parser as _;
use plantwatch_agent::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    plantwatch_shared::daemon::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
