//! `plantwatch-server`: parses the command line and hands over to the library.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = plantwatch_server::config::Cli::parse();
    match plantwatch_server::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("plantwatch-server: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
