//! Polling 1,000 devices every 10 s against net-snmp's `snmpd` on loopback (each "device" is
//! one target with the `generic` template: sysUpTime and the IF-MIB table), measuring the
//! collector's own CPU time and resident memory over a minute, and how many polls completed.
//! Run with `cargo bench -p plantwatch-collector --bench polling` (needs snmpd and snmpget).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::collections::BTreeMap;
use std::time::Duration;

use plantwatch_collector::sources::{PollOptions, Poller};
use plantwatch_shared::api::{
    CollectorConfig, CredentialKind, CredentialParams, NodeType, Target, TargetCredential,
    TemplateDef,
};
use plantwatch_shared::push::LineSender;
use plantwatch_testkit::snmp;

const DEVICES: i64 = 1_000;
const INTERVAL_S: u32 = 10;
const WARM_UP: Duration = Duration::from_secs(15);
const MEASURE: Duration = Duration::from_secs(60);

fn main() {
    let agent = snmp::snmpd();
    let template: TemplateDef =
        toml::from_str(include_str!("../../server/templates/generic.toml")).unwrap();
    let config = CollectorConfig {
        collector_id: 1,
        credentials: vec![TargetCredential {
            id: 1,
            name: "plant".into(),
            kind: CredentialKind::SnmpV2c,
            params: CredentialParams::default(),
            secrets: BTreeMap::from([("community".to_owned(), snmp::COMMUNITY.into())]),
            networks: vec!["127.0.0.0/8".into()],
        }],
        targets: (1..=DEVICES)
            .map(|id| Target {
                node_id: id,
                name: format!("device-{id}"),
                address: agent.address.clone(),
                node_type: NodeType::Network,
                template: Some("generic".into()),
                interval_s: INTERVAL_S,
                credential_ids: vec![1],
                checks: Vec::new(),
                modbus_unit: None,
                vsphere: None,
            })
            .collect(),
        templates: BTreeMap::from([("generic".to_owned(), template)]),
        ..CollectorConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (lines, receiver) = LineSender::channel(1_024);
        let options = PollOptions {
            icmp: false,
            ..PollOptions::default()
        };
        let mut poller = Poller::new(lines, &options);
        poller.apply(&config);
        let m = plantwatch_testkit::polling::measure(receiver, |b| &b.text, "snmp,", WARM_UP, MEASURE).await;
        let seconds = m.seconds;
        let (answered, failed, lines) = (m.up, m.down, m.lines);
        let expected = DEVICES as f64 * seconds / f64::from(INTERVAL_S);
        let cpu = m.cpu_pct;
        let (rss, peak) = (m.rss_kib, m.peak_kib);
        println!("polling {DEVICES} devices every {INTERVAL_S} s against snmpd on loopback, {seconds:.0} s measured");
        println!("  polls completed: {answered} of {expected:.0} due ({:.1} %), {failed} failed", 100.0 * answered as f64 / expected);
        println!("  lines produced: {lines} ({:.0}/s)", lines as f64 / seconds);
        println!("  collector CPU: {cpu:.1} % of one core");
        println!("  resident memory: {:.1} MiB (peak {:.1} MiB)", rss as f64 / 1024.0, peak as f64 / 1024.0);
        poller.stop();
    });
}
