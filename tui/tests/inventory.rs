//! `plantwatch nodes …` and `plantwatch credentials …` against the real server binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::{login, ok, plantwatch, start_server, stderr};
use std::time::Duration;

use serde_json::Value;

#[test]
fn nodes_and_credentials_are_managed_from_the_command_line() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    ok(&login(&server, cfg));

    // The secret comes from standard input, never from argv; listings mask it.
    let created = plantwatch(
        cfg,
        &[
            "credentials",
            "create",
            "plant-ro",
            "--kind",
            "snmp_v2c",
            "--secrets-stdin",
        ],
        "Pw9-community-value\n",
    );
    assert!(!ok(&created).contains("Pw9-community-value"));
    let listed = ok(&plantwatch(cfg, &["credentials", "list"], ""));
    assert!(
        listed.contains("plant-ro") && listed.contains("community=***"),
        "{listed}"
    );
    let v3 = plantwatch(
        cfg,
        &[
            "credentials",
            "create",
            "v3",
            "-k",
            "snmp_v3",
            "--username",
            "mon",
            "--auth-protocol",
            "sha256",
            "--priv-protocol",
            "aes128",
            "--secrets-stdin",
        ],
        "auth-pass-phrase\npriv-pass-phrase\n",
    );
    ok(&v3);
    let missing = plantwatch(
        cfg,
        &[
            "credentials",
            "create",
            "v3b",
            "-k",
            "snmp_v3",
            "--username",
            "mon",
            "--auth-protocol",
            "md5",
            "--secrets-stdin",
        ],
        "",
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("auth_password"),
        "{}",
        stderr(&missing)
    );

    ok(&plantwatch(
        cfg,
        &[
            "nodes",
            "create",
            "sw1",
            "-a",
            "10.0.0.1",
            "-t",
            "network",
            "--tag",
            "core",
            "--credential",
            "plant-ro",
        ],
        "",
    ));
    let plc = ok(&plantwatch(
        cfg,
        &[
            "nodes",
            "create",
            "plc-1",
            "-a",
            "plc1.plant.example",
            "-t",
            "plc",
            "--parent",
            "sw1",
            "--interval",
            "30",
        ],
        "",
    ));
    assert!(
        plc.contains("parent       sw1") && plc.contains("discovering"),
        "{plc}"
    );
    // Every bad argument value is a usage error (2), whether clap or the command finds it.
    for args in [
        &["nodes", "create", "plc-2", "-a", "10.0.0.300"][..],
        &[
            "nodes",
            "create",
            "plc-2",
            "-a",
            "10.0.0.3",
            "--interval",
            "0",
        ],
        &["nodes", "create", "plc-2", "-a", "10.0.0.3", "--tag", "a b"],
        &["nodes", "create", "pl\u{202E}c", "-a", "10.0.0.3"],
        &["nodes", "update", "sw1", "--interval", "soon"],
        &["nodes", "update", "sw1"],
        &[
            "rules",
            "create",
            "r",
            "--metric",
            "x.y",
            "--warning",
            "1",
            "--match",
            "nokey",
        ],
        &["maintenance", "create", "--duration", "1h"],
        &["discovery", "run", "127.0.0.0/30", "--tcp-ports", "70000"],
    ] {
        let bad = plantwatch(cfg, args, "");
        assert_eq!(bad.status.code(), Some(2), "{args:?}: {}", stderr(&bad));
    }
    let bad = plantwatch(cfg, &["nodes", "create", "plc-2", "-a", "10.0.0.300"], "");
    assert!(stderr(&bad).contains("address"), "{}", stderr(&bad));
    let usage = plantwatch(
        cfg,
        &["nodes", "create", "plc-2", "-a", "10.0.0.3", "-t", "robot"],
        "",
    );
    assert_eq!(usage.status.code(), Some(2));

    let json: Value = serde_json::from_str(&ok(&plantwatch(
        cfg,
        &["nodes", "list", "--type", "plc", "-o", "json"],
        "",
    )))
    .unwrap();
    assert_eq!(json["total"], 1);
    assert_eq!(json["items"][0]["parent"], "sw1");
    let table = ok(&plantwatch(cfg, &["nodes", "list", "--sort", "-name"], ""));
    let names: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, ["sw1", "plc-1"]);
    let csv = ok(&plantwatch(
        cfg,
        &["nodes", "list", "-o", "csv", "--tag", "core"],
        "",
    ));
    assert!(
        csv.starts_with("ID,NAME,ADDRESS") && csv.contains(",sw1,10.0.0.1,network,"),
        "{csv}"
    );

    let updated = ok(&plantwatch(
        cfg,
        &[
            "nodes",
            "update",
            "plc-1",
            "--parent",
            "",
            "--notes",
            "press hall",
        ],
        "",
    ));
    assert!(
        updated.contains("parent       -") && updated.contains("press hall"),
        "{updated}"
    );
    ok(&plantwatch(
        cfg,
        &["credentials", "attach", "plant-ro", "plc-1", "sw1"],
        "",
    ));
    let got = ok(&plantwatch(cfg, &["nodes", "get", "PLC-1"], ""));
    assert!(got.contains("plant-ro (snmp_v2c)"), "{got}");
    ok(&plantwatch(
        cfg,
        &["credentials", "detach", "plant-ro", "plc-1"],
        "",
    ));
    let revealed = ok(&plantwatch(
        cfg,
        &["credentials", "get", "plant-ro", "--reveal"],
        "",
    ));
    assert!(
        revealed.contains("community=Pw9-community-value"),
        "{revealed}"
    );

    let refused = plantwatch(cfg, &["nodes", "delete", "plc-1"], "");
    assert_eq!(refused.status.code(), Some(1), "no terminal: needs --yes");
    ok(&plantwatch(cfg, &["nodes", "delete", "plc-1", "--yes"], ""));
    ok(&plantwatch(
        cfg,
        &["credentials", "delete", "plant-ro", "-y"],
        "",
    ));
    let gone = plantwatch(cfg, &["nodes", "get", "plc-1"], "");
    assert!(stderr(&gone).contains("no node"), "{}", stderr(&gone));
}

#[test]
fn import_prints_the_plan_exits_3_on_rejected_rows_and_round_trips_through_export() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    ok(&login(&server, cfg));
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };

    let good = file(
        "good.csv",
        "name,address,type,tags,parent,interval_s,notes\n\
         sw1,10.0.0.1,network,core,,,\"hall 1, north\"\n\
         plc-1,10.0.0.2,plc,line-1;press,sw1,30,\n\
         hmi-1,fe80::1,hmi,line-1,sw1,,\n",
    );
    let dry = ok(&plantwatch(
        cfg,
        &["nodes", "import", &good, "--dry-run"],
        "",
    ));
    assert_eq!(dry.matches("create").count(), 3, "{dry}");
    let list = ok(&plantwatch(cfg, &["nodes", "list"], ""));
    assert_eq!(list.lines().count(), 1, "the dry run wrote: {list}");

    let applied = plantwatch(cfg, &["nodes", "import", &good], "");
    ok(&applied);
    assert!(
        stderr(&applied).contains("3 create") && stderr(&applied).contains("applied"),
        "{}",
        stderr(&applied)
    );

    let bad = file(
        "bad.csv",
        "name,address\nplc-9,10.0.0.9\nplc-10,10.0.0.300\n",
    );
    let rejected = plantwatch(cfg, &["nodes", "import", &bad], "");
    assert_eq!(rejected.status.code(), Some(3));
    let plan = String::from_utf8_lossy(&rejected.stdout).to_string();
    assert!(
        plan.lines()
            .any(|l| l.starts_with("2 ") && l.contains("error") && l.contains("address")),
        "{plan}"
    );
    // Only the problem rows are printed, then how many good rows wait.
    assert!(!plan.contains("plc-9"), "{plan}");
    assert!(
        stderr(&rejected).contains("1 row(s) with problems (above); 1 good row(s) not written"),
        "{}",
        stderr(&rejected)
    );
    let json: Value = serde_json::from_slice(
        &plantwatch(cfg, &["nodes", "import", &bad, "-o", "json"], "").stdout,
    )
    .unwrap();
    assert_eq!(json["applied"], false);
    assert_eq!(json["rows"][1]["errors"][0]["column"], "address");
    let partial = plantwatch(cfg, &["nodes", "import", &bad, "--partial"], "");
    assert_eq!(
        partial.status.code(),
        Some(3),
        "partial: rows were still rejected"
    );

    let header = file("header.csv", "hostname,ip\nx,10.0.0.1\n");
    let failed = plantwatch(cfg, &["nodes", "import", &header], "");
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).contains("unknown column \"hostname\""),
        "{}",
        stderr(&failed)
    );
    let missing = plantwatch(cfg, &["nodes", "import", "/nonexistent.csv"], "");
    assert_eq!(missing.status.code(), Some(1));

    // Export, then import the file unchanged with --upsert: nothing changes.
    let exported = dir.path().join("export.csv");
    ok(&plantwatch(
        cfg,
        &[
            "nodes",
            "export",
            "-o",
            "csv",
            "--file",
            exported.to_str().unwrap(),
        ],
        "",
    ));
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        text.starts_with(
            "name,address,type,tags,collector,template,credentials,parent,interval_s,notes,checks,modbus_unit\n"
        ),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5, "{text}");
    let again = plantwatch(
        cfg,
        &["nodes", "import", exported.to_str().unwrap(), "--upsert"],
        "",
    );
    let plan = ok(&again);
    assert_eq!(plan.matches("unchanged").count(), 4, "{plan}");
    let stdout_export = ok(&plantwatch(cfg, &["nodes", "export", "-o", "json"], ""));
    let specs: Value = serde_json::from_str(&stdout_export).unwrap();
    assert_eq!(specs.as_array().unwrap().len(), 4);

    // JSON on standard input, as a pipeline would send it.
    let piped = plantwatch(
        cfg,
        &["nodes", "import", "-", "-o", "json"],
        r#"[{"name": "ups-1", "address": "10.0.0.40", "type": "ups", "parent": "sw1"}]"#,
    );
    let report: Value = serde_json::from_str(&ok(&piped)).unwrap();
    assert_eq!(report["summary"]["create"], 1, "{report}");
    let ups = ok(&plantwatch(cfg, &["nodes", "get", "ups-1"], ""));
    assert!(ups.contains("parent       sw1"), "{ups}");
}

#[test]
fn service_checks_are_added_listed_removed_and_their_certificates_shown() {
    use plantwatch_testkit::tls::{self, LegacyServer, Pki};
    // An HMI on loopback with a certificate from the plant's CA, expiring in 20 days.
    let pki = Pki::new();
    let hmi = LegacyServer::modern(&pki.leaf(&["localhost"], tls::days(-10), tls::days(20)));
    let port = hmi.address.port();
    let data = tempfile::tempdir().unwrap();
    // The server's own collector runs the checks (the only address is loopback).
    let server = common::start_polling_server(data.path());
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    ok(&login(&server, cfg));
    let port_check = format!("tcp:{port}");
    ok(&plantwatch(
        cfg,
        &[
            "nodes",
            "create",
            "hmi-1",
            "-a",
            "127.0.0.1",
            "-t",
            "hmi",
            "--check",
            &port_check,
        ],
        "",
    ));
    let listed = ok(&plantwatch(cfg, &["checks", "list", "hmi-1"], ""));
    assert!(listed.contains(&port_check), "{listed}");

    // The plant's CA from a file: trust is then required. A file that is no CA is refused.
    let ca = config.path().join("plant-ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let ca = ca.to_str().unwrap();
    let with_ca = format!("tls:{port}@127.0.0.1");
    let refused = plantwatch(cfg, &["checks", "add", "hmi-1", &with_ca, "--ca", ca], "");
    assert_ne!(refused.status.code(), Some(0));
    assert!(stderr(&refused).contains("CA"), "{}", stderr(&refused));
    std::fs::write(ca, pki.root_pem()).unwrap();
    let added = ok(&plantwatch(
        cfg,
        &["checks", "add", "hmi-1", &with_ca, "--ca", ca],
        "",
    ));
    assert!(
        added.contains("plant CA") && added.contains("trusted"),
        "{added}"
    );
    // Its settings change by id; back to the system's roots with --no-ca.
    let ca_id = added
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let set = ok(&plantwatch(
        cfg,
        &[
            "checks",
            "set",
            "hmi-1",
            ca_id,
            "--interval",
            "30",
            "--no-ca",
        ],
        "",
    ));
    assert!(set.contains("30 s") && !set.contains("plant CA"), "{set}");
    let missing = plantwatch(
        cfg,
        &["checks", "set", "hmi-1", "999", "--interval", "30"],
        "",
    );
    assert!(
        stderr(&missing).contains("has no check 999"),
        "{}",
        stderr(&missing)
    );
    let dns = ok(&plantwatch(
        cfg,
        &[
            "checks",
            "add",
            "hmi-1",
            "dns:historian.plant.test=10.0.0.5",
        ],
        "",
    ));
    assert!(dns.contains("answer 10.0.0.5"), "{dns}");
    let listed: Value = serde_json::from_str(&ok(&plantwatch(
        cfg,
        &["checks", "list", "hmi-1", "-o", "json"],
        "",
    )))
    .unwrap();
    for check in listed["items"].as_array().unwrap() {
        let id = check["id"].as_i64().unwrap().to_string();
        ok(&plantwatch(cfg, &["checks", "remove", "hmi-1", &id], ""));
    }

    let check = format!("tls:{port}@localhost");
    let added = ok(&plantwatch(
        cfg,
        &["checks", "add", "hmi-1", &check, "--interval", "10"],
        "",
    ));
    assert!(added.contains(&check) && added.contains("10 s"), "{added}");
    // A check without its port is a usage error, said before anything is sent.
    let bad = plantwatch(cfg, &["checks", "add", "hmi-1", "tcp"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("needs a port"), "{}", stderr(&bad));
    let listed: Value = serde_json::from_str(&ok(&plantwatch(
        cfg,
        &["checks", "list", "hmi-1", "-o", "json"],
        "",
    )))
    .unwrap();
    assert_eq!(listed["total"], 1);
    let id = listed["items"][0]["id"].as_i64().unwrap().to_string();

    // The collector runs it and the certificate is listed, soonest expiry first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let certificate = loop {
        let shown: Value = serde_json::from_str(&ok(&plantwatch(
            cfg,
            &["certs", "list", "--expiring", "30d", "-o", "json"],
            "",
        )))
        .unwrap();
        if shown["total"] == 1 {
            break shown["items"][0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no certificate: {shown}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(certificate["node"], "hmi-1");
    assert_eq!(certificate["port"], port);
    assert_eq!(certificate["name_matches"], true);
    // openssl sends the leaf alone: its intermediate is missing, so it is not trusted.
    assert_eq!(certificate["trusted"], false);
    let table = ok(&plantwatch(cfg, &["certs", "list"], ""));
    assert!(table.contains("hmi-1") && table.contains("19"), "{table}");
    let later = ok(&plantwatch(
        cfg,
        &["certs", "list", "--expiring", "10d", "-o", "json"],
        "",
    ));
    assert!(later.contains("\"total\": 0"), "{later}");

    ok(&plantwatch(cfg, &["checks", "remove", "hmi-1", &id], ""));
    let listed = ok(&plantwatch(
        cfg,
        &["checks", "list", "hmi-1", "-o", "json"],
        "",
    ));
    assert!(listed.contains("\"total\": 0"), "{listed}");
}

#[test]
fn a_vcenter_is_added_from_the_command_line_and_lists_its_hosts_and_vms() {
    use plantwatch_testkit::vcsim::{Model, PASSWORD, USER, Vcsim};
    // 8,000 VMs: an inventory document over the API's usual 1 MiB, made nodes in one go.
    let sim = Vcsim::start(&Model {
        vms: 4_000,
        ..Model::default()
    });
    let data = tempfile::tempdir().unwrap();
    let server = common::start_polling_server(data.path());
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    ok(&login(&server, cfg));

    // A fingerprint that is none is refused with the forms taken.
    let bad = plantwatch(
        cfg,
        &[
            "credentials",
            "create",
            "vc",
            "-k",
            "vsphere",
            "--username",
            USER,
            "--fingerprint",
            "nope",
            "--secrets-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        stderr(&bad).contains("not a SHA-256 fingerprint"),
        "{}",
        stderr(&bad)
    );
    ok(&plantwatch(
        cfg,
        &[
            "credentials",
            "create",
            "vc",
            "-k",
            "vsphere",
            "--username",
            USER,
            "--fingerprint",
            &sim.fingerprint,
            "--secrets-stdin",
        ],
        &format!("{PASSWORD}\n"),
    ));
    ok(&plantwatch(
        cfg,
        &["nodes", "create", "plc-1", "-a", "127.0.0.2"],
        "",
    ));
    let not_vcenter = plantwatch(cfg, &["nodes", "vsphere", "plc-1"], "");
    assert!(
        stderr(&not_vcenter).contains("only vcenter and esxi nodes"),
        "{}",
        stderr(&not_vcenter)
    );
    ok(&plantwatch(
        cfg,
        &[
            "nodes",
            "create",
            "vc01",
            "-a",
            &sim.address,
            "-t",
            "vcenter",
        ],
        "",
    ));
    let no_credential = plantwatch(cfg, &["nodes", "vsphere", "vc01"], "");
    assert!(
        stderr(&no_credential).contains("has no vsphere credential"),
        "{}",
        stderr(&no_credential)
    );
    ok(&plantwatch(
        cfg,
        &["nodes", "update", "vc01", "--credentials", "vc"],
        "",
    ));

    // The first poll follows the configuration: hosts, VMs and the datastore with their nodes.
    let listed = plantwatch_testkit::wait_until(Duration::from_secs(90), "the inventory", || {
        let out = ok(&plantwatch(cfg, &["nodes", "vsphere", "vc01"], ""));
        out.contains("DC0_C0_H0").then_some(out)
    });
    assert!(
        listed.contains("LocalDS_0") && listed.contains("DC0_H0_VM0"),
        "{listed}"
    );
    let json: Value = serde_json::from_str(&ok(&plantwatch(
        cfg,
        &["nodes", "vsphere", "vc01", "-o", "json"],
        "",
    )))
    .unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.iter().filter(|o| o["kind"] == "host").count(), 4);
    assert_eq!(items.iter().filter(|o| o["kind"] == "vm").count(), 8_000);
    assert!(
        items
            .iter()
            .filter(|o| o["kind"] != "datastore")
            .all(|o| o["node_id"].is_i64()),
        "every host and VM is a node"
    );
    let hosts = ok(&plantwatch(
        cfg,
        &["nodes", "list", "--tag", "cluster:DC0_C0"],
        "",
    ));
    assert_eq!(hosts.matches("DC0_C0_H").count(), 3, "{hosts}");
}
