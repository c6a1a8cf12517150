//! What one collection costs the agent: system metrics (sysinfo; CPU busy from `GetSystemTimes`
//! on Windows), two watched processes, and on Windows every service the Service Control Manager
//! lists. The agent collects once per interval (10 s by default), so the time here over 10 s is
//! its duty cycle. Under Wine the figures are indicative only.
//! Run with `cargo bench -p plantwatch-agent --bench collect` (Linux) or `scripts/windows bench`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::time::{Duration, Instant};

use plantwatch_agent::metrics::SystemMetrics;
use plantwatch_agent::processes::Processes;
use plantwatch_shared::lineproto::Writer;

const ROUNDS: usize = 50;

fn main() {
    let mut metrics = SystemMetrics::new().unwrap();
    let mut processes = Processes::new().unwrap();
    let me = std::env::current_exe().unwrap();
    let watched = vec![
        me.file_name().unwrap().to_string_lossy().to_string(),
        "no-such-process".to_owned(),
    ];
    let mut times = Vec::with_capacity(ROUNDS);
    let mut lines = 0;
    for round in 0..=ROUNDS {
        let started = Instant::now();
        let mut out = Writer::new();
        metrics.collect(round as i64, &mut out);
        processes.collect(&watched, round as i64, &mut out);
        #[cfg(windows)]
        plantwatch_agent::services::write_lines(
            &plantwatch_agent::windows::scm::services().unwrap(),
            round as i64,
            &mut out,
        );
        let text = out.take();
        if round > 0 {
            // The first round sets up what later ones reuse.
            times.push(started.elapsed());
            lines = text.lines().count();
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p50 = times[times.len() / 2];
    println!(
        "agent collection ({}, {lines} lines): p50 {:.1} ms, max {:.1} ms over {ROUNDS} rounds",
        std::env::consts::OS,
        ms(p50),
        ms(*times.last().unwrap())
    );
    println!(
        "  duty cycle at the default 10 s interval: {:.3} % of one core",
        100.0 * p50.as_secs_f64() / 10.0
    );
    let mut system = sysinfo::System::new().unwrap();
    let pid = sysinfo::get_current_pid().unwrap();
    system.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), true);
    if let Some(process) = system.process(pid) {
        println!(
            "  resident memory of the process: {:.1} MiB",
            process.memory() as f64 / (1u64 << 20) as f64
        );
    }
}
