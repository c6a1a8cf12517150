//! Config delivery benchmark: generating a collector's configuration for 10,000 nodes with
//! their credentials decrypted, and pulling it over HTTPS (full document and `304`), against
//! the real server on loopback. Run with `cargo bench -p plantwatch-server --bench config_delivery`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod common;

use plantwatch_server::config_delivery;
use plantwatch_shared::api::{
    ComponentKind, ComponentQuery, CreateCredentialRequest, CredentialKind, CredentialParams,
    ImportQuery,
};
use plantwatch_shared::client::ConfigPull;

const NODES: usize = 10_000;
const ROUNDS: usize = 10;

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "p50 {:.1} ms, max {:.1} ms",
        common::percentile_ms(&samples, 0.5),
        common::percentile_ms(&samples, 1.0)
    )
}

#[tokio::main]
async fn main() {
    let bench = common::start_with(|_| {}).await;
    let (server, client, admin) = (&bench.server, &bench.client, &bench.admin);
    for (name, community) in [("ro", "public-ro"), ("ro-old", "legacy-ro")] {
        admin
            .create_credential(&CreateCredentialRequest {
                name: name.into(),
                kind: CredentialKind::SnmpV2c,
                params: CredentialParams::default(),
                secrets: BTreeMap::from([("community".to_owned(), community.into())]),
                networks: Vec::new(),
            })
            .await
            .unwrap();
    }
    let mut csv = String::from("name,address,type,credentials\n");
    for i in 0..NODES {
        csv.push_str(&format!(
            "plc-{i},10.{}.{}.{},plc,ro;ro-old\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    admin
        .import_nodes(csv.into_bytes(), false, &ImportQuery::default())
        .await
        .unwrap();
    let local = admin
        .list_components(&ComponentQuery {
            kind: Some(ComponentKind::Collector),
            ..ComponentQuery::default()
        })
        .await
        .unwrap()
        .items[0]
        .id;

    // Regeneration in one write transaction, as the delivery loop runs it.
    let state = server.state.clone();
    let mut regenerations = Vec::new();
    for _ in 0..ROUNDS {
        let vault = state.vault.clone();
        let started = Instant::now();
        state
            .db
            .write(move |tx| -> anyhow::Result<String> {
                config_delivery::regenerate(
                    tx,
                    &vault,
                    local,
                    plantwatch_server::clock::unix_secs(),
                )
            })
            .await
            .unwrap();
        regenerations.push(started.elapsed());
    }

    // Pulls over HTTPS by a remote collector that the same 10,000 nodes are moved to.
    let registration = common::approved_collector(&bench.admin, "north").await;
    let csv_move = "name,address,type,credentials,collector\n".to_owned()
        + &(0..NODES)
            .map(|i| {
                format!(
                    "plc-{i},10.{}.{}.{},plc,ro;ro-old,north\n",
                    i / 65536,
                    (i / 256) % 256,
                    i % 256
                )
            })
            .collect::<String>();
    admin
        .import_nodes(
            csv_move.into_bytes(),
            false,
            &ImportQuery {
                upsert: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let vault = state.vault.clone();
    let id = registration.component_id;
    state
        .db
        .write(move |tx| -> anyhow::Result<String> {
            config_delivery::regenerate(tx, &vault, id, plantwatch_server::clock::unix_secs())
        })
        .await
        .unwrap();
    let collector = client.clone().with_api_key(registration.api_key.clone());
    let mut pulls = Vec::new();
    let mut size = 0;
    let mut sha = String::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let ConfigPull::Changed {
            sha256,
            body,
            config,
        } = collector.collector_config(id, None).await.unwrap()
        else {
            panic!("no configuration");
        };
        pulls.push(started.elapsed());
        assert_eq!(config.targets.len(), NODES);
        size = body.len();
        sha = sha256;
    }
    let mut not_modified = Vec::new();
    for _ in 0..ROUNDS * 10 {
        let started = Instant::now();
        assert_eq!(
            collector.collector_config(id, Some(&sha)).await.unwrap(),
            ConfigPull::NotModified
        );
        not_modified.push(started.elapsed());
    }
    println!("{NODES} nodes, 2 credentials each (decrypted once per credential)");
    println!(
        "regenerate (build, hash, store, one transaction): {}",
        summary(regenerations)
    );
    println!(
        "pull, full document ({:.1} MiB): {}",
        size as f64 / (1024.0 * 1024.0),
        summary(pulls)
    );
    println!("pull, unchanged (304): {}", summary(not_modified));
    bench.server.shutdown().await.unwrap();
}
