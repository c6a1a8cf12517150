//! Collectors and agents through the real server over HTTPS: enrollment tokens and join codes,
//! registration, approval, revocation, cached key checks, config delivery (debounce, ETag,
//! 304), the local collector, the agent heartbeat, and the role matrix of every new route.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use plantwatch_shared::api::ErrorCode;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{community, db, keyed, register, registration, spawn_app, spec, token};
use plantwatch_shared::api::{
    ApproveRequest, ComponentKind, ComponentQuery, ComponentStatus, CreateTokenRequest, Heartbeat,
    JoinCode, NodeSpec, RegisterRequest, TokenState, UpdateNodeRequest,
};
use plantwatch_shared::client::ConfigPull;
use plantwatch_shared::{Client, Secret};
use reqwest::Method;
use serde_json::{Value, json};

/// Pulls until the configuration's hash differs from `old`; returns the new pull and when.
async fn wait_for_new_config(
    client: &Client,
    id: i64,
    old: &str,
    limit: Duration,
) -> (ConfigPull, Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        let pull = client.collector_config(id, Some(old)).await.unwrap();
        if pull != ConfigPull::NotModified {
            return (pull, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no new configuration within {limit:?}");
}

fn sha_of(pull: &ConfigPull) -> String {
    match pull {
        ConfigPull::Changed { sha256, .. } => sha256.clone(),
        ConfigPull::NotModified => panic!("expected a configuration"),
    }
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_make_a_pinned_join_code() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let created = admin
        .create_token(&CreateTokenRequest {
            name: "plant 4".into(),
            expires_in_s: Some(3600),
            max_uses: Some(5),
            server_url: None,
        })
        .await
        .unwrap();
    assert!(created.secret.expose().starts_with("pwe_"));
    assert_eq!(created.token.state, TokenState::Active);
    assert_eq!(created.token.max_uses, Some(5));
    assert_eq!(created.token.created_by.as_deref(), Some("admin"));
    let code: JoinCode = created.join_code.expose().parse().unwrap();
    assert_eq!(code.url, app.server.url());
    assert_eq!(code.fingerprint, app.server.fingerprint);
    assert_eq!(code.token, created.secret);

    // The database holds a hash, and no list shows the token again.
    let stored: String = db(&app)
        .query_row("SELECT token_hash FROM enrollment_tokens", [], |r| r.get(0))
        .unwrap();
    assert_ne!(stored, created.secret.expose());
    assert_eq!(stored.len(), 64);
    let listed = admin.list_tokens(&Default::default()).await.unwrap();
    assert_eq!(listed.total, 1);
    let text = serde_json::to_string(&listed.items).unwrap();
    assert!(!text.contains(created.secret.expose()));

    // An explicit URL for plant networks that reach the server by another name.
    let other = admin
        .create_token(&CreateTokenRequest {
            name: "plant 5".into(),
            server_url: Some("https://pw.plant5.example:9443/".into()),
            ..CreateTokenRequest::default()
        })
        .await
        .unwrap();
    let code: JoinCode = other.join_code.expose().parse().unwrap();
    assert_eq!(code.url, "https://pw.plant5.example:9443");

    let revoked = admin.revoke_token(created.token.id).await.unwrap();
    assert_eq!(revoked.state, TokenState::Revoked);

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "expires_in_s": 0}), "expires_in_s"),
        (json!({"name": "x", "max_uses": 0}), "max_uses"),
        (json!({"name": "x", "server_url": "ftp://x"}), "server_url"),
    ] {
        let (status, bytes) = admin
            .send_raw(
                Method::POST,
                "/api/v1/enrollment-tokens",
                Some("application/json"),
                body.to_string().into_bytes(),
            )
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn a_collector_waits_for_approval_then_pulls_its_config_with_etag_and_304() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = token(&admin, "t").await;
    let reg = register(&app, &token, ComponentKind::Collector, "north", "m-north").await;
    assert!(
        reg.api_key
            .expose()
            .starts_with(&format!("pwk_{}_", reg.component_id))
    );
    assert_eq!(reg.status, ComponentStatus::Pending);
    assert!(!reg.re_enrolled);
    let collector = keyed(&app, &reg);

    // Pending: every call but register is 403 and says why.
    for error in [
        collector.component_me().await.unwrap_err(),
        collector
            .collector_config(reg.component_id, None)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(error.status(), Some(403), "{error}");
        assert_eq!(error.code(), Some(ErrorCode::PendingApproval));
        assert!(
            error.to_string().contains("waiting for approval"),
            "{error}"
        );
    }
    let listed = admin
        .list_components(&ComponentQuery {
            kind: Some(ComponentKind::Collector),
            ..ComponentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.items[0].name, "north",
        "pending approvals come first"
    );
    assert_eq!(listed.items[0].status, ComponentStatus::Pending);

    // A node and a credential for it, so the configuration has something to carry.
    let cred = admin
        .create_credential(&community("ro", "s3cret-community"))
        .await
        .unwrap();
    let mut plc = spec("plc-1", "10.0.0.1", "north");
    plc.credentials = vec!["ro".into()];
    plc.interval_s = Some(30);
    let plc = admin.create_node(&plc).await.unwrap();
    let mut second = spec("plc-2", "10.0.0.2", "north");
    second.credentials = vec!["ro".into()];
    admin.create_node(&second).await.unwrap();

    let approved = admin.approve_component(reg.component_id).await.unwrap();
    assert_eq!(approved.status, ComponentStatus::Online);
    assert_eq!(approved.target_count, Some(2));
    let me = collector.component_me().await.unwrap();
    assert_eq!(
        (me.id, me.kind),
        (reg.component_id, ComponentKind::Collector)
    );

    let pull = collector
        .collector_config(reg.component_id, None)
        .await
        .unwrap();
    let ConfigPull::Changed { sha256, config, .. } = &pull else {
        panic!("no configuration");
    };
    assert_eq!(config.collector_id, reg.component_id);
    assert_eq!(config.targets.len(), 2);
    assert_eq!(
        config.credentials.len(),
        1,
        "a shared credential is sent once"
    );
    assert_eq!(config.targets[1].credential_ids, [cred.id]);
    assert_eq!(config.targets[1].interval_s, 10, "the default interval");
    let target = &config.targets[0];
    assert_eq!(
        (target.node_id, target.address.as_str(), target.interval_s),
        (plc.id, "10.0.0.1", 30)
    );
    assert_eq!(target.credential_ids, [cred.id]);
    let credentials: Vec<_> = config.credentials_of(target).collect();
    assert_eq!(
        credentials[0].secrets["community"].expose(),
        "s3cret-community",
        "the collector that polls the node gets the secret in clear"
    );
    assert_eq!(
        collector
            .collector_config(reg.component_id, Some(sha256))
            .await
            .unwrap(),
        ConfigPull::NotModified
    );

    // The status report puts the collector in sync.
    let before = admin.get_component(reg.component_id).await.unwrap();
    assert_eq!(before.config_in_sync, None);
    collector
        .report(
            reg.component_id,
            &plantwatch_shared::api::CollectorReport {
                events: None,
                version: "0.1.0".into(),
                config_sha256: Some(sha256.clone()),
                target_count: 2,
                errors: vec!["10.0.0.9: timeout".into()],
                outbox: Some(plantwatch_shared::api::OutboxStatus {
                    batches: 3,
                    bytes: 4_096,
                    lag_s: 42,
                    ..Default::default()
                }),
            },
        )
        .await
        .unwrap();
    let after = admin.get_component(reg.component_id).await.unwrap();
    assert_eq!(after.config_in_sync, Some(true));
    assert_eq!(after.config_sha256.as_deref(), Some(sha256.as_str()));
    assert_eq!(after.last_errors, ["10.0.0.9: timeout"]);
    let outbox = after.outbox.expect("the reported outbox");
    assert_eq!((outbox.batches, outbox.lag_s), (3, 42));
    assert_eq!(after.enrolled_with.as_deref(), Some("t"));
}

#[tokio::test]
async fn changes_regenerate_after_the_debounce_and_a_burst_of_1000_regenerates_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = token(&admin, "t").await;
    let reg = register(&app, &token, ComponentKind::Collector, "north", "m-north").await;
    admin.approve_component(reg.component_id).await.unwrap();
    let collector = keyed(&app, &reg);
    let id = reg.component_id;
    let first = sha_of(&collector.collector_config(id, None).await.unwrap());

    // One change: a new configuration after the 5 s debounce, not before.
    let node = admin
        .create_node(&spec("plc-1", "10.0.0.1", "north"))
        .await
        .unwrap();
    let (pull, after) = wait_for_new_config(&collector, id, &first, Duration::from_secs(15)).await;
    assert!(
        after >= Duration::from_secs(4),
        "regenerated after {after:?}, before the debounce"
    );
    let ConfigPull::Changed {
        sha256: second,
        config,
        ..
    } = pull
    else {
        unreachable!()
    };
    assert_eq!(config.targets[0].name, "plc-1");

    // A change elsewhere leaves this configuration alone.
    admin
        .create_node(&spec("elsewhere", "10.0.0.2", "local"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        collector.collector_config(id, Some(&second)).await.unwrap(),
        ConfigPull::NotModified
    );

    // 1,000 changes in a burst: one regeneration.
    let before = app.server.state.delivery.regenerations_of(id);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8u32 {
        let admin = admin.clone();
        tasks.spawn(async move {
            for i in 0..125 {
                // Each a different interval (11 s …), so each changes the configuration.
                let change = UpdateNodeRequest {
                    interval_s: Some(Some(11 + worker * 125 + i)),
                    ..UpdateNodeRequest::default()
                };
                admin.update_node(node.id, &change).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let burst = started.elapsed();
    let (pull, _) = wait_for_new_config(&collector, id, &second, Duration::from_secs(70)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let regenerations = app.server.state.delivery.regenerations_of(id) - before;
    assert_eq!(
        regenerations, 1,
        "1,000 changes over {burst:?} regenerated {regenerations} times"
    );
    // The one regeneration came after the last change: it holds the node as it is now.
    let ConfigPull::Changed { config, .. } = pull else {
        unreachable!()
    };
    let now = admin.get_node(node.id).await.unwrap();
    assert_eq!(Some(config.targets[0].interval_s), now.interval_s);
}

#[tokio::test]
async fn enrolling_again_from_the_same_machine_keeps_the_id_and_kills_the_old_key() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = token(&admin, "t").await;
    let first = register(&app, &token, ComponentKind::Collector, "north", "m-1").await;
    admin.approve_component(first.component_id).await.unwrap();
    let old = keyed(&app, &first);
    old.component_me().await.unwrap();

    let second = app
        .client()
        .register(&registration(
            &token,
            ComponentKind::Collector,
            "north-2",
            "m-1",
        ))
        .await
        .unwrap();
    assert_eq!(second.component_id, first.component_id);
    assert!(second.re_enrolled);
    assert_ne!(second.api_key, first.api_key);
    let error = old.component_me().await.unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");
    // A new key is a new trust decision: approval again.
    let error = keyed(&app, &second).component_me().await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::PendingApproval));
    admin.approve_component(second.component_id).await.unwrap();
    keyed(&app, &second).component_me().await.unwrap();

    let all = admin
        .list_components(&ComponentQuery::default())
        .await
        .unwrap();
    let names: Vec<&str> = all.items.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["local", "north-2"], "no duplicate");
    // The same machine id as an agent is another component.
    let agent = register(&app, &token, ComponentKind::Agent, "north", "m-1").await;
    assert_ne!(agent.component_id, first.component_id);
}

#[tokio::test]
async fn revoked_and_deleted_components_are_refused_at_their_next_request() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = token(&admin, "t").await;
    let reg = register(&app, &token, ComponentKind::Collector, "north", "m-1").await;
    admin.approve_component(reg.component_id).await.unwrap();
    let collector = keyed(&app, &reg);
    // Warm the cache: the next checks come from memory.
    for _ in 0..3 {
        collector.component_me().await.unwrap();
    }
    let revoked = admin.revoke_component(reg.component_id).await.unwrap();
    assert_eq!(revoked.status, ComponentStatus::Revoked);
    let error = collector.component_me().await.unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");
    let error = admin.approve_component(reg.component_id).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::ComponentRevoked));

    // Enrolling again brings it back as pending.
    let again = register(&app, &token, ComponentKind::Collector, "north", "m-1").await;
    assert_eq!(again.component_id, reg.component_id);
    admin.approve_component(again.component_id).await.unwrap();
    let collector = keyed(&app, &again);
    collector.component_me().await.unwrap();
    admin.delete_component(again.component_id).await.unwrap();
    let error = collector.component_me().await.unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");
    let error = admin.get_component(again.component_id).await.unwrap_err();
    assert_eq!(error.status(), Some(404));

    // Every step is in the audit log, newest first, with who did it.
    let trail = admin
        .audit(&plantwatch_shared::api::AuditQuery {
            target: Some(format!("component:{}", reg.component_id)),
            ..Default::default()
        })
        .await
        .unwrap();
    let steps: Vec<(&str, &str)> = trail
        .items
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("component.delete", "admin"),
            ("component.approve", "admin"),
            ("component.re_enroll", "enrollment token t"),
            ("component.revoke", "admin"),
            ("component.approve", "admin"),
            ("component.register", "enrollment token t"),
        ]
    );

    // A wrong key for a real component, garbage, and no key at all.
    let forged = app
        .client()
        .with_api_key(format!("pwk_{}_forged", admin_id(&admin, "local").await));
    assert_eq!(forged.component_me().await.unwrap_err().status(), Some(401));
    let garbage = app.client().with_api_key("hello");
    assert_eq!(
        garbage.component_me().await.unwrap_err().status(),
        Some(401)
    );
    assert_eq!(
        app.client().component_me().await.unwrap_err().status(),
        Some(401)
    );
    // A session is not a component key.
    assert_eq!(admin.component_me().await.unwrap_err().status(), Some(401));
}

#[tokio::test]
async fn components_reach_only_their_own_resources() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = token(&admin, "t").await;
    let north = register(&app, &token, ComponentKind::Collector, "north", "m-1").await;
    let south = register(&app, &token, ComponentKind::Collector, "south", "m-2").await;
    let agent = register(&app, &token, ComponentKind::Agent, "web-01", "m-3").await;
    for reg in [&north, &south, &agent] {
        admin.approve_component(reg.component_id).await.unwrap();
    }
    let agent_node = admin
        .get_component(agent.component_id)
        .await
        .unwrap()
        .node_id
        .unwrap();
    let north_client = keyed(&app, &north);
    let error = north_client
        .collector_config(south.component_id, None)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403), "{error}");
    let report = plantwatch_shared::api::CollectorReport {
        version: "1".into(),
        ..Default::default()
    };
    let error = north_client
        .report(south.component_id, &report)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403));
    let error = north_client
        .heartbeat(agent_node, &Heartbeat::default())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403), "a collector sends no heartbeat");
    let agent_client = keyed(&app, &agent);
    let error = agent_client
        .collector_config(agent.component_id, None)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403), "an agent has no configuration");
}

#[tokio::test]
async fn expired_revoked_used_up_and_unknown_tokens_are_refused_at_register() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let short = admin
        .create_token(&CreateTokenRequest {
            name: "short".into(),
            expires_in_s: Some(1),
            ..CreateTokenRequest::default()
        })
        .await
        .unwrap();
    let once = admin
        .create_token(&CreateTokenRequest {
            name: "once".into(),
            max_uses: Some(1),
            ..CreateTokenRequest::default()
        })
        .await
        .unwrap();
    let revoked = token(&admin, "revoked").await;
    let revoked_id = admin.list_tokens(&Default::default()).await.unwrap().items[0].id;
    admin.revoke_token(revoked_id).await.unwrap();

    register(&app, &once.secret, ComponentKind::Agent, "a1", "m-1").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let cases = [
        (short.secret.clone(), "token_expired"),
        (once.secret.clone(), "token_exhausted"),
        (revoked, "token_revoked"),
        (Secret::new("pwe_unknown"), "invalid_token"),
        (Secret::new("pwk_1_abc"), "invalid_token"),
    ];
    for (secret, code) in cases {
        let error = app
            .client()
            .register(&registration(&secret, ComponentKind::Agent, "a2", "m-2"))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(401), "{code}: {error}");
        assert_eq!(error.code(), Some(ErrorCode::parse(code)));
    }
    let tokens = admin.list_tokens(&Default::default()).await.unwrap();
    let states: BTreeMap<String, TokenState> = tokens
        .items
        .into_iter()
        .map(|t| (t.name, t.state))
        .collect();
    assert_eq!(states["short"], TokenState::Expired);
    assert_eq!(states["once"], TokenState::Exhausted);
    assert_eq!(states["revoked"], TokenState::Revoked);
    // Nothing was written by a refused registration.
    let components: i64 = db(&app)
        .query_row("SELECT count(*) FROM remote_components", [], |r| r.get(0))
        .unwrap();
    assert_eq!(components, 2, "local + a1");
}

#[tokio::test]
async fn registration_fields_are_validated_and_names_are_unique_per_kind() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = token(&admin, "t").await;
    register(&app, &token, ComponentKind::Collector, "north", "m-1").await;
    let cases: Vec<(RegisterRequest, u16, &str)> = vec![
        (
            registration(&token, ComponentKind::Collector, "", "m-9"),
            400,
            "invalid_registration",
        ),
        (
            registration(&token, ComponentKind::Collector, "x", "has space"),
            400,
            "invalid_registration",
        ),
        (
            registration(&token, ComponentKind::Collector, "x", &"m".repeat(129)),
            400,
            "invalid_registration",
        ),
        (
            registration(&token, ComponentKind::Collector, "NORTH", "m-9"),
            409,
            "name_taken",
        ),
        (
            registration(&token, ComponentKind::Collector, "Local", "m-9"),
            409,
            "name_taken",
        ),
        (
            registration(&token, ComponentKind::Collector, "x", "local"),
            409,
            "machine_id_reserved",
        ),
    ];
    for (request, status, code) in cases {
        let error = app.client().register(&request).await.unwrap_err();
        assert_eq!(error.status(), Some(status), "{request:?}: {error}");
        assert_eq!(error.code(), Some(ErrorCode::parse(code)), "{request:?}");
    }
    // Another kind may share the name.
    register(&app, &token, ComponentKind::Agent, "north", "m-2").await;
    let mut long_version = registration(&token, ComponentKind::Agent, "y", "m-3");
    long_version.version = "v".repeat(65);
    let error = app.client().register(&long_version).await.unwrap_err();
    assert_eq!(error.status(), Some(400));
}

#[tokio::test]
async fn approving_an_agent_asks_which_node_when_one_matches_its_host_or_creates_one_and_it_heartbeats_for_it()
 {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = token(&admin, "t").await;
    let existing = admin
        .create_node(&NodeSpec {
            name: "web-01".into(),
            address: "10.0.0.5".into(),
            ..NodeSpec::default()
        })
        .await
        .unwrap();
    let web = register(&app, &token, ComponentKind::Agent, "web-01", "m-1").await;
    let db7 = register(&app, &token, ComponentKind::Agent, "db-07", "m-2").await;
    // A node named like the host exists: the approval asks which node, naming it.
    let error = admin.approve_component(web.component_id).await.unwrap_err();
    assert_eq!(error.status(), Some(409));
    assert_eq!(error.code(), Some(ErrorCode::NodeChoiceNeeded));
    assert!(error.to_string().contains("web-01"), "{error}");
    let pending = admin
        .list_components(&ComponentQuery::default())
        .await
        .unwrap();
    assert!(
        pending
            .items
            .iter()
            .any(|c| c.id == web.component_id && c.approved_at.is_none()),
        "refused, nothing approved"
    );
    let web_view = admin
        .approve_agent(
            web.component_id,
            &ApproveRequest {
                node: Some("web-01".into()),
                ..ApproveRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(web_view.node_id, Some(existing.id), "the node chosen");
    assert_eq!(web_view.node.as_deref(), Some("web-01"));
    // Or a new node of its own, beside the existing one.
    let twin = app
        .client()
        .register(&RegisterRequest {
            hostname: Some("web-01".into()),
            ..common::registration(&token, ComponentKind::Agent, "web-01-b", "m-3")
        })
        .await
        .unwrap();
    let twin_view = admin
        .approve_agent(
            twin.component_id,
            &ApproveRequest {
                new_node: true,
                ..ApproveRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(twin_view.node.as_deref(), Some("web-01-agent"));
    assert_ne!(twin_view.node_id, Some(existing.id));
    let db_view = admin.approve_component(db7.component_id).await.unwrap();
    let created = admin.get_node(db_view.node_id.unwrap()).await.unwrap();
    assert_eq!(created.name, "db-07");
    assert_eq!(created.address, "db-07");
    assert_eq!(created.node_type, plantwatch_shared::api::NodeType::Server);

    let agent = keyed(&app, &web);
    let me = agent.component_me().await.unwrap();
    assert_eq!(me.node_id, Some(existing.id));
    let ack = agent
        .heartbeat(
            existing.id,
            &Heartbeat {
                inventory: None,
                version: "0.1.0".into(),
                uptime_s: Some(5),
            },
        )
        .await
        .unwrap();
    assert_eq!(ack.node_id, existing.id);
    let upgraded = agent
        .heartbeat(
            existing.id,
            &Heartbeat {
                inventory: None,
                version: "0.2.0".into(),
                uptime_s: None,
            },
        )
        .await;
    upgraded.unwrap();
    let shown = admin.get_component(web.component_id).await.unwrap();
    assert_eq!(
        shown.version.as_deref(),
        Some("0.2.0"),
        "the heartbeat's version"
    );
    let error = agent
        .heartbeat(created.id, &Heartbeat::default())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403), "{error}");
    let listed = admin
        .list_components(&ComponentQuery {
            kind: Some(ComponentKind::Agent),
            status: Some(ComponentStatus::Online),
            ..ComponentQuery::default()
        })
        .await
        .unwrap();
    let online: Vec<&str> = listed.items.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        online,
        ["db-07", "web-01", "web-01-b"],
        "registering counts as contact"
    );

    // Its node deleted, the agent's heartbeats for it are refused at once.
    admin.delete_node(existing.id).await.unwrap();
    let error = agent
        .heartbeat(existing.id, &Heartbeat::default())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403), "{error}");
    assert_eq!(agent.component_me().await.unwrap().node_id, None);
}

#[tokio::test]
async fn the_local_collector_is_approved_protected_and_pulls_its_own_config() {
    const SECRET: &str = "local-secret-community-42";
    let app = spawn_app().await;
    let admin = app.admin().await;
    admin
        .create_credential(&community("ro", SECRET))
        .await
        .unwrap();
    let node = admin
        .create_node(&NodeSpec {
            name: "historian".into(),
            address: "127.0.0.1".into(),
            credentials: vec!["ro".into()],
            ..NodeSpec::default()
        })
        .await
        .unwrap();
    assert_eq!(
        node.collector.as_deref(),
        Some("local"),
        "the default collector"
    );
    let local_id = admin_id(&admin, "local").await;
    let empty = admin.get_component(local_id).await.unwrap().config_sha256;
    let error = admin.revoke_component(local_id).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::LocalCollector));
    let error = admin.delete_component(local_id).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::LocalCollector));

    // It pulls over loopback HTTPS like any collector and reports the new configuration.
    let started = Instant::now();
    loop {
        let local = admin.get_component(local_id).await.unwrap();
        if local.config_in_sync == Some(true) && local.config_sha256 != empty {
            assert_eq!(local.status, ComponentStatus::Online);
            assert!(local.is_local);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the local collector never reported the new configuration: {local:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its configuration holds the credential in clear, in memory only: no file in the data dir
    // (database, WAL, the collector's status) holds the secret.
    assert!(!app.dir.path().join("local-collector/config.json").exists());
    assert!(app.dir.path().join("local-collector/status.json").exists());
    let mut files = vec![app.dir.path().to_owned()];
    let mut searched = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            searched += 1;
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{} holds the community in clear",
                path.display()
            );
        }
    }
    assert!(searched >= 5, "searched {searched} files");
}

#[tokio::test]
async fn role_matrix_of_every_component_route() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let clients = app.callers(&admin).await;
    let rows: Vec<(Method, &str, Option<Value>, [u16; 4])> = vec![
        (
            Method::GET,
            "/api/v1/enrollment-tokens",
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::POST,
            "/api/v1/enrollment-tokens",
            Some(json!({"name": "n"})),
            [401, 403, 403, 201],
        ),
        (
            Method::GET,
            "/api/v1/enrollment-tokens/{token}",
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::POST,
            "/api/v1/enrollment-tokens/{token}/revoke",
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::GET,
            "/api/v1/remote-components",
            None,
            [401, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/remote-components/{component}",
            None,
            [401, 200, 200, 200],
        ),
        (
            Method::POST,
            "/api/v1/remote-components/{component}/approve",
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::POST,
            "/api/v1/remote-components/{component}/revoke",
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::DELETE,
            "/api/v1/remote-components/{component}",
            None,
            [401, 403, 403, 204],
        ),
        // Component routes take an API key, never a session.
        (
            Method::GET,
            "/api/v1/components/me",
            None,
            [401, 401, 401, 401],
        ),
        (
            Method::GET,
            "/api/v1/remote-collectors/{component}/config",
            None,
            [401, 401, 401, 401],
        ),
        (
            Method::POST,
            "/api/v1/remote-collectors/{component}/report",
            Some(json!({"version": "1", "target_count": 0})),
            [401, 401, 401, 401],
        ),
        (
            Method::POST,
            "/api/v1/agents/heartbeat/1",
            Some(json!({"version": "1"})),
            [401, 401, 401, 401],
        ),
    ];
    let token_secret = token(&admin, "matrix").await;
    let mut failures = Vec::new();
    let mut n = 0;
    for (method, path, body, expected) in &rows {
        for ((who, client), expected) in clients.iter().zip(expected) {
            n += 1;
            let token_id = admin
                .create_token(&CreateTokenRequest {
                    name: format!("t{n}"),
                    ..CreateTokenRequest::default()
                })
                .await
                .unwrap()
                .token
                .id;
            let component = register(
                &app,
                &token_secret,
                ComponentKind::Collector,
                &format!("c{n}"),
                &format!("m{n}"),
            )
            .await;
            let path = path
                .replace("{token}", &token_id.to_string())
                .replace("{component}", &component.component_id.to_string());
            let body = body.as_ref().map(|b| b.to_string());
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
    // Registration needs only the enrollment token.
    let (status, _) = app
        .client()
        .send_raw(
            Method::POST,
            "/api/v1/components/register",
            Some("application/json"),
            serde_json::to_vec(&registration(
                &token_secret,
                ComponentKind::Agent,
                "anon",
                "m-anon",
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    if status != 201 {
        failures.push(format!("anonymous register: expected 201, got {status}"));
    }
    assert!(failures.is_empty(), "role matrix:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_flood_of_wrong_keys_is_answered_429_while_verified_keys_keep_working() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = token(&admin, "t").await;
    let reg = register(&app, &token, ComponentKind::Collector, "north", "m-1").await;
    admin.approve_component(reg.component_id).await.unwrap();
    let good = keyed(&app, &reg);
    good.component_me().await.unwrap();

    // Each wrong key for a real component costs a bcrypt verify: after 30 a minute, 429.
    let forged = app
        .client()
        .with_api_key(format!("pwk_{}_forged", reg.component_id));
    let mut statuses = Vec::new();
    for _ in 0..32 {
        statuses.push(forged.component_me().await.unwrap_err().status().unwrap());
    }
    assert_eq!(&statuses[..30], &[401; 30]);
    assert_eq!(&statuses[30..], &[429, 429]);
    good.component_me().await.unwrap();
}

#[tokio::test]
async fn components_are_filtered_sorted_and_paged() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = token(&admin, "t").await;
    for (kind, name) in [
        (ComponentKind::Collector, "north"),
        (ComponentKind::Collector, "south"),
        (ComponentKind::Agent, "web-01"),
        (ComponentKind::Agent, "db-07"),
    ] {
        register(&app, &token, kind, name, &format!("m-{name}")).await;
    }
    let south = admin_id(&admin, "south").await;
    admin.approve_component(south).await.unwrap();
    let names = |list: plantwatch_shared::api::ListResponse<plantwatch_shared::api::Component>| {
        (
            list.total,
            list.items.into_iter().map(|c| c.name).collect::<Vec<_>>(),
        )
    };
    let query = |kind, status, q: Option<&str>, sort: Option<&str>| ComponentQuery {
        kind,
        status,
        q: q.map(str::to_owned),
        sort: sort.map(str::to_owned),
        ..ComponentQuery::default()
    };
    let all = names(
        admin
            .list_components(&query(None, None, None, None))
            .await
            .unwrap(),
    );
    assert_eq!(
        all,
        (
            5,
            vec![
                "db-07".into(),
                "north".into(),
                "web-01".into(),
                "local".into(),
                "south".into()
            ]
        ),
        "pending first, then by name"
    );
    let collectors = admin
        .list_components(&query(
            Some(ComponentKind::Collector),
            None,
            None,
            Some("-name"),
        ))
        .await
        .unwrap();
    assert_eq!(names(collectors).1, ["south", "north", "local"]);
    let pending = admin
        .list_components(&query(
            None,
            Some(ComponentStatus::Pending),
            Some("0"),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(names(pending).1, ["db-07", "web-01"], "text in the name");
    let page = admin
        .list_components(&ComponentQuery {
            sort: Some("name".into()),
            limit: Some(2),
            offset: Some(2),
            ..ComponentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(names(page), (5, vec!["north".into(), "south".into()]));
    let error = admin
        .list_components(&query(None, None, None, Some("color")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::InvalidSort));
}

async fn admin_id(admin: &Client, name: &str) -> i64 {
    admin
        .list_components(&ComponentQuery::default())
        .await
        .unwrap()
        .items
        .iter()
        .find(|c| c.name == name)
        .unwrap()
        .id
}
