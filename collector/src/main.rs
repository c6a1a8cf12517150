//! `plantwatch-collector`.

use clap::Parser;

/// The plantwatch collector: runs on an isolated plant network, polls devices by SNMP and
/// ICMP, buffers metrics while the server is unreachable, and runs discovery scans.
///
/// Not functional yet: enrollment and polling arrive with the enrollment and collection work.
#[derive(Debug, Parser)]
#[command(name = "plantwatch-collector", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!(
        "plantwatch-collector {}: enrollment and polling are not available in this build yet.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(1);
}
