//! The checks against real servers on loopback: TLS servers made with a private PKI (valid,
//! expiring, expired, the wrong name, self-signed, an intermediate missing), `openssl s_server`
//! speaking only TLS 1.0, an HTTP server (axum) for status, body and slowness, a closed port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use plantwatch_shared::api::{CheckSpec, TargetCheck};
use plantwatch_testkit::tls::{self, Pki};
use rustls::RootCertStore;

use super::*;

const NAME: &str = "hmi.plant.test";

fn roots(pki: &Pki) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.root_der()).unwrap();
    Arc::new(roots)
}

async fn tls_run(addr: SocketAddr, name: &str, roots: &Arc<RootCertStore>) -> super::tls::TlsRun {
    super::tls::run(1, addr, name, Duration::from_secs(5), roots).await
}

#[tokio::test]
async fn certificates_are_read_whatever_they_are_and_judged_apart() {
    let pki = Pki::new();
    let trust = roots(&pki);
    let now = OffsetDateTime::now_utc();

    // Valid, served with its intermediate: trusted, the name matches, 90 days left.
    let good = pki.leaf(&[NAME, "10.0.0.5"], tls::days(-1), tls::days(90));
    let addr = tls::serve(
        vec![good.cert.clone(), pki.intermediate_der()],
        good.key.clone_key(),
    )
    .await;
    let run = tls_run(addr, NAME, &trust).await;
    let f = &run.finding;
    assert!(run.up(), "{f:?}");
    assert!(run.valid(now) && f.trusted && f.name_matches, "{f:?}");
    assert_eq!(f.chain_length, 2);
    assert_eq!(f.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(
        f.subject.contains(NAME) && f.issuer.contains("Plant Issuing CA"),
        "{f:?}"
    );
    assert_eq!(f.sans, vec![NAME.to_owned(), "10.0.0.5".to_owned()]);
    assert_eq!(f.key, "EC P-256");
    assert_eq!(f.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(f.days_left(now), Some(89));
    // The chain's earliest expiry is the leaf's here (the CAs run for years).
    assert_eq!(f.chain_not_after, f.not_after);
    // The same server, untrusted by a collector without the plant's root: a finding, not a
    // failure, and the certificate is still read.
    let run = tls_run(addr, NAME, &Arc::new(RootCertStore::empty())).await;
    assert!(run.up() && run.valid(now) && !run.finding.trusted);
    assert!(
        run.finding
            .trust_problem
            .as_deref()
            .unwrap()
            .contains("trusted root")
    );

    // Expiring in 5 days: still valid, with its days left.
    let soon = pki.leaf(&[NAME], tls::days(-300), tls::days(5));
    let addr = tls::serve(vec![soon.cert, pki.intermediate_der()], soon.key).await;
    let run = tls_run(addr, NAME, &trust).await;
    assert!(run.valid(now) && run.finding.trusted);
    assert_eq!(run.finding.days_left(now), Some(4));

    // Expired: read, invalid, and not trusted (webpki refuses expired chains).
    let expired = pki.leaf(&[NAME], tls::days(-400), tls::days(-3));
    let addr = tls::serve(vec![expired.cert, pki.intermediate_der()], expired.key).await;
    let run = tls_run(addr, NAME, &trust).await;
    assert!(run.up() && !run.valid(now));
    assert!(run.finding.days_left(now).unwrap() < 0);

    // The wrong name: the chain is trusted, the name does not match.
    let run = tls_run(
        tls::serve(
            vec![good.cert.clone(), pki.intermediate_der()],
            good.key.clone_key(),
        )
        .await,
        "historian.plant.test",
        &trust,
    )
    .await;
    assert!(
        run.up() && !run.finding.name_matches && run.finding.trusted,
        "{:?}",
        run.finding
    );
    assert!(!run.valid(now));

    // Self-signed: valid dates and name, untrusted.
    let own = tls::self_signed(&[NAME]);
    let run = tls_run(tls::serve(vec![own.cert], own.key).await, NAME, &trust).await;
    assert!(run.valid(now) && !run.finding.trusted);
    assert_eq!(run.finding.chain_length, 1);

    // The intermediate missing: the leaf alone does not chain to the root.
    let run = tls_run(
        tls::serve(vec![good.cert.clone()], good.key.clone_key()).await,
        NAME,
        &trust,
    )
    .await;
    assert!(run.up() && !run.finding.trusted && run.finding.chain_length == 1);

    // Nothing listening: the check fails, with why.
    let closed: SocketAddr = format!("127.0.0.1:{}", plantwatch_testkit::free_port())
        .parse()
        .unwrap();
    let run = tls_run(closed, NAME, &trust).await;
    assert!(!run.up());
    assert!(
        run.finding
            .error
            .as_deref()
            .unwrap()
            .contains("no connection")
    );
}

#[tokio::test]
async fn a_plant_ca_given_on_the_check_is_trusted_and_can_be_required() {
    let pki = Pki::new();
    let leaf = pki.leaf(&[NAME], tls::days(-1), tls::days(200));
    let port = tls::serve(vec![leaf.cert, pki.intermediate_der()], leaf.key)
        .await
        .port();
    // A collector whose system trusts nothing of the plant's.
    let system = Arc::new(RootCertStore::empty());
    let client = http_client();
    let now = OffsetDateTime::now_utc();
    let measure = |spec: CheckSpec| {
        let (client, system) = (client.clone(), system.clone());
        async move {
            let check = TargetCheck { id: 4, spec };
            let roots = roots_for(&check, system);
            let (measured, run) = run_once("127.0.0.1", NAME, &check, &client, &roots).await;
            let mut out = Writer::new();
            write(&mut out, 1, &check, &measured, run.as_ref(), now);
            (run.unwrap(), out.take())
        }
    };
    let plain: CheckSpec = format!("tls:{port}@{NAME}").parse().unwrap();
    // Untrusted, and not required to be: valid.
    let (run, lines) = measure(plain.clone()).await;
    assert!(
        !run.finding.trusted && lines.contains("cert_valid=1"),
        "{lines}"
    );
    // Required: the same certificate is invalid (what `cert_invalid` alerts on).
    let mut required = plain.clone();
    required.require_trust = Some(true);
    let (run, lines) = measure(required).await;
    assert!(
        !run.finding.trusted && lines.contains("cert_valid=0"),
        "{lines}"
    );
    assert!(lines.contains("cert_trusted=0"), "{lines}");
    // The plant's root given on the check: trusted, and trust is required from then on.
    let mut with_ca = plain;
    with_ca.ca_pem = Some(pki.root_pem());
    assert_eq!(with_ca.problem(), None);
    let (run, lines) = measure(with_ca.clone()).await;
    assert!(run.finding.trusted, "{:?}", run.finding);
    assert!(
        lines.contains("cert_valid=1") && lines.contains("cert_trusted=1"),
        "{lines}"
    );
    // A device's own self-signed certificate given as the CA (openssl marks such certificates
    // as CAs, which webpki will not take as a leaf): trusted, as that very key.
    let own = tls::self_signed_ca(&[NAME]);
    let own_port = tls::serve(vec![own.cert.clone()], own.key.clone_key())
        .await
        .port();
    let mut pinned: CheckSpec = format!("tls:{own_port}@{NAME}").parse().unwrap();
    pinned.ca_pem = Some(own.pem.clone());
    let (run, lines) = measure(pinned.clone()).await;
    assert!(run.finding.trusted, "{:?}", run.finding);
    assert!(lines.contains("cert_valid=1"), "{lines}");
    // Another key under the same name is not.
    pinned.ca_pem = Some(tls::self_signed_ca(&[NAME]).pem);
    let (run, _) = measure(pinned).await;
    assert!(!run.finding.trusted, "{:?}", run.finding);
    // Another CA given: the plant's certificate does not chain to it, and is invalid.
    with_ca.ca_pem = Some(Pki::new().root_pem());
    let (run, lines) = measure(with_ca).await;
    assert!(
        !run.finding.trusted && lines.contains("cert_valid=0"),
        "{lines}"
    );
}

#[tokio::test]
async fn a_server_speaking_only_tls_1_0_is_a_finding() {
    let own = tls::self_signed(&[NAME]);
    let legacy = tls::LegacyServer::start(&own);
    let run = tls_run(legacy.address, NAME, &Arc::new(RootCertStore::empty())).await;
    assert!(run.legacy, "{:?}", run.finding);
    assert_eq!(
        run.finding.tls_version.as_deref(),
        Some(super::tls::LEGACY_VERSION)
    );
    assert!(!run.up());
    assert!(
        run.finding
            .error
            .as_deref()
            .unwrap()
            .contains("older than 1.2")
    );
    let mut out = Writer::new();
    let check = TargetCheck {
        id: 1,
        spec: "tls:443".parse().unwrap(),
    };
    // As the checker measures it: the port is up, speaking old TLS.
    let client = http_client();
    let roots = Arc::new(RootCertStore::empty());
    let legacy_check = TargetCheck {
        id: 1,
        spec: format!("tls:{}@{NAME}", legacy.address.port())
            .parse()
            .unwrap(),
    };
    let (measured, run) = run_once("127.0.0.1", "old-hmi", &legacy_check, &client, &roots).await;
    assert!(measured.up, "{measured:?}");
    write(
        &mut out,
        7,
        &check,
        &measured,
        run.as_ref(),
        OffsetDateTime::now_utc(),
    );
    let text = out.take();
    assert!(text.contains("tls_legacy=1"), "{text}");
    assert!(text.contains("up=1"), "{text}");
    assert!(
        !text.contains("cert_valid"),
        "no certificate, no verdict on it: {text}"
    );
}

/// An HTTP server: `/` answers ok, `/missing` 404, `/slow` after 1.5 s, `/health` a body.
async fn web() -> SocketAddr {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/health",
            get(|| async { "status: RUNNING, historian 4.2" }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn check(text: &str) -> TargetCheck {
    TargetCheck {
        id: 3,
        spec: text.parse::<CheckSpec>().unwrap(),
    }
}

#[tokio::test]
async fn http_checks_judge_status_body_and_time() {
    let addr = web().await;
    let port = addr.port();
    let client = http_client();
    let roots = Arc::new(RootCertStore::empty());
    let run = |spec: String| {
        let client = client.clone();
        let roots = roots.clone();
        async move {
            run_once("127.0.0.1", "historian", &check(&spec), &client, &roots)
                .await
                .0
        }
    };
    let ok = run(format!("http:{port}/")).await;
    assert!(ok.up && ok.http_status == Some(200), "{ok:?}");
    assert!(ok.time_ms.unwrap() < 1_000.0);

    let missing = run(format!("http:{port}/missing")).await;
    assert!(
        !missing.up && missing.http_status == Some(404),
        "{missing:?}"
    );

    let mut expect = check(&format!("http:{port}/missing"));
    expect.spec.expect_status = Some(404);
    let (as_expected, _) = run_once("127.0.0.1", "h", &expect, &client, &roots).await;
    assert!(as_expected.up, "{as_expected:?}");

    let mut text = check(&format!("http:{port}/health"));
    text.spec.expect_text = Some("RUNNING".into());
    assert!(
        run_once("127.0.0.1", "h", &text, &client, &roots)
            .await
            .0
            .up
    );
    text.spec.expect_text = Some("STOPPED".into());
    let wrong = run_once("127.0.0.1", "h", &text, &client, &roots).await.0;
    assert!(!wrong.up && wrong.problem.unwrap().contains("does not contain"));

    let slow = run(format!("http:{port}/slow")).await;
    assert!(slow.up && slow.time_ms.unwrap() >= 1_500.0, "{slow:?}");
    let mut hurried = check(&format!("http:{port}/slow"));
    hurried.spec.timeout_ms = Some(300);
    let late = run_once("127.0.0.1", "h", &hurried, &client, &roots)
        .await
        .0;
    assert!(!late.up && late.problem.unwrap().contains("no answer within"));

    // HTTPS to a server with a self-signed certificate: the page is judged, not the certificate.
    let own = tls::self_signed(&["127.0.0.1"]);
    let tls_port = tls::serve(vec![own.cert], own.key).await.port();
    let secure = run(format!("https:{tls_port}/")).await;
    assert!(secure.up && secure.http_status == Some(200), "{secure:?}");

    // A closed port, by HTTP and by TCP.
    let closed = plantwatch_testkit::free_port();
    assert!(!run(format!("http:{closed}/")).await.up);
    let tcp_closed = run(format!("tcp:{closed}")).await;
    assert!(!tcp_closed.up && tcp_closed.problem.is_some());
    let open = run(format!("tcp:{port}")).await;
    assert!(open.up && open.time_ms.is_some());
}

#[tokio::test]
async fn dns_checks_ask_the_node_and_judge_its_answer() {
    let server = plantwatch_testkit::dns::Dnsmasq::start(
        "plant.test",
        &[
            "--host-record=historian.plant.test,10.0.0.5",
            "--mx-host=plant.test,Mail.Plant.Test,10",
            "--txt-record=plant.test,v=spf1 -all",
        ],
    );
    let port = server.address.port();
    let client = http_client();
    let roots = Arc::new(RootCertStore::empty());
    let run = |spec: String| {
        let (client, roots) = (client.clone(), roots.clone());
        async move {
            run_once("127.0.0.1", "dc-1", &check(&spec), &client, &roots)
                .await
                .0
        }
    };
    let found = run(format!("dns:{port}:historian.plant.test")).await;
    assert!(found.up && found.time_ms.is_some(), "{found:?}");
    let right = run(format!("dns:{port}:historian.plant.test=10.0.0.5")).await;
    assert!(right.up, "{right:?}");
    let wrong = run(format!("dns:{port}:historian.plant.test=10.0.0.6")).await;
    assert!(!wrong.up, "{wrong:?}");
    assert!(
        wrong
            .problem
            .as_deref()
            .unwrap()
            .contains("answered 10.0.0.5"),
        "{wrong:?}"
    );
    // An MX answer is its mail server, whatever the case and the trailing dot.
    let mx = run(format!("dns:{port}:plant.test/MX=mail.plant.test.")).await;
    assert!(mx.up, "{mx:?}");
    let txt = run(format!("dns:{port}:plant.test/TXT=v=spf1 -all")).await;
    assert!(txt.up, "{txt:?}");
    // No such name: the server answered (its time is kept), the check fails and says why.
    let missing = run(format!("dns:{port}:mes.plant.test")).await;
    assert!(!missing.up && missing.time_ms.is_some(), "{missing:?}");
    assert!(
        missing.problem.as_deref().unwrap().contains("NXDOMAIN"),
        "{missing:?}"
    );
    // The name exists, without that record type.
    let no_v6 = run(format!("dns:{port}:historian.plant.test/AAAA")).await;
    assert!(!no_v6.up, "{no_v6:?}");
    // No name server there: no answer within the timeout.
    let mut silent = check(&format!(
        "dns:{}:historian.plant.test",
        plantwatch_testkit::free_port()
    ));
    silent.spec.timeout_ms = Some(500);
    let started = std::time::Instant::now();
    let dead = run_once("127.0.0.1", "dc-1", &silent, &client, &roots)
        .await
        .0;
    assert!(!dead.up && dead.time_ms.is_none(), "{dead:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Written as a metric line like any check.
    let mut out = Writer::new();
    write(
        &mut out,
        9,
        &check(&format!("dns:{port}:historian.plant.test")),
        &found,
        None,
        OffsetDateTime::now_utc(),
    );
    let text = out.take();
    assert!(text.contains("kind=dns") && text.contains("up=1"), "{text}");
}
