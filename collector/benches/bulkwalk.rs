//! A GETBULK walk of a large ifTable (the Juniper MX960 recording of snmpsim-data, about
//! 1,600 values) by the collector's walker against net-snmp's `snmpbulkwalk` of the same table
//! from the same agent; each the median of several runs.
//! Run with `cargo bench -p plantwatch-collector --bench bulkwalk` (needs snmpsim, snmp).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plantwatch_collector::sources::snmp::session::{Auth, Limits, Session};
use plantwatch_collector::sources::snmp::walk;
use plantwatch_testkit::snmp;

const RUNS: usize = 7;
const IF_TABLE: [u64; 8] = [1, 3, 6, 1, 2, 1, 2, 2];

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let data = tempfile::tempdir().unwrap();
    snmp::stage_recording(
        "network/router/juniper-mx960-16-1r6-7-a",
        data.path(),
        "juniper",
    );
    let agent = snmp::snmpsim(data.path(), "juniper");

    let mut theirs = Vec::new();
    let mut their_count = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let output = Command::new("snmpbulkwalk")
            .args([
                "-v2c",
                "-c",
                "juniper",
                "-On",
                "-Oq",
                &agent.address,
                "1.3.6.1.2.1.2.2",
            ])
            .output()
            .unwrap();
        theirs.push(started.elapsed());
        assert!(output.status.success());
        their_count = String::from_utf8_lossy(&output.stdout).lines().count();
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (ours, our_count) = runtime.block_on(async {
        let limits = Limits {
            timeout: Duration::from_secs(5),
            retries: 1,
            in_flight: Arc::new(tokio::sync::Semaphore::new(256)),
        };
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..RUNS {
            let mut session = Session::new(
                agent.address.parse().unwrap(),
                Auth::V2c(b"juniper".to_vec()),
                limits.clone(),
            );
            let started = Instant::now();
            let columns = walk::walk_columns(&mut session, &[IF_TABLE.to_vec()])
                .await
                .unwrap();
            times.push(started.elapsed());
            count = columns[0].len();
        }
        (times, count)
    });
    assert_eq!(our_count, their_count, "both walks read the same values");
    let (ours, theirs) = (median(ours), median(theirs));
    println!("GETBULK walk of ifTable ({our_count} values) from snmpsim, median of {RUNS}");
    println!("  plantwatch walker: {:.1} ms", ours.as_secs_f64() * 1e3);
    println!("  snmpbulkwalk:      {:.1} ms", theirs.as_secs_f64() * 1e3);
    println!(
        "  ratio: {:.2}× the time of snmpbulkwalk",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}
