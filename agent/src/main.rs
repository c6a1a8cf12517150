//! `plantwatch-agent`.

use clap::Parser;

/// The plantwatch agent: runs on a monitored server and reports its system metrics and a
/// heartbeat to the plantwatch server.
///
/// Not functional yet: enrollment and metrics arrive with the enrollment and collection work.
#[derive(Debug, Parser)]
#[command(name = "plantwatch-agent", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!(
        "plantwatch-agent {}: enrollment and metrics are not available in this build yet.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(1);
}
