//! Modbus TCP reads against tokio-modbus servers on loopback (in this process: the figures
//! include the simulated devices' own CPU, an upper bound for the collector's).
//! 1. Points per second one node gives: 100 f32 points read back to back, adjacent (two reads
//!    of 100 registers a poll) and scattered (a read each).
//! 2. 1,000 devices (50 gateways × 20 unit ids, the shipped Eastron SDM630 profile: 11 points
//!    in 4 reads) every 10 s through the collector's poller: polls completed, CPU, memory.
//!
//! Run with `cargo bench -p plantwatch-collector --bench modbus`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use plantwatch_collector::sources::modbus::{Gateways, ModbusTarget};
use plantwatch_collector::sources::{PollOptions, Poller};
use plantwatch_shared::api::modbus::{DataType, Function, ModbusDef, PointDef};
use plantwatch_shared::api::{CollectorConfig, NodeType, Target, TemplateDef};
use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::push::LineSender;
use plantwatch_testkit::modbus::{Memory, Plant, serve};

const GATEWAYS: u16 = 50;
const UNITS: u8 = 20;
const INTERVAL_S: u32 = 10;
const WARM_UP: Duration = Duration::from_secs(12);
const MEASURE: Duration = Duration::from_secs(40);

/// Polls `def` back to back for `for_how_long`; points read per second.
async fn points_per_second(def: ModbusDef, for_how_long: Duration) -> (f64, usize) {
    let memory = Memory {
        holding: (0..1_000).map(|a| (a, a)).collect(),
        ..Memory::default()
    };
    let addr = serve(Plant {
        units: HashMap::from([(1, memory)]),
        ..Plant::default()
    })
    .await;
    let gateways = Gateways::default();
    let mut target = ModbusTarget::new(1, gateways.get(addr), def, None);
    let started = Instant::now();
    let mut points = 0;
    let mut polls = 0;
    while started.elapsed() < for_how_long {
        let mut out = Writer::new();
        points += target.poll(0, &mut out).await.points;
        polls += 1;
    }
    (points as f64 / started.elapsed().as_secs_f64(), polls)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let adjacent = ModbusDef {
            points: (0..100).map(|i| PointDef::new(&format!("bench.p{i}"), Function::Holding, i * 2, DataType::F32)).collect(),
            ..ModbusDef::default()
        };
        let scattered = ModbusDef {
            points: (0..100).map(|i| PointDef::new(&format!("bench.p{i}"), Function::Holding, i * 3, DataType::F32)).collect(),
            ..ModbusDef::default()
        };
        let (rate, polls) = points_per_second(adjacent, Duration::from_secs(5)).await;
        println!("one node, 100 adjacent f32 points (2 reads a poll): {rate:.0} points/s ({polls} polls in 5 s)");
        let (rate, polls) = points_per_second(scattered, Duration::from_secs(5)).await;
        println!("one node, 100 scattered f32 points (100 reads a poll): {rate:.0} points/s ({polls} polls in 5 s)");

        // 1,000 meters behind 50 gateways.
        let template: TemplateDef =
            toml::from_str(include_str!("../../server/templates/eastron-sdm630.toml")).unwrap();
        let memory = Memory {
            input: (0..80).map(|a| (a, 0x4366)).collect(),
            ..Memory::default()
        };
        let mut targets = Vec::new();
        for gateway in 0..GATEWAYS {
            let addr = serve(Plant {
                units: (1..=UNITS).map(|u| (u, memory.clone())).collect(),
                ..Plant::default()
            })
            .await;
            for unit in 1..=UNITS {
                let id = i64::from(gateway) * i64::from(UNITS) + i64::from(unit);
                targets.push(Target {
                    node_id: id,
                    name: format!("meter-{id}"),
                    address: addr.to_string(),
                    node_type: NodeType::Other,
                    template: Some("eastron-sdm630".into()),
                    interval_s: INTERVAL_S,
                    credential_ids: Vec::new(),
                    checks: Vec::new(),
                    modbus_unit: Some(unit),
                    vsphere: None,
                });
            }
        }
        let devices = targets.len();
        let config = CollectorConfig {
            collector_id: 1,
            targets,
            templates: BTreeMap::from([("eastron-sdm630".to_owned(), template)]),
            ..CollectorConfig::default()
        };
        let (lines, receiver) = LineSender::channel(1_024);
        let options = PollOptions {
            icmp: false,
            ..PollOptions::default()
        };
        let mut poller = Poller::new(lines, &options);
        poller.apply(&config);
        let m = plantwatch_testkit::polling::measure(receiver, |b| &b.text, "modbus,", WARM_UP, MEASURE).await;
        let seconds = m.seconds;
        let expected = devices as f64 * seconds / f64::from(INTERVAL_S);
        println!("{devices} Modbus devices ({GATEWAYS} gateways × {UNITS} units, 11 points each) every {INTERVAL_S} s, {seconds:.0} s measured");
        println!("  polls completed: {} of {expected:.0} due ({:.1} %), {} down", m.up, 100.0 * m.up as f64 / expected, m.down);
        println!("  lines produced: {} ({:.0}/s)", m.lines, m.lines as f64 / seconds);
        println!("  CPU (collector and the simulated devices): {:.1} % of one core", m.cpu_pct);
        println!("  resident memory: {:.1} MiB (peak {:.1} MiB)", m.rss_kib as f64 / 1024.0, m.peak_kib as f64 / 1024.0);
        poller.stop();
    });
}
