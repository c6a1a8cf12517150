//! Line-protocol parser throughput: realistic collector lines (interface tables with tags and
//! unsigned counters, pings, host metrics with escapes and strings) parsed over and over.
//! Run with `cargo bench -p plantwatch-shared --bench lineproto`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::hint::black_box;
use std::time::{Duration, Instant};

use plantwatch_shared::lineproto::{Writer, lines, parse_line};

const LINES: usize = 200_000;
const RUN_FOR: Duration = Duration::from_secs(5);

fn corpus() -> String {
    let mut writer = Writer::new();
    let ts = 1_764_000_000_000i64;
    for i in 0..LINES {
        let node = (i % 1_000).to_string();
        match i % 4 {
            0 => {
                let index = (i % 48).to_string();
                let name = format!("GigabitEthernet1/0/{}", i % 48);
                writer
                    .line(
                        "interface",
                        &[
                            ("node_id", &node),
                            ("ifIndex", &index),
                            ("ifName", &name),
                            ("ifAlias", "uplink to hall B, rack 4"),
                        ],
                    )
                    .uint("in_octets_total", 1_234_567_890_123 + i as u64)
                    .uint("out_octets_total", 987_654_321_098 + i as u64)
                    .uint("in_packets_total", 123_456_789 + i as u64)
                    .uint("out_packets_total", 98_765_432 + i as u64)
                    .uint("in_errors_total", 3)
                    .float("oper_status", 1.0)
                    .float("speed_mbps", 1_000.0)
                    .finish(ts + i as i64);
            }
            1 => writer
                .line("ping", &[("node_id", &node)])
                .float("up", 1.0)
                .float("loss_pct", 0.0)
                .float("rtt_min_ms", 0.412)
                .float("rtt_avg_ms", 0.587)
                .float("rtt_max_ms", 0.903)
                .finish(ts + i as i64),
            2 => writer
                .line(
                    "disk",
                    &[
                        ("node_id", &node),
                        ("mount", "/var/lib/plant data"),
                        ("fs", "ext4"),
                    ],
                )
                .float("total_bytes", 512_110_190_592.0)
                .float("used_bytes", 201_326_592_000.0)
                .float("used_pct", 39.31)
                .finish(ts + i as i64),
            _ => writer
                .line("snmp", &[("node_id", &node)])
                .float("up", 1.0)
                .float("poll_duration_ms", 12.75)
                .int("requests", 4)
                .string("agent", "net-snmp 5.9.3 \"bookworm\"")
                .finish(ts + i as i64),
        }
    }
    writer.take()
}

fn main() {
    let body = corpus();
    let mut passes = 0u64;
    let mut fields = 0u64;
    let started = Instant::now();
    while started.elapsed() < RUN_FOR {
        for (_, line) in lines(&body) {
            let parsed = parse_line(line).unwrap();
            fields += parsed.fields.len() as u64;
            black_box(parsed);
        }
        passes += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = body.len() as f64 * passes as f64;
    let parsed_lines = LINES as f64 * passes as f64;
    println!(
        "line protocol parser ({LINES} lines, {:.1} MiB a pass, {passes} passes in {elapsed:.1} s)",
        body.len() as f64 / 1_048_576.0
    );
    println!("  {:.0} MB/s", bytes / elapsed / 1e6);
    println!("  {:.0} lines/s", parsed_lines / elapsed);
    println!("  {:.0} fields/s", fields as f64 / elapsed);
    println!(
        "  {:.0} bytes a line on average",
        body.len() as f64 / LINES as f64
    );
}
