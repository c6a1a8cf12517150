//! The receivers against real senders on loopback: net-snmp's `snmptrap` (v1, v2c) and
//! `snmpinform` (which exits 0 only once acknowledged), util-linux's `logger` (RFC 5424 and
//! 3164, UDP and TCP) and a TCP sender framing by octet counting.

use std::process::Command;
use std::time::Duration;

use plantwatch_shared::api::{
    CollectedEvent, CollectorConfig, EventKind, EventSeverity, Receivers, parse_listens,
};
use plantwatch_shared::lineproto;
use plantwatch_shared::push::{LineSender, Lines};
use tokio::sync::mpsc;

use super::*;

/// Receivers on fresh loopback ports: (traps port, syslog port), the events' lines, and them.
async fn started() -> (u16, u16, mpsc::Receiver<Lines>, EventReceivers) {
    let (traps, syslog) = (
        plantwatch_testkit::free_port(),
        plantwatch_testkit::free_port(),
    );
    let (lines, received) = LineSender::channel(1_024);
    let mut receivers = EventReceivers::new(lines);
    let config = CollectorConfig {
        receivers: Receivers {
            traps: parse_listens(&format!("udp:{traps}")).unwrap(),
            syslog: parse_listens(&format!("udp:{syslog},tcp:{syslog}")).unwrap(),
        },
        ..CollectorConfig::default()
    };
    receivers.apply(&config).await;
    (traps, syslog, received, receivers)
}

/// The next `n` events, within 10 s.
async fn next(received: &mut mpsc::Receiver<Lines>, n: usize) -> Vec<CollectedEvent> {
    let mut events = Vec::new();
    while events.len() < n {
        let lines = tokio::time::timeout(Duration::from_secs(10), received.recv())
            .await
            .expect("an event within 10 s")
            .unwrap();
        for (_, line) in lineproto::lines(&lines.text) {
            let parsed = lineproto::parse_line(line).unwrap();
            assert_eq!(parsed.measurement, "event");
            let doc = parsed.fields.iter().find(|(k, _)| k == "doc").unwrap();
            let lineproto::FieldValue::Str(doc) = &doc.1 else {
                panic!("doc is a string");
            };
            events.push(serde_json::from_str(doc).unwrap());
        }
    }
    events
}

/// One syslog line to `port` over UDP, as util-linux's `logger` sends it.
fn logger_udp(port: u16, message: &str) {
    let port = port.to_string();
    run(
        "logger",
        &["--udp", "--server", "127.0.0.1", "--port", &port, message],
    );
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_of_every_version_and_informs_are_received_in_one_shape() {
    let (port, _, mut received, _receivers) = started().await;
    let to = format!("udp:127.0.0.1:{port}");
    // v2c linkDown with its ifIndex, as a switch sends it.
    run(
        "snmptrap",
        &[
            "-v",
            "2c",
            "-c",
            "plant-trap",
            &to,
            "12345",
            "1.3.6.1.6.3.1.1.5.3",
            "1.3.6.1.2.1.2.2.1.1.7",
            "i",
            "7",
            "1.3.6.1.2.1.2.2.1.2.7",
            "s",
            "Gi0/7",
        ],
    );
    let down = next(&mut received, 1).await.remove(0);
    let trap = down.trap.as_ref().unwrap();
    assert_eq!(
        (down.kind, down.source.as_str()),
        (EventKind::Trap, "127.0.0.1")
    );
    assert_eq!(
        (
            trap.version.as_str(),
            trap.oid.as_str(),
            trap.name.as_deref()
        ),
        ("v2c", "1.3.6.1.6.3.1.1.5.3", Some("linkDown"))
    );
    assert_eq!(
        (trap.uptime, down.severity),
        (Some(12345), EventSeverity::Warning)
    );
    let if_descr = trap
        .varbinds
        .iter()
        .find(|v| v.oid == "1.3.6.1.2.1.2.2.1.2.7")
        .unwrap();
    assert_eq!(
        (if_descr.value_type.as_str(), if_descr.value.as_str()),
        ("octet-string", "Gi0/7")
    );
    assert!(down.message.starts_with("linkDown"), "{down:?}");
    assert!(
        !serde_json::to_string(&down).unwrap().contains("plant-trap"),
        "the community is kept"
    );

    // v1: an enterprise-specific trap from an agent address of its own (RFC 3584 conversion).
    run(
        "snmptrap",
        &[
            "-v",
            "1",
            "-c",
            "plant-trap",
            &to,
            "1.3.6.1.4.1.534.1",
            "10.9.8.7",
            "6",
            "3",
            "500",
            "1.3.6.1.4.1.534.1.1.1.0",
            "s",
            "on battery",
        ],
    );
    let v1 = next(&mut received, 1).await.remove(0);
    let trap = v1.trap.as_ref().unwrap();
    assert_eq!(trap.version, "v1");
    assert_eq!(trap.oid, "1.3.6.1.4.1.534.1.0.3");
    assert_eq!(trap.agent_address.as_deref(), Some("10.9.8.7"));
    assert_eq!(trap.uptime, Some(500));
    let oids: Vec<&str> = trap.varbinds.iter().map(|v| v.oid.as_str()).collect();
    assert_eq!(oids[..2], ["1.3.6.1.2.1.1.3.0", "1.3.6.1.6.3.1.1.4.1.0"]);
    assert!(oids.contains(&"1.3.6.1.6.3.18.1.3.0") && oids.contains(&"1.3.6.1.4.1.534.1.1.1.0"));
    // A generic v1 trap becomes its standard OID.
    run(
        "snmptrap",
        &["-v", "1", "-c", "x", &to, "1.3.6.1.4.1.9", "", "0", "0", ""],
    );
    let cold = next(&mut received, 1).await.remove(0);
    assert_eq!(cold.trap.unwrap().name.as_deref(), Some("coldStart"));

    // An inform: snmpinform succeeds only when the receiver answers.
    run(
        "snmpinform",
        &[
            "-v",
            "2c",
            "-c",
            "plant-trap",
            "-t",
            "2",
            "-r",
            "0",
            &to,
            "",
            "1.3.6.1.2.1.33.2.1",
        ],
    );
    let inform = next(&mut received, 1).await.remove(0);
    let trap = inform.trap.as_ref().unwrap();
    assert!(trap.inform);
    assert_eq!(
        (trap.name.as_deref(), inform.severity),
        (Some("upsTrapOnBattery"), EventSeverity::Critical)
    );
    // Each event has its own uid.
    assert_ne!(down.uid, v1.uid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_udp_and_tcp_in_both_formats_and_framings() {
    let (_, port, mut received, _receivers) = started().await;
    let port_text = port.to_string();
    let logger = |transport: &str, format: &str, message: &str| {
        run(
            "logger",
            &[
                transport,
                format,
                "--server",
                "127.0.0.1",
                "--port",
                &port_text,
                "-p",
                "local4.err",
                "-t",
                "gateway",
                message,
            ],
        );
    };
    logger("--udp", "--rfc5424", "Modbus link lost");
    logger("--udp", "--rfc3164", "Modbus link back");
    logger("--tcp", "--rfc5424", "over tcp, octet counted");
    let events = next(&mut received, 3).await;
    for event in &events {
        let s = event.syslog.as_ref().unwrap();
        assert_eq!(
            (s.facility.as_str(), event.severity),
            ("local4", EventSeverity::Error)
        );
        assert_eq!(s.program.as_deref(), Some("gateway"), "{event:?}");
        assert_eq!(event.source, "127.0.0.1");
    }
    let formats: Vec<&str> = events
        .iter()
        .map(|e| e.syslog.as_ref().unwrap().format.as_str())
        .collect();
    assert_eq!(formats, ["rfc5424", "rfc3164", "rfc5424"]);
    assert_eq!(events[2].message, "over tcp, octet counted");

    // Newline framing, and octet counting with a newline inside a message, on one connection.
    use tokio::io::AsyncWriteExt as _;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let counted = "<14>1 - host app - - - two\nlines";
    let body = format!(
        "<13>Dec  4 10:00:00 hmi-3 runtime: tag A1 out of range\n{} {counted}",
        counted.len()
    );
    stream.write_all(body.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let events = next(&mut received, 2).await;
    assert_eq!(events[0].message, "tag A1 out of range");
    assert_eq!(events[1].message, "two\nlines");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_limited_per_sender_and_counted_not_fatal() {
    let (_, port, mut received, receivers) = started().await;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // 2,000 messages in 40 ms (paced so that the kernel's socket buffer does not drop them
    // before the receiver sees them).
    for chunk in 0..20 {
        for n in 0..100 {
            let text = format!("<14>flood {}", chunk * 100 + n);
            let _ = socket.send_to(text.as_bytes(), ("127.0.0.1", port));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = receivers.counts();
    let limited = counts.rate_limited.load(Ordering::Relaxed);
    assert!(limited >= 1_000, "only {limited} limited");
    let mut got = 0;
    while let Ok(Some(lines)) =
        tokio::time::timeout(Duration::from_millis(300), received.recv()).await
    {
        got += lines.count;
    }
    assert!(got >= RATE_BURST as usize && got < 2_000, "{got} forwarded");
    // The receiver still takes another sender's message.
    logger_udp(port, "still here");
    let after = next(&mut received, 1).await;
    assert!(after[0].message.contains("still here"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_held_by_another_program_is_opened_once_it_is_free() {
    // Another program holds the syslog port (on every address, as the receiver asks).
    let holder = std::net::UdpSocket::bind("[::]:0")
        .or_else(|_| std::net::UdpSocket::bind("0.0.0.0:0"))
        .unwrap();
    let port = holder.local_addr().unwrap().port();
    let (lines, mut received) = LineSender::channel(16);
    let mut receivers = EventReceivers::new(lines);
    let mut config = CollectorConfig::default();
    config.receivers.syslog = parse_listens(&format!("udp:{port}")).unwrap();
    receivers.apply(&config).await;
    let problem = receivers.retry().await.expect("the port is taken");
    assert!(
        problem.contains(&format!("syslog on udp:{port}")),
        "{problem}"
    );
    // Freed: the next retry (each configuration pull) opens it, and messages come in.
    drop(holder);
    assert_eq!(receivers.retry().await, None);
    logger_udp(port, "opened late");
    let events = next(&mut received, 1).await;
    assert!(events[0].message.contains("opened late"));
    // The same configuration again changes nothing.
    receivers.apply(&config).await;
    assert_eq!(receivers.retry().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmpv3_traps_of_a_known_user_are_read_and_others_kept_as_unreadable() {
    use plantwatch_shared::api::{
        AuthProtocol, CredentialKind, CredentialParams, PrivProtocol, TargetCredential,
    };
    let (port, syslog, mut received, mut receivers) = started().await;
    // The collector's configuration carries the v3 credential of one of its nodes.
    let config = CollectorConfig {
        credentials: vec![TargetCredential {
            id: 7,
            name: "ups-v3".into(),
            kind: CredentialKind::SnmpV3,
            params: CredentialParams {
                username: Some("trapper".into()),
                auth_protocol: Some(AuthProtocol::Sha256),
                priv_protocol: Some(PrivProtocol::Aes128),
                ..CredentialParams::default()
            },
            secrets: [
                ("auth_password".to_owned(), "auth-secret-1".into()),
                ("priv_password".to_owned(), "priv-secret-1".into()),
            ]
            .into(),
            networks: Vec::new(),
        }],
        receivers: Receivers {
            traps: parse_listens(&format!("udp:{port}")).unwrap(),
            syslog: parse_listens(&format!("udp:{syslog},tcp:{syslog}")).unwrap(),
        },
        ..CollectorConfig::default()
    };
    receivers.apply(&config).await;
    let to = format!("udp:127.0.0.1:{port}");
    let v3 = |user: &str, auth: &str, engine: &str, oid: &str| {
        run(
            "snmptrap",
            &[
                "-v",
                "3",
                "-u",
                user,
                "-l",
                "authPriv",
                "-a",
                "SHA-256",
                "-A",
                auth,
                "-x",
                "AES",
                "-X",
                "priv-secret-1",
                "-e",
                engine,
                &to,
                "",
                oid,
                "1.3.6.1.2.1.2.2.1.1.4",
                "i",
                "4",
            ],
        );
    };
    v3(
        "trapper",
        "auth-secret-1",
        "0x80001f8880aabbccdd01",
        "1.3.6.1.6.3.1.1.5.3",
    );
    let down = next(&mut received, 1).await.remove(0);
    let trap = down.trap.as_ref().unwrap();
    assert_eq!(
        (trap.version.as_str(), trap.name.as_deref()),
        ("v3", Some("linkDown")),
        "{down:?}"
    );
    assert!(
        trap.varbinds
            .iter()
            .any(|v| v.oid == "1.3.6.1.2.1.2.2.1.1.4" && v.value == "4")
    );
    // A second engine (another device) with the same user: its own keys.
    v3(
        "trapper",
        "auth-secret-1",
        "0x80001f8880aabbccdd02",
        "1.3.6.1.6.3.1.1.5.4",
    );
    let up = next(&mut received, 1).await.remove(0);
    assert_eq!(up.trap.unwrap().name.as_deref(), Some("linkUp"));
    // A wrong password and an unknown user are not dropped silently: kept, and say why.
    v3(
        "trapper",
        "wrong-secret",
        "0x80001f8880aabbccdd01",
        "1.3.6.1.6.3.1.1.5.3",
    );
    let wrong = next(&mut received, 1).await.remove(0);
    assert!(
        wrong.message.starts_with("unreadable SNMPv3 trap") && wrong.message.contains("Signature"),
        "{}",
        wrong.message
    );
    assert_eq!(wrong.severity, EventSeverity::Warning);
    v3(
        "stranger",
        "auth-secret-1",
        "0x80001f8880aabbccdd01",
        "1.3.6.1.6.3.1.1.5.3",
    );
    let stranger = next(&mut received, 1).await.remove(0);
    assert!(
        stranger.message.contains("unknown SNMPv3 user 'stranger'"),
        "{}",
        stranger.message
    );
}
