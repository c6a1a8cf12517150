//! `plantwatch-agent`.

use clap::Parser as _;
use plantwatch_agent::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The Service Control Manager's process logs to a file, not to a console it lacks.
    #[cfg(windows)]
    if matches!(cli.command, cli::Command::Service(_)) {
        return match plantwatch_agent::windows::service::dispatch() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    plantwatch_shared::daemon::main(cli.log_format, cli::run(cli))
}
