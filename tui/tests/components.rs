//! `plantwatch tokens`, `plantwatch collectors` and `plantwatch agents` against the real server,
//! with a real `plantwatch-collector` enrolling in between.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::process::Command;

use common::{CLI, login, ok, plantwatch, start_server, stderr};
use plantwatch_shared::api::JoinCode;
use serde_json::Value;

#[test]
fn tokens_collectors_and_agents_from_the_command_line() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    ok(&login(&server, config.path()));
    let cli = |args: &[&str]| plantwatch(config.path(), args, "");

    let created = cli(&[
        "tokens",
        "create",
        "plant 4",
        "--expires",
        "7d",
        "--max-uses",
        "3",
    ]);
    let code = ok(&created);
    assert_eq!(
        code.lines().count(),
        1,
        "only the join code on stdout: {code}"
    );
    let join: JoinCode = code.trim().parse().unwrap();
    assert_eq!(join.url, server.url);
    assert_eq!(join.fingerprint.unwrap().to_string(), server.fingerprint);
    assert!(
        stderr(&created).contains("shown only now"),
        "{}",
        stderr(&created)
    );
    let tokens = ok(&cli(&["tokens", "list"]));
    assert!(tokens.contains("plant 4"), "{tokens}");
    assert!(tokens.contains("active"), "{tokens}");
    assert!(tokens.contains("0/3"), "{tokens}");
    assert!(
        !tokens.contains(join.token.expose()),
        "the token is never listed"
    );

    // A real collector enrolls with it.
    let state = tempfile::tempdir().unwrap();
    let collector = plantwatch_testkit::binary_beside(CLI, "plantwatch-collector");
    let mut enroll = Command::new(collector);
    enroll.arg("--state-dir").arg(state.path()).args([
        "enroll",
        "--name",
        "north",
        "--machine-id",
        "m-north",
    ]);
    ok(&plantwatch_testkit::run_with_input(enroll, &code));

    let listed = ok(&cli(&["collectors", "list"]));
    let north = listed.lines().find(|l| l.contains("north")).unwrap();
    assert!(north.contains("pending"), "{listed}");
    assert!(listed.contains("local (server)"), "{listed}");
    let approved = cli(&["collectors", "approve", "NORTH"]);
    ok(&approved);
    assert!(stderr(&approved).contains("Approved collector \"north\""));
    let json: Value =
        serde_json::from_str(&ok(&cli(&["collectors", "list", "-o", "json"]))).unwrap();
    let north = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "north")
        .unwrap();
    assert_eq!(north["status"], "online", "registration counts as contact");
    let pending = ok(&cli(&["collectors", "list", "--status", "pending"]));
    assert!(!pending.contains("north"), "{pending}");

    let revoked = cli(&["collectors", "revoke", "north", "--yes"]);
    ok(&revoked);
    let listed = ok(&cli(&["collectors", "list"]));
    assert!(
        listed
            .lines()
            .any(|l| l.contains("north") && l.contains("revoked")),
        "{listed}"
    );
    ok(&cli(&["collectors", "delete", "north", "--yes"]));
    assert!(!ok(&cli(&["collectors", "list"])).contains("north"));

    let missing = cli(&["collectors", "approve", "nosuch"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("there is no collector \"nosuch\""));
    let local = cli(&["collectors", "revoke", "local", "--yes"]);
    assert_eq!(local.status.code(), Some(1));
    assert!(
        stderr(&local).contains("own collector"),
        "{}",
        stderr(&local)
    );

    let agents = ok(&cli(&["agents", "list"]));
    assert!(agents.starts_with("ID"), "{agents}");
    assert!(agents.contains("NODE"), "{agents}");

    ok(&cli(&["tokens", "revoke", "plant 4"]));
    let tokens = ok(&cli(&["tokens", "list"]));
    assert!(tokens.contains("revoked"), "{tokens}");
    let bad = cli(&["tokens", "create", "x", "--expires", "5y"]);
    assert_eq!(bad.status.code(), Some(2), "a usage error");
}

#[test]
fn events_are_received_listed_and_followed_from_the_command_line() {
    use std::io::BufRead as _;
    use std::time::{Duration, Instant};

    let data = tempfile::tempdir().unwrap();
    let server = common::start_polling_server(data.path());
    let config = tempfile::tempdir().unwrap();
    ok(&login(&server, config.path()));
    let cli = |args: &[&str]| plantwatch(config.path(), args, "");
    let port = plantwatch_testkit::free_port().to_string();

    let shown = ok(&cli(&["collectors", "receivers", "local"]));
    assert!(shown.contains("off"), "{shown}");
    let bad = cli(&["collectors", "receivers", "local", "--traps", "tcp:162"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(stderr(&bad).contains("UDP only"), "{}", stderr(&bad));
    // `set` is `receivers` too, as the issue wrote it.
    let set = ok(&cli(&[
        "collectors",
        "set",
        "local",
        "--syslog",
        &format!("udp:{port}"),
    ]));
    assert!(set.contains(&format!("udp:{port}")), "{set}");
    let agents = cli(&["agents", "receivers", "x"]);
    assert_eq!(agents.status.code(), Some(2));

    let logger = |message: &str| {
        let status = Command::new("logger")
            .args([
                "--udp",
                "--server",
                "127.0.0.1",
                "--port",
                &port,
                "-p",
                "daemon.err",
            ])
            .args(["-t", "historian", message])
            .status()
            .unwrap();
        assert!(status.success());
    };
    // Resent until the collector has its receiver (it pulls its configuration every 10 s).
    let started = Instant::now();
    loop {
        logger("archive disk 91 % full");
        let listed: Value = serde_json::from_str(&ok(&cli(&[
            "events",
            "list",
            "--severity",
            "error",
            "-o",
            "json",
        ])))
        .unwrap();
        if listed["total"].as_u64().unwrap() > 0 {
            let first = &listed["items"][0];
            assert_eq!(first["message"], "archive disk 91 % full");
            assert_eq!(first["syslog"]["program"], "historian");
            assert_eq!(first["node_id"], Value::Null);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no event listed"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let table = ok(&cli(&["events", "list", "--unknown", "-q", "archive"]));
    assert!(
        table.contains("unknown 127.0.0.1") && table.contains("historian"),
        "{table}"
    );
    assert!(
        ok(&cli(&["events", "list", "--severity", "critical"]))
            .lines()
            .count()
            <= 1
    );

    // tail -f prints what arrives after it started.
    let mut follow = Command::new(CLI)
        .args(["events", "tail", "-n", "1", "-f"])
        .env("XDG_CONFIG_HOME", config.path())
        .env_remove("PLANTWATCH_CONTEXT")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if sender.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    logger("archive disk 95 % full");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("95 %")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("tail -f showed no new event: {seen:?}"),
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();

    // Event rules: names, built-ins, a custom rule that opens an alert from a syslog line.
    let names = ok(&cli(&["event-rules", "names"]));
    assert!(
        names.contains("linkDown") && names.contains("1.3.6.1.6.3.1.1.5.3"),
        "{names}"
    );
    let list = ok(&cli(&["event-rules", "list"]));
    assert!(
        list.lines()
            .any(|l| l.contains("trap_link_down") && l.contains("linkUp") && l.contains("1 d")),
        "{list}"
    );
    assert!(
        !list.contains("cpu_high"),
        "metric rules are not listed: {list}"
    );
    let bad = cli(&["event-rules", "create", "odd", "--trap", "linkSideways"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(stderr(&bad).contains("linkSideways"), "{}", stderr(&bad));
    let kept = cli(&[
        "event-rules",
        "update",
        "trap_link_down",
        "--trap",
        "coldStart",
    ]);
    assert_ne!(kept.status.code(), Some(0));
    assert!(stderr(&kept).contains("built in"), "{}", stderr(&kept));
    ok(&cli(&[
        "event-rules",
        "update",
        "trap_link_down",
        "--expire",
        "2h",
    ]));
    assert!(
        ok(&cli(&["event-rules", "show", "trap_link_down"])).contains("2 h"),
        "the expiry tuned"
    );
    ok(&cli(&[
        "event-rules",
        "create",
        "archive_full",
        "--kind",
        "syslog",
        "--program",
        "historian",
        "--text",
        "disk * full",
        "--severity",
        "critical",
        "--expire",
        "30m",
        "--key",
        "program",
    ]));
    let rules = ok(&cli(&["rules", "list"]));
    assert!(
        rules.contains("events: syslog program=historian"),
        "{rules}"
    );
    let started = Instant::now();
    loop {
        logger("archive disk 97 % full");
        let alerts: Value =
            serde_json::from_str(&ok(&cli(&["alerts", "list", "-o", "json"]))).unwrap();
        let items = alerts["items"].as_array().unwrap();
        if let Some(alert) = items.iter().find(|a| a["rule"] == "archive_full") {
            assert_eq!(alert["severity"], "critical");
            assert_eq!(alert["message"], "archive disk 97 % full");
            assert_eq!(alert["series"], "event{program=historian,source=127.0.0.1}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no archive_full alert: {alerts}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let metric = cli(&["event-rules", "delete", "cpu_high", "-y"]);
    assert_eq!(metric.status.code(), Some(2), "{}", stderr(&metric));
    ok(&cli(&["event-rules", "delete", "archive_full", "-y"]));
    assert!(!ok(&cli(&["event-rules", "list"])).contains("archive_full"));
}

#[test]
fn topology_is_shown_drawn_and_turned_into_parents_from_the_command_line() {
    use std::time::{Duration, Instant};

    // The Nexus 5548 and the ProCurve blade switch of snmpsim-data, which see each other by
    // LLDP (the parts LLDP needs, so snmpsim starts at once).
    let sim_data = tempfile::tempdir().unwrap();
    for (name, recording) in [
        ("nx-5548", "network/switch/cisco-n5000"),
        ("procurve-1", "network/switch/hpe-procurve-516733-b21"),
    ] {
        plantwatch_testkit::snmp::stage_recording_part(
            recording,
            sim_data.path(),
            name,
            &["1.3.6.1.2.1.1", "1.3.6.1.2.1.31.1.1.1.1", "1.0.8802.1.1.2"],
        );
    }
    let sim = plantwatch_testkit::snmp::snmpsim(sim_data.path(), "nx-5548");
    let data = tempfile::tempdir().unwrap();
    let server = common::start_polling_server(data.path());
    let config = tempfile::tempdir().unwrap();
    ok(&login(&server, config.path()));
    let cli = |args: &[&str], stdin: &str| plantwatch(config.path(), args, stdin);
    for (name, template) in [("nx-5548", "cisco-nxos"), ("procurve-1", "hpe-procurve")] {
        ok(&cli(
            &[
                "credentials",
                "create",
                name,
                "-k",
                "snmp_v2c",
                "--secrets-stdin",
            ],
            &format!("{name}\n"),
        ));
        ok(&cli(
            &[
                "nodes",
                "create",
                name,
                "--address",
                &sim.address,
                "--template",
                template,
                "--credential",
                name,
            ],
            "",
        ));
    }
    let started = Instant::now();
    let tree = loop {
        let tree = ok(&cli(&["topology", "show", "nx-5548"], ""));
        if tree.contains("procurve-1") {
            break tree;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no link: {tree}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(
        tree.starts_with("nx-5548 (") && tree.contains("\n  Ethernet1/19 → procurve-1 [17] ("),
        "{tree}"
    );
    let dot = ok(&cli(&["topology", "show", "--format", "dot"], ""));
    assert!(
        dot.contains(
            "\"nx-5548\" -- \"procurve-1\" [taillabel=\"Ethernet1/19\", headlabel=\"17\"]"
        ),
        "{dot}"
    );
    let svg = ok(&cli(
        &["topology", "export", "nx-5548", "--format", "svg"],
        "",
    ));
    assert!(
        svg.starts_with("<svg") && svg.contains(">procurve-1</text>"),
        "{svg}"
    );
    let unmanaged = ok(&cli(&["topology", "unmanaged"], ""));
    assert!(unmanaged.contains("NWPU-CA-5548-02"), "{unmanaged}");
    // What the polls stored, for scripts: the series, and one metric over time as CSV.
    let series = ok(&cli(
        &["metrics", "list", "procurve-1", "--measurement", "snmp"],
        "",
    ));
    assert!(
        series
            .lines()
            .any(|l| l.starts_with("snmp.up ") && l.contains(" gauge ") && l.contains(" 1 ")),
        "{series}"
    );
    assert!(
        series.lines().skip(1).all(|l| l.starts_with("snmp.")),
        "{series}"
    );
    let csv = ok(&cli(
        &[
            "metrics",
            "query",
            "procurve-1",
            "snmp.up",
            "--from",
            "10m",
            "--step",
            "1m",
            "-o",
            "csv",
        ],
        "",
    ));
    assert!(csv.starts_with("TIME,METRIC,TAGS,VALUE\n"), "{csv}");
    assert!(
        csv.lines().skip(1).any(|l| l.ends_with(",snmp.up,,1")),
        "{csv}"
    );
    let bad = cli(
        &[
            "metrics",
            "query",
            "procurve-1",
            "snmp.up",
            "--from",
            "yesterday",
        ],
        "",
    );
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    // A chart of it for a ticket: SVG by default, PNG by the file's extension.
    let pictures = tempfile::tempdir().unwrap();
    let svg_path = pictures.path().join("up.svg");
    let png_path = pictures.path().join("up.png");
    for path in [&svg_path, &png_path] {
        let path = path.to_str().unwrap();
        let said = cli(
            &[
                "metrics",
                "export",
                "procurve-1",
                "snmp.up",
                "--from",
                "10m",
                "--file",
                path,
            ],
            "",
        );
        ok(&said);
        let said = String::from_utf8_lossy(&said.stderr).into_owned();
        assert!(said.starts_with(&format!("Wrote {path} (1 line")), "{said}");
    }
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("procurve-1 · snmp.up"),
        "{svg}"
    );
    assert!(std::fs::read(&png_path).unwrap().starts_with(b"\x89PNG"));
    let none = cli(
        &[
            "metrics",
            "export",
            "procurve-1",
            "snmp.up",
            "--tag",
            "ifName=Gi9/9",
        ],
        "",
    );
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr)
            .contains("procurve-1 has no snmp.up with ifName=Gi9/9"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    // Parents from the wiring: the ProCurve under the Nexus, set in one go.
    let suggested = ok(&cli(
        &["topology", "suggest-parents", "--root", "nx-5548"],
        "",
    ));
    assert!(
        suggested.lines().any(|l| l.starts_with("procurve-1")
            && l.contains("nx-5548")
            && l.contains("Ethernet1/19")),
        "{suggested}"
    );
    ok(&cli(
        &[
            "topology",
            "suggest-parents",
            "--root",
            "nx-5548",
            "--apply",
            "--only",
            "procurve-1",
            "-y",
        ],
        "",
    ));
    let node: Value =
        serde_json::from_str(&ok(&cli(&["nodes", "get", "procurve-1", "-o", "json"], ""))).unwrap();
    assert_eq!(node["parent"], "nx-5548");
    // Automatic parents: the local collector's nodes follow the wiring from the Nexus; a
    // parent taken away by hand comes back at once.
    ok(&cli(&["nodes", "update", "procurve-1", "--parent", ""], ""));
    let parent = || {
        let node: Value =
            serde_json::from_str(&ok(&cli(&["nodes", "get", "procurve-1", "-o", "json"], "")))
                .unwrap();
        node["parent"].clone()
    };
    assert_eq!(parent(), Value::Null);
    let applied = ok(&cli(
        &["topology", "auto-parents", "local", "--root", "nx-5548"],
        "",
    ));
    assert!(
        applied
            .lines()
            .any(|l| l.starts_with("procurve-1") && l.contains(" - ") && l.contains("nx-5548")),
        "{applied}"
    );
    assert_eq!(parent(), "nx-5548");
    let listed = ok(&cli(&["topology", "auto-parents"], ""));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("local") && l.ends_with("from nx-5548")),
        "{listed}"
    );
    ok(&cli(&["topology", "auto-parents", "local", "--off"], ""));
    let listed = ok(&cli(&["topology", "auto-parents"], ""));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("local") && l.ends_with("off")),
        "{listed}"
    );
    assert_eq!(parent(), "nx-5548", "turning it off keeps the parents");
}
