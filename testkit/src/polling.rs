//! The collectors' polling benchmarks' measure: lines from a running poller counted over a
//! warm-up and a measured span, with the process's CPU time and memory.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// What a measured span saw.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Health lines saying up, and saying down.
    pub up: u64,
    pub down: u64,
    /// Every line.
    pub lines: u64,
    pub seconds: f64,
    /// Of one core, the whole process.
    pub cpu_pct: f64,
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// Counts the lines of `receiver`'s batches (`text` gives a batch's line-protocol text) for
/// `warm_up` then `measure`, a line starting with `health` (the poll's health line, `snmp,`
/// or `modbus,`) counting as up when its `up` field is 1.
pub async fn measure<B: Send + 'static>(
    mut receiver: mpsc::Receiver<B>,
    text: fn(&B) -> &str,
    health: &'static str,
    warm_up: Duration,
    measure: Duration,
) -> Measured {
    let counts = tokio::spawn(async move {
        // (up, down, lines) so far, with when.
        let mut totals = (0u64, 0u64, 0u64);
        let mut marks = Vec::new();
        let started = Instant::now();
        while let Some(batch) = receiver.recv().await {
            for line in text(&batch).lines() {
                totals.2 += 1;
                if line.starts_with(health) {
                    if line.contains(" up=1.0,") || line.contains(" up=1,") {
                        totals.0 += 1;
                    } else {
                        totals.1 += 1;
                    }
                }
            }
            marks.push((started.elapsed(), totals));
            if started.elapsed() > warm_up + measure + Duration::from_secs(1) {
                break;
            }
        }
        marks
    });
    tokio::time::sleep(warm_up).await;
    let (cpu_before, _, _) = crate::usage();
    let measured_from = Instant::now();
    tokio::time::sleep(measure).await;
    let (cpu_after, rss_kib, peak_kib) = crate::usage();
    let seconds = measured_from.elapsed().as_secs_f64();
    let marks = counts.await.unwrap();
    let at = |t: Duration| {
        marks
            .iter()
            .take_while(|(when, _)| *when <= t)
            .last()
            .map_or((0, 0, 0), |(_, c)| *c)
    };
    let (before, after) = (at(warm_up), at(warm_up + measure));
    Measured {
        up: after.0 - before.0,
        down: after.1 - before.1,
        lines: after.2 - before.2,
        seconds,
        cpu_pct: (cpu_after - cpu_before) / seconds * 100.0,
        rss_kib,
        peak_kib,
    }
}
