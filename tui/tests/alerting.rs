//! `plantwatch rules`, `plantwatch maintenance`, `plantwatch notify` and `plantwatch alerts`
//! against the real server binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::io::{Read as _, Write as _};
use std::sync::mpsc;

use common::{login, ok, plantwatch, start_server, stderr};
use serde_json::Value;

/// A one-shot webhook receiver on loopback: answers 204 and hands back the request it got.
fn one_shot_receiver() -> (String, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        // Headers, then the body its Content-Length announces.
        loop {
            let n = stream.read(&mut buffer).unwrap_or(0);
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
        }
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .unwrap();
        tx.send(String::from_utf8_lossy(&request).into_owned())
            .unwrap();
    });
    (url, rx)
}

#[test]
fn rules_maintenance_and_notification_channels_from_the_command_line() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    ok(&login(&server, config.path()));
    let cli = |args: &[&str]| plantwatch(config.path(), args, "");

    // Rules: the built-ins are listed; a custom one is created, tuned, previewed, deleted.
    let listed = ok(&cli(&["rules", "list"]));
    for builtin in ["node_unreachable", "collector_offline", "interface_down"] {
        assert!(listed.contains(builtin), "{listed}");
    }
    ok(&cli(&[
        "rules",
        "create",
        "fan_slow",
        "--metric",
        "fan.rpm",
        "--comparison",
        "<",
        "--warning",
        "1000",
        "--critical",
        "500",
        "--clear",
        "1200",
        "--window",
        "2m",
        "--for",
        "30s",
        "--match",
        "fan=cpu*",
    ]));
    let updated = cli(&["rules", "update", "fan_slow", "--warning", "900"]);
    ok(&updated);
    assert!(
        stderr(&updated).contains("< w:900 c:500 clear:1200"),
        "{}",
        stderr(&updated)
    );
    let shown: Value =
        serde_json::from_str(&ok(&cli(&["rules", "show", "fan_slow", "-o", "json"]))).unwrap();
    assert_eq!(shown["window_s"], 120);
    assert_eq!(shown["for_s"], 30);
    assert_eq!(shown["tags"]["fan"], "cpu*");
    let preview = ok(&cli(&["rules", "preview", "fan_slow"]));
    assert!(preview.contains("NODE"), "{preview}");
    let inverted = cli(&["rules", "update", "fan_slow", "--warning", "100"]);
    assert_eq!(inverted.status.code(), Some(1));
    assert!(
        stderr(&inverted).contains("critical"),
        "{}",
        stderr(&inverted)
    );

    ok(&cli(&["rules", "disable", "cpu_high"]));
    let rules: Value = serde_json::from_str(&ok(&cli(&["rules", "list", "-o", "json"]))).unwrap();
    let cpu = rules["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "cpu_high")
        .unwrap();
    assert_eq!(cpu["enabled"], false);
    let refused = cli(&["rules", "delete", "cpu_high", "--yes"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("disable it instead"),
        "{}",
        stderr(&refused)
    );
    ok(&cli(&["rules", "delete", "fan_slow", "--yes"]));

    // Maintenance on a node for two hours, listed as active, then ended.
    ok(&cli(&["nodes", "create", "press-4", "-a", "127.0.0.44"]));
    let created = cli(&[
        "maintenance",
        "create",
        "die change",
        "--node",
        "press-4",
        "--duration",
        "2h",
    ]);
    assert!(
        stderr(&ok_then(&created)).contains("is under way"),
        "{}",
        stderr(&created)
    );
    let windows = ok(&cli(&["maintenance", "list"]));
    assert!(
        windows.contains("die change") && windows.contains("active"),
        "{windows}"
    );
    let id = windows
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    ok(&cli(&["maintenance", "end", &id]));
    assert!(ok(&cli(&["maintenance", "list"])).contains("over"));
    let no_target = cli(&["maintenance", "create", "x", "--duration", "1h"]);
    assert_eq!(no_target.status.code(), Some(2), "a usage error");
    assert!(stderr(&no_target).contains("--node, --tag or --collector"));

    // A webhook channel from a JSON document, and a test through it.
    let (url, received) = one_shot_receiver();
    let document = config.path().join("hook.json");
    std::fs::write(
        &document,
        format!(
            r#"{{"name": "ops", "kind": "webhook", "settings": {{"url": "{url}"}},
                "secrets": {{"hmac_key": "k-123"}}, "min_severity": "critical"}}"#
        ),
    )
    .unwrap();
    ok(&cli(&["notify", "create", document.to_str().unwrap()]));
    let channels = ok(&cli(&["notify", "list"]));
    assert!(
        channels.contains("ops") && channels.contains(">= critical"),
        "{channels}"
    );
    assert!(!channels.contains("k-123"));
    let tested = cli(&["notify", "test", "ops"]);
    assert!(stderr(&ok_then(&tested)).contains("Sent a test notification"));
    let request = received
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(request.starts_with("POST /hook"), "{request}");
    assert!(
        request.contains("x-plantwatch-signature: sha256="),
        "{request}"
    );
    assert!(request.contains("\"event\":\"test\""), "{request}");
    // Nothing listens there any more: the test says why it failed.
    let failed = cli(&["notify", "test", "ops"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).contains("the test through ops failed"),
        "{}",
        stderr(&failed)
    );
    let unknown = cli(&["notify", "test", "pager"]);
    assert!(stderr(&unknown).contains("no notification channel named"));
    // Changed from a document of only what changes: the HMAC key left out is kept.
    let changes = config.path().join("changes.json");
    std::fs::write(
        &changes,
        r#"{"min_severity": "warning", "tags": ["line-1"]}"#,
    )
    .unwrap();
    let updated = cli(&["notify", "update", "ops", changes.to_str().unwrap()]);
    assert!(
        stderr(&ok_then(&updated)).contains("Updated channel ops: min_severity, tags."),
        "{}",
        stderr(&updated)
    );
    let shown = ok(&cli(&["notify", "show", "ops"]));
    assert!(
        shown.contains("takes:    warning+, tag line-1")
            && shown.contains("secrets:  hmac_key (set, not shown)"),
        "{shown}"
    );
    assert!(!shown.contains("k-123"), "{shown}");
    std::fs::write(&changes, r#"{"colour": "red"}"#).unwrap();
    let refused = cli(&["notify", "update", "ops", changes.to_str().unwrap()]);
    assert!(
        stderr(&refused).contains("not a channel's fields"),
        "{}",
        stderr(&refused)
    );

    // Alerts: none yet; acknowledging an unknown one is an error that says so.
    let alerts = ok(&cli(&["alerts", "list"]));
    assert!(alerts.starts_with("ID"), "{alerts}");
    let missing = cli(&["alerts", "ack", "999", "-m", "looking"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("there is no alert 999"),
        "{}",
        stderr(&missing)
    );
}

fn ok_then(output: &std::process::Output) -> std::process::Output {
    ok(output);
    output.clone()
}

/// `alerts ack 3 4 5` and `alerts ack --all-matching` with the list's filters: a custom rule
/// that holds for every pinged node gives one alert per node.
#[test]
fn alerts_are_acknowledged_in_bulk_by_id_and_by_the_list_filters() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_alerting_server(dir.path());
    let config = tempfile::tempdir().unwrap();
    ok(&login(&server, config.path()));
    let cli = |args: &[&str]| plantwatch(config.path(), args, "");
    common::pinged_plcs(config.path(), 77, 5);
    let list = || -> Vec<Value> {
        let text = ok(&cli(&["alerts", "list", "-o", "json"]));
        serde_json::from_str::<Value>(&text).unwrap()["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    let alerts = plantwatch_testkit::wait_until(
        std::time::Duration::from_secs(90),
        "an alert per node",
        || {
            let alerts = list();
            (alerts.len() == 5).then_some(alerts)
        },
    );
    let id = |node: &str| {
        alerts
            .iter()
            .find(|a| a["node"] == node)
            .map(|a| a["id"].as_i64().unwrap().to_string())
            .unwrap()
    };
    let (one, two) = (id("plc-1"), id("plc-2"));
    let acked = cli(&["alerts", "ack", &one, &two, "-m", "known"]);
    ok(&acked);
    assert!(
        stderr(&acked).contains("2 of 2 acknowledged."),
        "{}",
        stderr(&acked)
    );
    // The rest by the filters: only plc-3 by --search, then everything left.
    let acked = cli(&["alerts", "ack", "--all-matching", "--search", "plc-3"]);
    ok(&acked);
    assert!(
        stderr(&acked).contains("Acknowledged alert"),
        "{}",
        stderr(&acked)
    );
    let is_acked = |node: &str| {
        list()
            .iter()
            .find(|a| a["node"] == node)
            .is_some_and(|a| a["acked_by"] == "admin")
    };
    assert!(is_acked("plc-3") && !is_acked("plc-4"));
    let acked = cli(&["alerts", "ack", "--all-matching", "--state", "firing"]);
    ok(&acked);
    assert!(
        stderr(&acked).contains("2 of 2 acknowledged."),
        "{}",
        stderr(&acked)
    );
    assert!(list().iter().all(|a| a["acked_by"] == "admin"));
    // Nothing left to acknowledge; ids and --all-matching together are a usage error.
    let none = cli(&["alerts", "ack", "--all-matching"]);
    ok(&none);
    assert!(stderr(&none).contains("No unacknowledged alert matches."));
    let both = cli(&["alerts", "ack", "3", "--all-matching"]);
    assert_eq!(both.status.code(), Some(2));
}
