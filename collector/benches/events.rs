//! Traps one collector receives and forwards: a real v2c linkDown datagram (captured from
//! net-snmp's `snmptrap`) sent 50,000 times from 500 loopback addresses (a plant's devices:
//! the per-sender rate limit is per address) to the collector's trap receiver, which parses
//! each, makes it an event and hands it to the outbox's line channel (drained here). The
//! sender keeps at most 128 datagrams in flight, so the kernel's socket buffer drops none and
//! the figure is the receiver's own rate. Reports events per second, CPU and memory. Run with
//! `cargo bench -p plantwatch-collector --bench events` (needs snmptrap).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plantwatch_collector::sources::events::EventReceivers;
use plantwatch_shared::api::{CollectorConfig, Receivers, parse_listens};
use plantwatch_shared::push::LineSender;

const SENDERS: usize = 500;
const PER_SENDER: usize = 100;
const IN_FLIGHT: u64 = 128;

#[tokio::main]
async fn main() {
    // One real trap, as snmptrap writes it.
    let capture = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = format!("udp:{}", capture.local_addr().unwrap());
    let status = std::process::Command::new("snmptrap")
        .args([
            "-v",
            "2c",
            "-c",
            "plant",
            &to,
            "12345",
            "1.3.6.1.6.3.1.1.5.3",
        ])
        .args([
            "1.3.6.1.2.1.2.2.1.1.7",
            "i",
            "7",
            "1.3.6.1.2.1.2.2.1.2.7",
            "s",
            "Gi0/7",
        ])
        .status()
        .expect("snmptrap (Debian package snmp)");
    assert!(status.success());
    let mut datagram = vec![0u8; 2_048];
    let len = capture.recv(&mut datagram).unwrap();
    datagram.truncate(len);

    let port = plantwatch_testkit::free_port();
    let (lines, mut received) = LineSender::channel(4_096);
    let mut receivers = EventReceivers::new(lines);
    receivers
        .apply(&CollectorConfig {
            receivers: Receivers {
                traps: parse_listens(&format!("udp:{port}")).unwrap(),
                syslog: Vec::new(),
            },
            ..CollectorConfig::default()
        })
        .await;
    let forwarded = Arc::new(AtomicU64::new(0));
    let counter = forwarded.clone();
    let drain = tokio::spawn(async move {
        while let Some(batch) = received.recv().await {
            counter.fetch_add(batch.count as u64, Ordering::Relaxed);
        }
    });
    let senders: Vec<std::net::UdpSocket> = (0..SENDERS)
        .map(|n| {
            let from = format!("127.0.{}.{}", 1 + n / 250, 1 + n % 250);
            std::net::UdpSocket::bind((from.as_str(), 0)).unwrap()
        })
        .collect();
    let total = (SENDERS * PER_SENDER) as u64;
    let (cpu_before, _, _) = plantwatch_testkit::usage();
    let started = Instant::now();
    let sender = {
        let forwarded = forwarded.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            for _ in 0..PER_SENDER {
                for socket in &senders {
                    // A window of datagrams in flight; one lost in the kernel must not stall it.
                    let waited = Instant::now();
                    while sent - forwarded.load(Ordering::Relaxed) >= IN_FLIGHT
                        && waited.elapsed() < Duration::from_millis(100)
                    {
                        std::thread::yield_now();
                    }
                    socket.send_to(&datagram, ("127.0.0.1", port)).unwrap();
                    sent += 1;
                }
            }
        })
    };
    // Done when the sender is and nothing more came for half a second.
    let mut last = (0, started.elapsed());
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = forwarded.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, started.elapsed());
        } else if sender.is_finished() && started.elapsed() - last.1 > Duration::from_millis(500) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "stuck at {now}"
        );
    }
    let (got, elapsed) = (last.0, last.1.as_secs_f64());
    sender.join().unwrap();
    let (cpu_after, rss, peak) = plantwatch_testkit::usage();
    let counts = receivers.counts();
    assert_eq!(counts.rate_limited.load(Ordering::Relaxed), 0);
    assert_eq!(counts.malformed.load(Ordering::Relaxed), 0);
    println!("| measure | figure |");
    println!("|---|---|");
    println!("| traps sent | {total} from {SENDERS} senders |");
    println!(
        "| received and forwarded | {got} ({} lost in the kernel's socket buffer) |",
        total - got
    );
    println!("| time | {elapsed:.2} s |");
    println!("| **rate** | **{:.0} traps/s** |", got as f64 / elapsed);
    println!(
        "| CPU (this process: receiver, sender, drain) | {:.2} s, {:.1} µs a trap |",
        cpu_after - cpu_before,
        (cpu_after - cpu_before) * 1e6 / got as f64
    );
    println!(
        "| resident memory after | {:.1} MiB (peak {:.1} MiB) |",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    drain.abort();
}
