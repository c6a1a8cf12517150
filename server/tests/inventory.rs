//! Inventory through the real server: nodes, the credentials vault, attach/detach, dirty
//! flags, batch import and export, and the role matrix of every inventory route.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use plantwatch_shared::api::ErrorCode;
use std::collections::BTreeMap;

use common::{TestApp, spawn_app, test_config};
use plantwatch_shared::Client;
use plantwatch_shared::api::{
    CreateCredentialRequest, CredentialKind, CredentialParams, ExportFormat, ImportOutcome,
    ImportQuery, NodeQuery, NodeSpec, NodeStatus, NodeType, Role, UpdateCredentialRequest,
    UpdateNodeRequest,
};
use reqwest::Method;
use rusqlite::Connection;
use serde_json::{Value, json};

fn spec(name: &str, address: &str) -> NodeSpec {
    NodeSpec {
        name: name.to_owned(),
        address: address.to_owned(),
        ..NodeSpec::default()
    }
}

fn community(name: &str, secret: &str) -> CreateCredentialRequest {
    CreateCredentialRequest {
        name: name.to_owned(),
        kind: CredentialKind::SnmpV2c,
        params: CredentialParams::default(),
        secrets: BTreeMap::from([("community".to_owned(), secret.into())]),
        networks: Vec::new(),
    }
}

fn db(app: &TestApp) -> Connection {
    let conn = Connection::open(app.dir.path().join("plantwatch.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// Registers a collector directly in the database (enrollment comes with a later issue).
fn add_collector(conn: &Connection, name: &str) -> i64 {
    conn.execute(
        "INSERT INTO remote_components (kind, name, machine_id, api_key_hash, approved, created_at)
         VALUES ('collector', ?1, ?1, 'x', 1, 0)",
        [name],
    )
    .unwrap();
    conn.last_insert_rowid()
}

fn dirty(conn: &Connection) -> Vec<i64> {
    let ids: Vec<i64> = conn
        .prepare("SELECT collector_id FROM collector_config_dirty ORDER BY collector_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    conn.execute("DELETE FROM collector_config_dirty", [])
        .unwrap();
    ids
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn role_matrix_of_every_inventory_route() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let clients = app.callers(&admin).await;
    let node_body = json!({"name": "new-{who}", "address": "10.9.9.9"});
    let cred_body =
        json!({"name": "new-{who}", "kind": "snmp_v1", "secrets": {"community": "c0mmunity"}});
    let rows: Vec<(Method, &str, Option<Value>, [u16; 4])> = vec![
        (Method::GET, "/api/v1/nodes", None, [401, 200, 200, 200]),
        (
            Method::POST,
            "/api/v1/nodes",
            Some(node_body),
            [401, 403, 201, 201],
        ),
        (
            Method::GET,
            "/api/v1/nodes/{node}",
            None,
            [401, 200, 200, 200],
        ),
        (
            Method::PATCH,
            "/api/v1/nodes/{node}",
            Some(json!({"notes": "x"})),
            [401, 403, 200, 200],
        ),
        (
            Method::DELETE,
            "/api/v1/nodes/{node}",
            None,
            [401, 403, 204, 204],
        ),
        (
            Method::GET,
            "/api/v1/nodes/{node}/history",
            None,
            [401, 200, 200, 200],
        ),
        (
            Method::PUT,
            "/api/v1/nodes/{node}/credentials/{cred}",
            Some(json!({"priority": 3})),
            [401, 403, 200, 200],
        ),
        (
            Method::DELETE,
            "/api/v1/nodes/{node}/credentials/{cred}",
            None,
            [401, 403, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/nodes/export",
            None,
            [401, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/credentials",
            None,
            [401, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/credentials?reveal=true",
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::POST,
            "/api/v1/credentials",
            Some(cred_body),
            [401, 403, 403, 201],
        ),
        (
            Method::GET,
            "/api/v1/credentials/{cred}",
            None,
            [401, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/credentials/{cred}?reveal=true",
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::PATCH,
            "/api/v1/credentials/{cred}",
            Some(json!({"name": "renamed-{n}"})),
            [401, 403, 403, 200],
        ),
        (
            Method::DELETE,
            "/api/v1/credentials/{cred}",
            None,
            [401, 403, 403, 204],
        ),
    ];
    let mut failures = Vec::new();
    let mut n = 0;
    for (method, path, body, expected) in &rows {
        for ((who, client), expected) in clients.iter().zip(expected) {
            // Fresh objects for every request, so a delete does not change the next answer.
            n += 1;
            let node = admin
                .create_node(&spec(&format!("node-{n}"), "10.0.0.1"))
                .await
                .unwrap();
            // Scoped to the node's network, so operators may attach it.
            let cred = admin
                .create_credential(&CreateCredentialRequest {
                    networks: vec!["10.0.0.0/8".into()],
                    ..community(&format!("cred-{n}"), "c0mm")
                })
                .await
                .unwrap();
            admin
                .attach_credential(node.id, cred.id, None)
                .await
                .unwrap();
            let path = path
                .replace("{node}", &node.id.to_string())
                .replace("{cred}", &cred.id.to_string());
            let body = body.as_ref().map(|b| {
                b.to_string()
                    .replace("{who}", who)
                    .replace("{n}", &n.to_string())
            });
            app.expect_status(
                &mut failures,
                who,
                client,
                method.clone(),
                &path,
                body,
                *expected,
            )
            .await;
        }
    }
    for (who, client) in &clients {
        let (status, _) = client
            .send_raw(
                Method::POST,
                "/api/v1/nodes/import",
                Some("text/csv"),
                format!("name,address\nimported-{who},10.1.1.1\n").into_bytes(),
            )
            .await
            .unwrap();
        let expected = match *who {
            "anonymous" => 401,
            "viewer" => 403,
            _ => 200,
        };
        if status != expected {
            failures.push(format!("{who} import: expected {expected}, got {status}"));
        }
    }
    assert!(failures.is_empty(), "role matrix:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn every_node_field_is_validated() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let mut cases: Vec<(NodeSpec, &str)> = vec![
        (spec("plc-1", "10.0.0.300"), "address"),
        (spec("plc-1", "fe80::zz"), "address"),
        (spec("plc-1", "plc_1.local"), "address"),
        (spec(" ", "10.0.0.1"), "name"),
        (spec(&"n".repeat(256), "10.0.0.1"), "name"),
    ];
    let mut with = |field: &'static str, edit: fn(&mut NodeSpec)| {
        let mut s = spec("plc-1", "10.0.0.1");
        edit(&mut s);
        cases.push((s, field));
    };
    with("tags", |s| s.tags = vec!["line 1".into()]);
    with("interval_s", |s| s.interval_s = Some(0));
    with("interval_s", |s| s.interval_s = Some(86_401));
    with("collector", |s| s.collector = Some("nowhere".into()));
    with("template", |s| s.template = Some("no-such-template".into()));
    with("credentials", |s| s.credentials = vec!["missing".into()]);
    with("parent", |s| s.parent = Some("no-such-node".into()));
    with("parent", |s| s.parent = Some("PLC-1".into()));
    with("notes", |s| s.notes = Some("x".repeat(4097)));
    with("notes", |s| {
        s.notes = Some("\u{1b}[2J cleared your screen".into())
    });
    for (bad, field) in cases {
        let err = admin.create_node(&bad).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(400), Some(ErrorCode::InvalidNode)),
            "{bad:?}: {err}"
        );
        let Some(plantwatch_shared::Error::Api {
            details: Some(details),
            ..
        }) = Some(&err)
        else {
            panic!("no details: {err}");
        };
        assert_eq!(details["field"], field, "{bad:?}: {err}");
    }
    // An unknown type is refused by the document itself, naming the choices.
    let (status, body) = admin
        .send_raw(
            Method::POST,
            "/api/v1/nodes",
            Some("application/json"),
            br#"{"name":"x","address":"10.0.0.1","type":"robot"}"#.to_vec(),
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        status == 422 && text.contains("robot") && text.contains("plc"),
        "{status} {text}"
    );
    // Nothing was written by any refused request.
    assert_eq!(
        admin.list_nodes(&NodeQuery::default()).await.unwrap().total,
        0
    );

    // A duplicate name (whatever its case) is a conflict naming the field.
    admin.create_node(&spec("plc-1", "10.0.0.1")).await.unwrap();
    let err = admin
        .create_node(&spec("PLC-1", "10.0.0.2"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(err.to_string().contains("name"), "{err}");

    // Cycles through parents are refused on update.
    let mut b = spec("sw-b", "10.0.0.2");
    b.parent = Some("plc-1".into());
    let b = admin.create_node(&b).await.unwrap();
    let mut c = spec("sw-c", "10.0.0.3");
    c.parent = Some("sw-b".into());
    admin.create_node(&c).await.unwrap();
    let a = admin
        .list_nodes(&NodeQuery {
            q: Some("plc-1".into()),
            ..NodeQuery::default()
        })
        .await
        .unwrap()
        .items[0]
        .clone();
    let close_loop = UpdateNodeRequest {
        parent: Some(Some("sw-c".into())),
        ..UpdateNodeRequest::default()
    };
    let err = admin.update_node(a.id, &close_loop).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidNode));
    assert!(err.to_string().contains("cycle"), "{err}");
    assert_eq!(admin.get_node(a.id).await.unwrap().parent_id, None);
    assert_eq!(
        admin.get_node(b.id).await.unwrap().parent.as_deref(),
        Some("plc-1")
    );
}

#[tokio::test]
async fn nodes_are_created_listed_filtered_sorted_updated_and_deleted() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    admin
        .create_credential(&community("plant-ro", "public-ro"))
        .await
        .unwrap();
    let mut sw = spec("core-sw", "10.0.0.1");
    sw.node_type = Some(NodeType::Network);
    sw.tags = vec!["line-1".into(), "core".into()];
    let sw = admin.create_node(&sw).await.unwrap();
    assert_eq!(sw.status, NodeStatus::Discovering);
    assert_eq!(sw.tags, ["core", "line-1"]);
    let mut plc = spec("PLC Press 2", "plc2.plant.example");
    plc.node_type = Some(NodeType::Plc);
    plc.parent = Some("core-sw".into());
    plc.credentials = vec!["plant-ro".into()];
    plc.interval_s = Some(30);
    let plc = admin.create_node(&plc).await.unwrap();
    assert_eq!((plc.parent_id, plc.interval_s), (Some(sw.id), Some(30)));
    assert_eq!(plc.credentials[0].name, "plant-ro");
    admin.create_node(&spec("hmi-1", "fe80::1")).await.unwrap();

    let list = |query: NodeQuery| {
        let admin = admin.clone();
        async move {
            let page = admin.list_nodes(&query).await.unwrap();
            (
                page.total,
                page.items.into_iter().map(|n| n.name).collect::<Vec<_>>(),
            )
        }
    };
    assert_eq!(
        list(NodeQuery::default()).await,
        (
            3,
            vec!["core-sw".into(), "hmi-1".into(), "PLC Press 2".into()]
        )
    );
    assert_eq!(
        list(NodeQuery {
            node_type: Some(NodeType::Plc),
            ..Default::default()
        })
        .await
        .1,
        ["PLC Press 2"]
    );
    assert_eq!(
        list(NodeQuery {
            tag: Some("core".into()),
            ..Default::default()
        })
        .await
        .1,
        ["core-sw"]
    );
    assert_eq!(
        list(NodeQuery {
            q: Some("PLANT.EXAMPLE".into()),
            ..Default::default()
        })
        .await
        .1,
        ["PLC Press 2"]
    );
    assert_eq!(
        list(NodeQuery {
            status: Some(NodeStatus::Healthy),
            ..Default::default()
        })
        .await
        .0,
        0
    );
    assert_eq!(
        list(NodeQuery {
            collector: Some("none".into()),
            ..Default::default()
        })
        .await
        .0,
        0
    );
    assert_eq!(
        list(NodeQuery {
            sort: Some("-address".into()),
            limit: Some(2),
            offset: Some(1),
            ..Default::default()
        })
        .await,
        (
            3,
            vec!["fe80::1".replace("fe80::1", "hmi-1"), "core-sw".into()]
        )
    );
    let err = admin
        .list_nodes(&NodeQuery {
            sort: Some("colour".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidSort));

    // Update: absent fields stay, null clears.
    let update = UpdateNodeRequest {
        name: Some("PLC Press 02".into()),
        parent: Some(None),
        interval_s: Some(None),
        ..UpdateNodeRequest::default()
    };
    let updated = admin.update_node(plc.id, &update).await.unwrap();
    assert_eq!(updated.name, "PLC Press 02");
    assert_eq!((updated.parent_id, updated.interval_s), (None, None));
    assert_eq!(updated.credentials.len(), 1);
    assert_eq!(updated.node_type, NodeType::Plc);
    let history = admin.node_history(plc.id).await.unwrap();
    let actions: Vec<&str> = history.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["node.update", "node.create"]);

    // Deleting a parent leaves its children without one.
    let child = admin
        .update_node(
            plc.id,
            &UpdateNodeRequest {
                parent: Some(Some("core-sw".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(child.parent_id, Some(sw.id));
    admin.delete_node(sw.id).await.unwrap();
    assert_eq!(admin.get_node(plc.id).await.unwrap().parent_id, None);
    assert_eq!(
        admin.get_node(sw.id).await.unwrap_err().code(),
        Some(ErrorCode::NodeNotFound)
    );
    assert_eq!(
        admin.delete_node(sw.id).await.unwrap_err().status(),
        Some(404)
    );
}

#[tokio::test]
async fn secrets_never_reach_the_database_file_in_clear_and_roles_see_them_masked() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (operator, _) = app.user_with_role(&admin, "otto", Role::Operator).await;
    let (viewer, _) = app.user_with_role(&admin, "val", Role::Viewer).await;
    let community_secret = "Zq7-community-known-secret";
    let v3_auth = "Zq7-auth-known-secret";
    let v3_priv = "Zq7-priv-known-secret";
    let cred = admin
        .create_credential(&community("plant-ro", community_secret))
        .await
        .unwrap();
    assert_eq!(cred.secrets.get("community"), Some(&None));
    let v3 = admin
        .create_credential(&CreateCredentialRequest {
            name: "v3-admin".into(),
            kind: CredentialKind::SnmpV3,
            params: CredentialParams {
                username: Some("monitor".into()),
                auth_protocol: Some("sha256".parse().unwrap()),
                priv_protocol: Some("aes128".parse().unwrap()),
                context: Some("ctx".into()),
                ..Default::default()
            },
            secrets: BTreeMap::from([
                ("auth_password".to_owned(), v3_auth.into()),
                ("priv_password".to_owned(), v3_priv.into()),
            ]),
            networks: Vec::new(),
        })
        .await
        .unwrap();
    // The key never shows in the data dir's database files, nor in the audit log.
    let mut raw = Vec::new();
    for file in ["plantwatch.db", "plantwatch.db-wal"] {
        raw.extend(std::fs::read(app.dir.path().join(file)).unwrap_or_default());
    }
    for secret in [community_secret, v3_auth, v3_priv] {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} found in clear in the database"
        );
    }
    let key = app.dir.path().join("vault.key");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read(&key).unwrap().len(), 32);

    // Operators and viewers see names and which secrets are set, never the values.
    for client in [&operator, &viewer] {
        let listed = client.list_credentials(&Default::default()).await.unwrap();
        let text = serde_json::to_string(&listed).unwrap();
        assert!(!text.contains("Zq7-"), "{text}");
        assert_eq!(listed.items.len(), 2);
        let err = client.get_credential(cred.id, true).await.unwrap_err();
        assert_eq!(err.status(), Some(403));
    }
    // Admins reveal, and each reveal is audited (without the secret).
    let shown = admin.get_credential(v3.id, true).await.unwrap();
    assert_eq!(
        shown.secrets["auth_password"].as_ref().unwrap().expose(),
        v3_auth
    );
    assert_eq!(shown.params.context.as_deref(), Some("ctx"));
    let audit = admin
        .audit(&plantwatch_shared::api::AuditQuery {
            action: Some("credential.reveal".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.total, 1);
    assert!(!serde_json::to_string(&audit).unwrap().contains("Zq7-"));

    // Updating one secret keeps the other; secrets the params no longer need are dropped.
    let updated = admin
        .update_credential(
            v3.id,
            &UpdateCredentialRequest {
                secrets: BTreeMap::from([(
                    "auth_password".to_owned(),
                    "Zq7-new-auth-secret".into(),
                )]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.secrets.len(), 2);
    let shown = admin.get_credential(v3.id, true).await.unwrap();
    assert_eq!(
        shown.secrets["priv_password"].as_ref().unwrap().expose(),
        v3_priv
    );
    let no_priv = CredentialParams {
        priv_protocol: None,
        ..shown.params.clone()
    };
    let updated = admin
        .update_credential(
            v3.id,
            &UpdateCredentialRequest {
                params: Some(no_priv),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        updated.secrets.keys().collect::<Vec<_>>(),
        ["auth_password"]
    );
}

#[tokio::test]
async fn credentials_are_validated_by_kind() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let v3 = |params: CredentialParams, secrets: &[(&str, &str)]| CreateCredentialRequest {
        name: "v3".into(),
        kind: CredentialKind::SnmpV3,
        params,
        secrets: secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect(),
        networks: Vec::new(),
    };
    let user = || CredentialParams {
        username: Some("mon".into()),
        ..Default::default()
    };
    let sha = || CredentialParams {
        auth_protocol: Some("sha1".parse().unwrap()),
        ..user()
    };
    let cases = vec![
        (community("", "x"), "name"),
        (community("a;b", "x"), "name"),
        (
            CreateCredentialRequest {
                secrets: BTreeMap::new(),
                ..community("c", "x")
            },
            "community",
        ),
        (
            CreateCredentialRequest {
                params: user(),
                ..community("c", "x")
            },
            "username",
        ),
        (v3(CredentialParams::default(), &[]), "username"),
        (v3(sha(), &[]), "auth_password"),
        (v3(sha(), &[("auth_password", "short")]), "auth_password"),
        (
            v3(
                CredentialParams {
                    priv_protocol: Some("des".parse().unwrap()),
                    ..user()
                },
                &[],
            ),
            "priv_protocol",
        ),
        (v3(user(), &[("community", "public")]), "community"),
        (
            CreateCredentialRequest {
                name: "win".into(),
                kind: CredentialKind::Windows,
                params: CredentialParams {
                    username: Some("svc".into()),
                    domain: Some("PLANT".into()),
                    ..Default::default()
                },
                secrets: BTreeMap::new(),
                networks: Vec::new(),
            },
            "password",
        ),
    ];
    for (request, field) in cases {
        let err = admin.create_credential(&request).await.unwrap_err();
        let plantwatch_shared::Error::Api {
            status, details, ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(*status, 400, "{request:?}");
        assert_eq!(
            details.as_ref().unwrap()["field"],
            field,
            "{request:?}: {err}"
        );
    }
    assert_eq!(
        admin
            .list_credentials(&Default::default())
            .await
            .unwrap()
            .total,
        0
    );
    // Name clashes are conflicts.
    admin.create_credential(&community("c", "x")).await.unwrap();
    assert_eq!(
        admin
            .create_credential(&community("c", "y"))
            .await
            .unwrap_err()
            .status(),
        Some(409)
    );
}

#[tokio::test]
async fn vault_rotation_keeps_every_secret_and_a_wrong_key_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = plantwatch_server::server::start(test_config(dir.path()))
        .await
        .unwrap();
    let app = TestApp { server, dir };
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            admin
                .create_credential(&community(&format!("c{n}"), &format!("secret-{n}")))
                .await
                .unwrap()
                .id,
        );
    }
    let TestApp { server, dir } = app;
    // A second server on the same data dir is refused while the first runs.
    let err = plantwatch_server::server::start(test_config(dir.path()))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("in use"), "{err:#}");
    server.shutdown().await.unwrap();

    let db_path = dir.path().join("plantwatch.db");
    let stored = |conn: &Connection| -> Vec<String> {
        conn.prepare("SELECT secrets FROM credentials ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let old_key = std::fs::read(dir.path().join("vault.key")).unwrap();
    let mut conn = plantwatch_server::db::open_connection(&db_path).unwrap();
    let before = stored(&conn);

    // A wrong key from the environment: a clear error, and nothing changed.
    let wrong: plantwatch_shared::Secret = "11".repeat(32).into();
    let err = plantwatch_server::vault::rotate(dir.path(), Some(&wrong), &mut conn).unwrap_err();
    assert!(format!("{err:#}").contains("not the key"), "{err:#}");
    assert_eq!(stored(&conn), before);
    let mut config = test_config(dir.path());
    config.vault_key = Some(wrong);
    let err = plantwatch_server::server::start(config).await.unwrap_err();
    assert!(format!("{err:#}").contains("not the key"), "{err:#}");

    let rotation = plantwatch_server::vault::rotate(dir.path(), None, &mut conn).unwrap();
    assert_eq!(rotation.secrets, 5);
    assert!(rotation.new_env_key.is_none());
    let after = stored(&conn);
    assert!(before.iter().zip(&after).all(|(b, a)| b != a));
    assert_ne!(
        std::fs::read(dir.path().join("vault.key")).unwrap(),
        old_key
    );
    assert!(!dir.path().join("vault.key.new").exists());
    drop(conn);

    let server = plantwatch_server::server::start(test_config(dir.path()))
        .await
        .unwrap();
    let app = TestApp { server, dir };
    let admin = app.admin().await;
    for (n, id) in ids.iter().enumerate() {
        let shown = admin.get_credential(*id, true).await.unwrap();
        assert_eq!(
            shown.secrets["community"].as_ref().unwrap().expose(),
            format!("secret-{n}")
        );
    }
}

#[tokio::test]
async fn every_change_that_affects_polling_marks_its_collectors_dirty() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let conn = db(&app);
    let north = add_collector(&conn, "north");
    let south = add_collector(&conn, "south");
    let cred = admin
        .create_credential(&community("ro", "public-1"))
        .await
        .unwrap();
    assert_eq!(
        dirty(&conn),
        [] as [i64; 0],
        "an unattached credential affects no collector"
    );

    let mut plc = spec("plc", "10.0.0.1");
    plc.collector = Some("north".into());
    let plc = admin.create_node(&plc).await.unwrap();
    assert_eq!(dirty(&conn), [north], "node created");
    let unassigned = admin
        .create_node(&spec("unassigned", "10.0.0.2"))
        .await
        .unwrap();
    assert_eq!(unassigned.collector.as_deref(), Some("local"));
    let local = unassigned.collector_id.unwrap();
    assert_eq!(
        dirty(&conn),
        [local],
        "a node naming no collector goes to the local one"
    );

    let notes = UpdateNodeRequest {
        notes: Some(Some("moved".into())),
        ..Default::default()
    };
    admin.update_node(plc.id, &notes).await.unwrap();
    assert_eq!(dirty(&conn), [north], "node updated");
    let moved = UpdateNodeRequest {
        collector: Some(Some("south".into())),
        ..Default::default()
    };
    let node = admin.update_node(plc.id, &moved).await.unwrap();
    assert_eq!(node.status, NodeStatus::Discovering);
    assert_eq!(
        dirty(&conn),
        [north, south],
        "node reassigned: both collectors"
    );

    admin
        .attach_credential(plc.id, cred.id, None)
        .await
        .unwrap();
    assert_eq!(dirty(&conn), [south], "credential attached");
    let rename = UpdateCredentialRequest {
        name: Some("ro-2".into()),
        ..Default::default()
    };
    admin.update_credential(cred.id, &rename).await.unwrap();
    assert_eq!(dirty(&conn), [south], "credential updated");
    admin.detach_credential(plc.id, cred.id).await.unwrap();
    assert_eq!(dirty(&conn), [south], "credential detached");

    // A refused change marks nothing.
    let bad = UpdateNodeRequest {
        address: Some("10.0.0.999".into()),
        ..Default::default()
    };
    admin.update_node(plc.id, &bad).await.unwrap_err();
    assert_eq!(dirty(&conn), [] as [i64; 0], "refused update");

    admin.delete_node(plc.id).await.unwrap();
    assert_eq!(dirty(&conn), [south], "node deleted");

    let mut csv = String::from("name,address,collector\n");
    csv.push_str("a,10.1.0.1,north\nb,10.1.0.2,south\n");
    admin
        .import_nodes(csv.into_bytes(), false, &ImportQuery::default())
        .await
        .unwrap();
    assert_eq!(dirty(&conn), [north, south], "import");
}

/// A CSV of `rows` valid nodes, every one under `switch`.
fn plant_csv(rows: usize) -> String {
    let mut csv = String::from(
        "name,address,type,tags,collector,template,credentials,parent,interval_s,notes\n",
    );
    csv.push_str("switch,10.0.0.1,network,core,,,ro,,,\"core switch, hall 1\"\n");
    for n in 1..rows {
        csv.push_str(&format!(
            "dev-{n:05},10.{}.{}.{},plc,line-{};plc,,,ro,switch,{},\"notes with \"\"quotes\"\"\n2nd line\"\n",
            n / 65536,
            (n / 256) % 256,
            n % 256,
            n % 7,
            10 + n % 50
        ));
    }
    csv
}

#[tokio::test]
async fn a_10000_row_import_round_trips_through_export_unchanged() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    admin
        .create_credential(&community("ro", "public-ro"))
        .await
        .unwrap();
    let csv = plant_csv(10_000);

    let plan = admin
        .import_nodes(
            csv.clone().into_bytes(),
            false,
            &ImportQuery {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!plan.applied && plan.dry_run);
    assert_eq!(plan.summary.create, 10_000);
    assert_eq!(
        admin.list_nodes(&NodeQuery::default()).await.unwrap().total,
        0,
        "dry run wrote"
    );

    let report = admin
        .import_nodes(csv.clone().into_bytes(), false, &ImportQuery::default())
        .await
        .unwrap();
    assert!(report.applied);
    assert_eq!(report.summary.create, 10_000);
    let page = admin
        .list_nodes(&NodeQuery {
            tag: Some("line-3".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 1429);
    let one = &page.items[0];
    assert_eq!(one.parent.as_deref(), Some("switch"));
    assert_eq!(one.credentials[0].name, "ro");
    assert!(one.notes.as_deref().unwrap().contains("\"quotes\"\n2nd"));

    // The same file again: without upsert every row is refused, with it nothing changes.
    let refused = admin
        .import_nodes(csv.clone().into_bytes(), false, &ImportQuery::default())
        .await
        .unwrap();
    assert!(!refused.applied);
    assert_eq!(refused.summary.error, 10_000);
    let upsert = ImportQuery {
        upsert: true,
        ..Default::default()
    };
    let again = admin
        .import_nodes(csv.into_bytes(), false, &upsert)
        .await
        .unwrap();
    assert_eq!(again.summary.unchanged, 10_000, "{:?}", again.summary);

    // Export → import: unchanged, as CSV and as JSON.
    let exported = admin.export_nodes(ExportFormat::Csv).await.unwrap();
    let round = admin.import_nodes(exported, false, &upsert).await.unwrap();
    assert_eq!(round.summary.unchanged, 10_000, "{:?}", round.summary);
    let exported = admin.export_nodes(ExportFormat::Json).await.unwrap();
    let round = admin.import_nodes(exported, true, &upsert).await.unwrap();
    assert_eq!(round.summary.unchanged, 10_000, "{:?}", round.summary);

    // An upsert that changes one row updates only that row.
    let changed = "name,address,type,tags,credentials,parent,interval_s,notes\nswitch,10.0.0.254,network,core,ro,,,\"core switch, hall 1\"\n";
    let report = admin
        .import_nodes(changed.as_bytes().to_vec(), false, &upsert)
        .await
        .unwrap();
    assert_eq!(report.summary.update, 1);
}

#[tokio::test]
async fn checks_travel_in_the_import_and_the_export() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let upsert = ImportQuery {
        upsert: true,
        ..Default::default()
    };
    let short_forms = |node: i64| {
        let admin = &admin;
        async move {
            let list = admin.checks(node).await.unwrap().items;
            list.iter().map(|c| c.spec.to_string()).collect::<Vec<_>>()
        }
    };
    let csv = "name,address,checks\n\
               hmi-1,10.0.0.5,tls:443;http:80/health;tcp:502\n\
               dc-1,10.0.0.2,dns:historian.plant.local=10.0.0.7\n\
               plc-1,10.0.0.9,\n";
    let report = import_csv(&admin, csv, &ImportQuery::default())
        .await
        .unwrap();
    assert_eq!(report.summary.create, 3, "{report:?}");
    let node = |name: &str| {
        let admin = &admin;
        let name = name.to_owned();
        async move {
            let page = admin
                .list_nodes(&NodeQuery {
                    q: Some(name),
                    ..Default::default()
                })
                .await
                .unwrap();
            page.items[0].id
        }
    };
    let hmi = node("hmi-1").await;
    assert_eq!(
        short_forms(hmi).await,
        ["tls:443", "http:80/health", "tcp:502"]
    );
    assert_eq!(
        short_forms(node("dc-1").await).await,
        ["dns:historian.plant.local=10.0.0.7"]
    );

    // A setting the short form does not carry, changed through the API, survives a CSV
    // re-import and its export round trip: the same file is unchanged.
    let http = admin.checks(hmi).await.unwrap().items[1].clone();
    let mut slower = http.spec.clone();
    slower.interval_s = Some(300);
    admin.replace_check(hmi, http.id, &slower).await.unwrap();
    let again = import_csv(&admin, csv, &upsert).await.unwrap();
    assert_eq!(again.summary.unchanged, 3, "{:?}", again.summary);
    let exported = String::from_utf8(admin.export_nodes(ExportFormat::Csv).await.unwrap()).unwrap();
    assert!(
        exported.starts_with(
            "name,address,type,tags,collector,template,credentials,parent,interval_s,notes,checks,modbus_unit\n"
        ),
        "{exported}"
    );
    assert!(
        exported.contains(",tls:443;http:80/health;tcp:502,\n"),
        "{exported}"
    );
    let round = import_csv(&admin, &exported, &upsert).await.unwrap();
    assert_eq!(round.summary.unchanged, 3, "{:?}", round.summary);
    assert_eq!(
        admin.checks(hmi).await.unwrap().items[1].spec.interval_s,
        Some(300)
    );
    // JSON carries every setting, and round-trips too.
    let json = admin.export_nodes(ExportFormat::Json).await.unwrap();
    let specs: Vec<NodeSpec> = serde_json::from_slice(&json).unwrap();
    let hmi_spec = specs.iter().find(|s| s.name == "hmi-1").unwrap();
    assert_eq!(hmi_spec.checks.as_ref().unwrap()[1].interval_s, Some(300));
    assert_eq!(
        specs.iter().find(|s| s.name == "plc-1").unwrap().checks,
        None
    );
    let round = admin.import_nodes(json, true, &upsert).await.unwrap();
    assert_eq!(round.summary.unchanged, 3, "{:?}", round.summary);

    // The cell says what the node's checks become: one kept, one added, two removed.
    let changed = "name,address,checks\nhmi-1,10.0.0.5,https:8443/login;tls:443\n";
    let plan = import_csv(
        &admin,
        changed,
        &ImportQuery {
            upsert: true,
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(plan.summary.update, 1);
    assert_eq!(short_forms(hmi).await.len(), 3, "a dry run wrote");
    let tls_id = admin.checks(hmi).await.unwrap().items[0].id;
    import_csv(&admin, changed, &upsert).await.unwrap();
    let now = admin.checks(hmi).await.unwrap().items;
    assert_eq!(
        now.iter().map(|c| c.spec.to_string()).collect::<Vec<_>>(),
        ["tls:443", "https:8443/login"]
    );
    assert_eq!(now[0].id, tls_id, "the kept check is the same check");
    // Without the column, the checks stay.
    import_csv(&admin, "name,address\nhmi-1,10.0.0.5\n", &upsert)
        .await
        .unwrap();
    assert_eq!(short_forms(hmi).await.len(), 2);
    // An empty cell removes them.
    import_csv(&admin, "name,address,checks\nhmi-1,10.0.0.5,\n", &upsert)
        .await
        .unwrap();
    assert!(short_forms(hmi).await.is_empty());

    // Bad checks refuse their row, naming the column, and write nothing.
    let bad = "name,address,checks\n\
               new-1,10.0.0.20,tls:443;ftp:21\n\
               new-2,10.0.0.21,tcp:502;tcp:502\n\
               new-3,10.0.0.22,dns:\n";
    let report = rejected(&admin, bad.as_bytes().to_vec()).await;
    let errors = errors_of(&report);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|(_, column, _)| column.as_deref() == Some("checks"))
    );
    assert!(errors[0].2.contains("the kind must be"), "{errors:?}");
    assert!(errors[1].2.contains("listed twice"), "{errors:?}");
    assert!(errors[2].2.contains("needs the name"), "{errors:?}");
    assert_eq!(
        admin.list_nodes(&NodeQuery::default()).await.unwrap().total,
        3
    );

    // POST /nodes takes checks too.
    let created = admin
        .create_node(&NodeSpec {
            checks: Some(vec!["tls:8443".parse().unwrap()]),
            ..spec("historian", "10.0.0.30")
        })
        .await
        .unwrap();
    assert_eq!(short_forms(created.id).await, ["tls:8443"]);
}

async fn import_csv(
    admin: &Client,
    csv: &str,
    query: &ImportQuery,
) -> plantwatch_shared::Result<plantwatch_shared::api::ImportReport> {
    admin
        .import_nodes(csv.as_bytes().to_vec(), false, query)
        .await
}

async fn rejected(admin: &Client, body: Vec<u8>) -> plantwatch_shared::api::ImportReport {
    let report = admin
        .import_nodes(body, false, &ImportQuery::default())
        .await
        .unwrap();
    assert!(!report.applied);
    report
}

fn errors_of(report: &plantwatch_shared::api::ImportReport) -> Vec<(u64, Option<String>, String)> {
    report
        .rows
        .iter()
        .filter(|r| r.outcome == ImportOutcome::Error)
        .flat_map(|r| {
            r.errors
                .iter()
                .map(move |e| (r.row, e.column.clone(), e.reason.clone()))
        })
        .collect()
}

#[tokio::test]
async fn broken_import_files_are_refused_row_by_row_and_write_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    admin
        .create_credential(&community("ro", "public-ro"))
        .await
        .unwrap();
    let conn = db(&app);

    // A bad IP on row 7,312 of an otherwise valid file (row 1 is the switch).
    let mut csv = plant_csv(10_000);
    csv = csv.replacen("dev-07311,10.0.28.143,", "dev-07311,10.0.28.343,", 1);
    let report = rejected(&admin, csv.into_bytes()).await;
    let errors = errors_of(&report);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].0, errors[0].1.as_deref()),
        (7312, Some("address"))
    );
    assert!(errors[0].2.contains("10.0.28.343"), "{errors:?}");
    assert_eq!(report.summary.create, 9_999);

    // Duplicate names within the file, an unknown credential, an unknown type, bad parent.
    let csv = "name,address,type,credentials,parent\n\
               a,10.0.0.1,plc,ro,\n\
               b,10.0.0.2,plc,ro;nope,\n\
               A,10.0.0.3,plc,,\n\
               c,10.0.0.4,robot,,\n\
               d,10.0.0.5,plc,,e\n\
               e,10.0.0.6,plc,,d\n\
               f,10.0.0.7,,,ghost\n";
    let report = rejected(&admin, csv.as_bytes().to_vec()).await;
    let errors = errors_of(&report);
    let columns: Vec<(u64, &str)> = errors
        .iter()
        .map(|(row, col, _)| (*row, col.as_deref().unwrap_or("-")))
        .collect();
    assert_eq!(
        columns,
        [
            (2, "credentials"),
            (3, "name"),
            (4, "type"),
            (5, "parent"),
            (6, "parent"),
            (7, "parent")
        ]
    );
    assert!(errors[1].2.contains("row 1"), "{errors:?}");
    assert!(errors[3].2.contains("cycle"), "{errors:?}");

    // Non-UTF-8 bytes: a row error naming the column.
    let report = rejected(
        &admin,
        b"name,address,notes\nok,10.0.0.1,\nbad,10.0.0.2,caf\xe9\n".to_vec(),
    )
    .await;
    assert_eq!(errors_of(&report)[0].0, 2);
    assert_eq!(errors_of(&report)[0].1.as_deref(), Some("notes"));

    // A wrong header is refused as a whole.
    let err = admin
        .import_nodes(
            b"hostname,ip\nx,10.0.0.1\n".to_vec(),
            false,
            &ImportQuery::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some(ErrorCode::InvalidImportFile))
    );
    assert!(err.to_string().contains("hostname"), "{err}");

    // A 60 MB file is refused before it is read.
    let mut big = plant_csv(2).into_bytes();
    big.resize(60 * 1024 * 1024, b' ');
    let err = admin
        .import_nodes(big, false, &ImportQuery::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(413), Some(ErrorCode::ImportTooLarge))
    );

    // More than 100,000 rows.
    let mut many = String::from("name,address\n");
    for n in 0..100_001 {
        many.push_str(&format!("n{n},10.0.0.1\n"));
    }
    let err = admin
        .import_nodes(many.into_bytes(), false, &ImportQuery::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TooManyRows));

    assert_eq!(count(&conn, "nodes"), 0, "a refused import wrote nodes");
    assert_eq!(
        count(&conn, "node_tags") + count(&conn, "node_credentials"),
        0
    );

    // Partial: the valid rows are applied, the others reported.
    let partial = ImportQuery {
        partial: true,
        ..Default::default()
    };
    let report = admin
        .import_nodes(
            b"name,address\ngood,10.0.0.1\nbad,10.0.0.300\n".to_vec(),
            false,
            &partial,
        )
        .await
        .unwrap();
    assert!(report.applied);
    assert_eq!((report.summary.create, report.summary.error), (1, 1));
    assert_eq!(count(&conn, "nodes"), 1);
}

#[tokio::test]
async fn credentials_are_tried_in_priority_order_and_templates_resolve_by_name() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (operator, _) = app.user_with_role(&admin, "otto", Role::Operator).await;
    let conn = db(&app);
    conn.execute(
        "INSERT INTO device_templates (name, definition, checksum, loaded_at)
         VALUES ('net-snmp-linux', '', 'x', 0)",
        [],
    )
    .unwrap();
    let mut ids = BTreeMap::new();
    for name in ["a", "b", "c"] {
        let id = admin
            .create_credential(&CreateCredentialRequest {
                networks: vec!["10.0.0.0/24".into()],
                ..community(name, "community-1")
            })
            .await
            .unwrap()
            .id;
        ids.insert(name, id);
    }
    let order = |node: &plantwatch_shared::api::Node| -> Vec<String> {
        node.credentials.iter().map(|c| c.name.clone()).collect()
    };
    let mut server = spec("srv-1", "10.0.0.9");
    server.template = Some("NET-SNMP-LINUX".into());
    server.credentials = vec!["b".into(), "a".into()];
    let node = operator.create_node(&server).await.unwrap();
    assert_eq!(node.template.as_deref(), Some("net-snmp-linux"));
    assert_eq!(order(&node), ["b", "a"], "creation keeps the given order");

    // The operator attaches without ever reading a secret; no priority means "last".
    let node = operator
        .attach_credential(node.id, ids["c"], None)
        .await
        .unwrap();
    assert_eq!(order(&node), ["b", "a", "c"]);
    let node = operator
        .attach_credential(node.id, ids["c"], Some(-1))
        .await
        .unwrap();
    assert_eq!(order(&node), ["c", "b", "a"], "moved to the front");
    let node = operator.detach_credential(node.id, ids["b"]).await.unwrap();
    assert_eq!(order(&node), ["c", "a"]);
    let err = operator
        .detach_credential(node.id, ids["b"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::CredentialNotAttached));
    let err = operator
        .attach_credential(node.id, 9999, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::CredentialNotFound));
    let history = operator.node_history(node.id).await.unwrap();
    let actions: Vec<&str> = history.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "node.detach_credential",
            "node.attach_credential",
            "node.attach_credential",
            "node.create"
        ]
    );
}

#[tokio::test]
async fn export_then_upsert_changes_nothing_for_agent_nodes_and_formula_cells() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    admin
        .create_node(&NodeSpec {
            notes: Some("=cmd|' /C calc'!A0".into()),
            ..spec("@pump", "127.0.0.20")
        })
        .await
        .unwrap();
    admin
        .create_node(&spec("srv-1", "127.0.0.21"))
        .await
        .unwrap();
    // srv-1 is an agent's node: it has no collector.
    db(&app)
        .execute(
            "UPDATE nodes SET collector_id = NULL WHERE name = 'srv-1'",
            [],
        )
        .unwrap();
    let exported = admin.export_nodes(ExportFormat::Csv).await.unwrap();
    let text = String::from_utf8(exported.clone()).unwrap();
    // No cell a spreadsheet would run as a formula.
    assert!(text.contains("'@pump,"), "{text}");
    assert!(text.contains(",'=cmd|' /C calc'!A0"), "{text}");
    assert!(!text.contains(",=cmd"), "{text}");
    let upsert = ImportQuery {
        upsert: true,
        ..Default::default()
    };
    let round = admin.import_nodes(exported, false, &upsert).await.unwrap();
    assert!(round.applied);
    assert_eq!(round.summary.unchanged, 2, "{round:?}");
    let srv = admin.node_by_name("srv-1").await.unwrap();
    assert_eq!(
        srv.collector, None,
        "the agent's node stays without a collector"
    );
    let pump = admin.node_by_name("@pump").await.unwrap();
    assert_eq!(pump.notes.as_deref(), Some("=cmd|' /C calc'!A0"));
}

#[tokio::test]
async fn an_import_row_reports_every_problem_and_echoes_nothing_huge() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let csv = "name,address,type,credentials,parent,interval_s\n\
               plc-1,10.0.0.1,robot,nope,ghost,soon\n\
               plc-2,10.0.0.2,plc,,,\n";
    let report = rejected(&admin, csv.as_bytes().to_vec()).await;
    let mut columns: Vec<String> = errors_of(&report)
        .into_iter()
        .map(|(row, column, _)| {
            assert_eq!(row, 1);
            column.unwrap_or_default()
        })
        .collect();
    columns.sort();
    assert_eq!(columns, ["credentials", "interval_s", "parent", "type"]);
    // A 10 MB name: refused, and not answered back 10 MB long.
    let huge = format!("name,address\n{},10.0.0.3\n", "n".repeat(10 * 1024 * 1024));
    let (status, body) = admin
        .send_raw(
            Method::POST,
            "/api/v1/nodes/import",
            Some("text/csv"),
            huge.into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(status, 422);
    assert!(body.len() < 4_096, "answered {} bytes", body.len());
    let body: Value = serde_json::from_slice(&body).unwrap();
    let name = body["error"]["details"]["rows"][0]["name"]
        .as_str()
        .unwrap();
    assert!(name.ends_with('…') && name.chars().count() <= 80, "{name}");
    // Neither CSV nor JSON: 415.
    let (status, body) = admin
        .send_raw(
            Method::POST,
            "/api/v1/nodes/import",
            Some("application/xml"),
            b"<nodes/>".to_vec(),
        )
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_media_type");
}

#[tokio::test]
async fn a_credential_goes_only_to_addresses_inside_its_networks_and_unscoped_ones_are_admins() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (operator, _) = app.user_with_role(&admin, "olga", Role::Operator).await;
    let north = admin
        .create_credential(&CreateCredentialRequest {
            networks: vec!["10.1.0.0/16".into()],
            ..community("north-ro", "north-secret")
        })
        .await
        .unwrap();
    assert_eq!(north.networks, ["10.1.0.0/16"]);
    let anywhere = admin
        .create_credential(&community("anywhere", "any-secret"))
        .await
        .unwrap();
    // Bad networks are refused.
    let bad = admin
        .create_credential(&CreateCredentialRequest {
            networks: vec!["10.0.0.0/33".into()],
            ..community("bad", "x")
        })
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(400));

    // An operator: inside the networks, fine; outside, or a DNS name, refused.
    let inside = operator
        .create_node(&NodeSpec {
            credentials: vec!["north-ro".into()],
            ..spec("plc-in", "10.1.2.3")
        })
        .await
        .unwrap();
    for address in ["10.2.0.5", "attacker.example"] {
        let error = operator
            .create_node(&NodeSpec {
                credentials: vec!["north-ro".into()],
                ..spec("plc-out", address)
            })
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(400), "{address}");
        assert!(
            error.to_string().contains("outside the networks"),
            "{error}"
        );
    }
    // Moving the node out: refused; the credential without networks: admins only.
    let moved = operator
        .update_node(
            inside.id,
            &UpdateNodeRequest {
                address: Some("10.9.9.9".into()),
                ..UpdateNodeRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(moved.status(), Some(400));
    let attach = operator
        .attach_credential(inside.id, anywhere.id, None)
        .await
        .unwrap_err();
    assert_eq!(attach.status(), Some(403));
    assert!(attach.to_string().contains("only an admin"), "{attach}");
    admin
        .attach_credential(inside.id, anywhere.id, None)
        .await
        .unwrap();
    // The admin's attachment stays through an operator's edit of something else…
    operator
        .update_node(
            inside.id,
            &UpdateNodeRequest {
                notes: Some(Some("cabinet 4".into())),
                ..UpdateNodeRequest::default()
            },
        )
        .await
        .unwrap();
    // …and an import by an operator obeys the same rule.
    let csv = "name,address,credentials\nplc-x,10.3.0.1,north-ro\nplc-y,10.1.0.9,anywhere\n";
    let report = rejected(&operator, csv.as_bytes().to_vec()).await;
    let errors = errors_of(&report);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].2.contains("outside the networks"), "{errors:?}");
    assert!(errors[1].2.contains("only an admin"), "{errors:?}");
    // Narrowing the networks below an attached node is refused.
    let narrowed = admin
        .update_credential(
            north.id,
            &plantwatch_shared::api::UpdateCredentialRequest {
                networks: Some(vec!["10.1.9.0/24".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(narrowed.to_string().contains("plc-in"), "{narrowed}");
}

#[tokio::test]
async fn bulk_changes_are_one_transaction_all_or_none_audited_per_node_and_for_operators() {
    use plantwatch_shared::api::{BulkNodeUpdate, BulkNodesRequest};
    let app = spawn_app().await;
    let admin = app.admin().await;
    let a = admin.create_node(&spec("plc-a", "10.1.0.1")).await.unwrap();
    let b = admin.create_node(&spec("plc-b", "10.1.0.2")).await.unwrap();
    let change = |id: i64, notes: &str, template: Option<&str>| BulkNodeUpdate {
        id,
        changes: UpdateNodeRequest {
            notes: Some(Some(notes.to_owned())),
            template: template.map(|t| Some(t.to_owned())),
            ..UpdateNodeRequest::default()
        },
    };
    // The second change is refused: the first is not made either, and the answer names it.
    let refused = admin
        .bulk_nodes(&BulkNodesRequest {
            update: vec![
                change(a.id, "cabinet 4", None),
                change(b.id, "x", Some("nope")),
            ],
            delete: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400));
    assert!(
        refused.to_string().contains(&format!("node {}", b.id)),
        "{refused}"
    );
    assert_eq!(admin.get_node(a.id).await.unwrap().notes, None);
    // Viewers may not.
    let (viewer, _) = app.user_with_role(&admin, "watcher", Role::Viewer).await;
    let request = BulkNodesRequest {
        update: vec![
            change(a.id, "cabinet 4", None),
            change(b.id, "cabinet 5", None),
        ],
        delete: vec![],
    };
    assert_eq!(
        viewer.bulk_nodes(&request).await.unwrap_err().status(),
        Some(403)
    );
    let answer = admin.bulk_nodes(&request).await.unwrap();
    assert_eq!(answer.updated.len(), 2);
    assert_eq!(
        admin.get_node(b.id).await.unwrap().notes.as_deref(),
        Some("cabinet 5")
    );
    let deleted = admin
        .bulk_nodes(&BulkNodesRequest {
            update: vec![],
            delete: vec![a.id, b.id],
        })
        .await
        .unwrap();
    assert_eq!(deleted.deleted, ["plc-a", "plc-b"]);
    let conn = db(&app);
    let audited = |action: &str| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            [action],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!((audited("node.update"), audited("node.delete")), (2, 2));
    // An empty request is refused, not a silent success.
    let empty = admin
        .bulk_nodes(&BulkNodesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(empty.status(), Some(400));
}
