//! Sessions, login, rate limiting, setup and certificate pinning, end to end over HTTPS.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;
#[path = "auth/directory.rs"]
mod directory;

use plantwatch_shared::api::ErrorCode;
use std::time::Duration;

use common::{ADMIN, ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with};
use plantwatch_server::server::start;
use plantwatch_shared::api::{Role, SetupRequest};
use plantwatch_shared::{Client, Error, Fingerprint};
use reqwest::Method;

#[tokio::test]
async fn login_with_the_right_password_opens_a_session() {
    let app = spawn_app().await;
    let client = app.client();
    let session = client.login(ADMIN, ADMIN_PASSWORD).await.unwrap();
    assert!(session.token.expose().starts_with("pws_"));
    assert_eq!(session.user.role, Role::Admin);
    let me = client.with_token(session.token).me().await.unwrap();
    assert_eq!(me.user.username, ADMIN);
    assert!(me.user.last_login_at.is_some());
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    let client = app.client();
    let wrong = client.login(ADMIN, "not-the-password").await.unwrap_err();
    let unknown = client
        .login("nobody", "not-the-password")
        .await
        .unwrap_err();
    assert_eq!(wrong.status(), Some(401));
    assert_eq!(unknown.status(), Some(401));
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert_eq!(wrong.code(), Some(ErrorCode::InvalidCredentials));
}

#[tokio::test]
async fn requests_without_a_valid_session_get_401() {
    let app = spawn_app().await;
    let anonymous = app.client();
    assert_eq!(
        anonymous.me().await.unwrap_err().code(),
        Some(ErrorCode::Unauthenticated)
    );
    let forged = app.client().with_token("pws_forged");
    assert_eq!(
        forged.me().await.unwrap_err().code(),
        Some(ErrorCode::InvalidToken)
    );
    let not_a_session = app.client().with_token("pwk_somekey");
    assert_eq!(not_a_session.me().await.unwrap_err().status(), Some(401));
}

#[tokio::test]
async fn rate_limit_answers_429_then_lets_the_user_in_after_the_window() {
    // The window must outlast five bcrypt checks on a loaded machine.
    let app = spawn_app_with(|c| c.login_window_secs = 8).await;
    let client = app.client();
    for _ in 0..5 {
        let err = client.login(ADMIN, "wrong-password").await.unwrap_err();
        assert_eq!(err.status(), Some(401));
    }
    // Locked: even the right password is refused, with Retry-After.
    let response = client
        .request(Method::POST, "/api/v1/auth/login")
        .json(&serde_json::json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=8).contains(&retry_after), "Retry-After {retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_attempts");

    // Waiting as long as Retry-After says is enough.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    client.login(ADMIN, ADMIN_PASSWORD).await.unwrap();
}

/// A client whose connections come from `source` (any 127.x address is this machine).
fn client_from(app: &TestApp, source: [u8; 4]) -> reqwest::Client {
    let _ = app;
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .local_address(std::net::IpAddr::from(source))
        .build()
        .unwrap()
}

async fn try_login(app: &TestApp, http: &reqwest::Client, user: &str, password: &str) -> u16 {
    http.post(format!("{}/api/v1/auth/login", app.server.url()))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_admin_out_and_is_locked_out_himself() {
    let app = spawn_app_with(|c| c.login_window_secs = 60).await;
    let attacker = client_from(&app, [127, 0, 0, 66]);
    for _ in 0..5 {
        assert_eq!(try_login(&app, &attacker, ADMIN, "guess").await, 401);
    }
    // The attacker's address is locked, for any user.
    assert_eq!(try_login(&app, &attacker, ADMIN, ADMIN_PASSWORD).await, 429);
    assert_eq!(try_login(&app, &attacker, "someone", "guess").await, 429);
    // A second address guessing on: refused one by one, slowed down, never 429 for the user.
    let other = client_from(&app, [127, 0, 0, 67]);
    let started = std::time::Instant::now();
    assert_eq!(try_login(&app, &other, ADMIN, "guess").await, 401);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "no slowdown after 5 failures: {:?}",
        started.elapsed()
    );
    // The real admin, from a clean address, with the right password: signed in.
    let admin = client_from(&app, [127, 0, 0, 1]);
    assert_eq!(try_login(&app, &admin, ADMIN, ADMIN_PASSWORD).await, 200);
}

#[tokio::test]
async fn sessions_expire_when_idle() {
    let app = spawn_app_with(|c| c.session_idle_timeout_secs = 2).await;
    let client = app.admin().await;
    client.me().await.unwrap();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let err = client.me().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SessionExpired));
    // And it stays gone.
    assert_eq!(
        client.me().await.unwrap_err().code(),
        Some(ErrorCode::InvalidToken)
    );
}

#[tokio::test]
async fn sessions_expire_at_their_absolute_age_even_when_busy() {
    let app = spawn_app_with(|c| {
        c.session_max_age_secs = 3;
        c.session_idle_timeout_secs = 100;
    })
    .await;
    let client = app.admin().await;
    for _ in 0..3 {
        client.me().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        client.me().await.unwrap_err().code(),
        Some(ErrorCode::SessionExpired)
    );
}

#[tokio::test]
async fn logout_invalidates_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    let client = app.admin().await;
    let other = app.admin().await;
    let response = client
        .request(Method::POST, "/api/v1/auth/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert_eq!(client.me().await.unwrap_err().status(), Some(401));
    // Other sessions of the same user are not affected.
    other.me().await.unwrap();
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_authenticates() {
    let app = spawn_app().await;
    let response = app
        .client()
        .request(Method::POST, "/api/v1/auth/login")
        .json(&serde_json::json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("Secure"));
    let pair = cookie.split(';').next().unwrap().to_owned();
    let me = app
        .client()
        .request(Method::GET, "/api/v1/auth/me")
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
}

#[tokio::test]
async fn changing_ones_password_ends_other_sessions() {
    let app = spawn_app().await;
    let client = app.admin().await;
    let other = app.admin().await;
    let wrong = client
        .change_password("not-current", "new-password-1")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some(ErrorCode::WrongPassword));
    let short = client
        .change_password(ADMIN_PASSWORD, "short")
        .await
        .unwrap_err();
    assert_eq!(short.code(), Some(ErrorCode::InvalidPassword));
    client
        .change_password(ADMIN_PASSWORD, "new-password-1")
        .await
        .unwrap();
    client.me().await.unwrap();
    assert_eq!(other.me().await.unwrap_err().status(), Some(401));
    assert_eq!(
        app.client()
            .login(ADMIN, ADMIN_PASSWORD)
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );
    app.client().login(ADMIN, "new-password-1").await.unwrap();
}

#[tokio::test]
async fn setup_code_creates_the_first_admin_once() {
    let app = spawn_app_with(|c| c.bootstrap_admin = None).await;
    let client = app.client();
    assert!(client.setup_status().await.unwrap().setup_required);
    let code = app.server.setup_code.clone().expect("a setup code");
    let file = app.dir.path().join("setup-code");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), code);
    // Nobody can log in yet.
    assert_eq!(
        client
            .login("root", "whatever-1")
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );

    let request = |code: &str| SetupRequest {
        code: code.into(),
        username: "root".to_owned(),
        password: "root-password".into(),
    };
    let wrong = client.setup(&request("AAAA-BBBB-CCCC")).await.unwrap_err();
    assert_eq!(
        (wrong.status(), wrong.code()),
        (Some(403), Some(ErrorCode::InvalidSetupCode))
    );

    // The code is accepted in lower case too, as people type it.
    let session = client.setup(&request(&code.to_lowercase())).await.unwrap();
    assert_eq!(session.user.role, Role::Admin);
    client.clone().with_token(session.token).me().await.unwrap();
    assert!(!client.setup_status().await.unwrap().setup_required);
    assert!(!file.exists(), "setup code file left behind");

    let again = client.setup(&request(&code)).await.unwrap_err();
    assert_eq!(
        (again.status(), again.code()),
        (Some(409), Some(ErrorCode::SetupDone))
    );
}

#[tokio::test]
async fn setup_is_409_when_an_admin_came_from_the_environment() {
    let app = spawn_app().await;
    assert!(app.server.setup_code.is_none());
    let err = app
        .client()
        .setup(&SetupRequest {
            code: "AAAA-BBBB-CCCC".into(),
            username: "x".into(),
            password: "xxxxxxxxxx".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
}

#[tokio::test]
async fn a_client_pinned_to_another_fingerprint_is_refused() {
    let app = spawn_app().await;
    let wrong = Fingerprint::of_der(b"some other certificate");
    let client = Client::new(&app.server.url(), Some(wrong)).unwrap();
    match client.health().await.unwrap_err() {
        Error::FingerprintMismatch { expected, actual } => {
            assert_eq!(expected, wrong);
            assert_eq!(Some(actual), app.server.fingerprint);
        }
        other => panic!("expected a fingerprint mismatch, got {other:?}"),
    }
    // Credentials are never sent to the impostor: login fails the same way.
    let err = client.login(ADMIN, ADMIN_PASSWORD).await.unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("intercepting"), "{err}");
}

#[tokio::test]
async fn probing_returns_the_served_fingerprint() {
    let app = spawn_app().await;
    let seen = Client::probe_fingerprint(&app.server.url()).await.unwrap();
    assert_eq!(seen, app.server.fingerprint);
}

#[tokio::test]
async fn restart_keeps_users_sessions_and_the_certificate() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (_, viewer_id) = app.user_with_role(&admin, "vera", Role::Viewer).await;
    let token_holder = app.admin().await;
    let fingerprint = app.server.fingerprint;
    let config = app.server.state.config.clone();
    let common::TestApp { server, dir } = app;
    server.shutdown().await.unwrap();

    let restarted = start(config).await.unwrap();
    assert_eq!(restarted.fingerprint, fingerprint);
    assert!(restarted.setup_code.is_none());
    // The old client (old port) is re-pointed at the new port with the same token and pin.
    let mut client = Client::new(&restarted.url(), restarted.fingerprint).unwrap();
    client.set_token(Some(
        token_holder_token(&token_holder).expect("a token").into(),
    ));
    let me = client.me().await.unwrap();
    assert_eq!(me.user.username, ADMIN);
    assert_eq!(client.get_user(viewer_id).await.unwrap().username, "vera");
    restarted.shutdown().await.unwrap();
    drop(dir);
}

/// The bearer token a client sends, read back through its Debug-free request builder.
fn token_holder_token(client: &Client) -> Option<String> {
    let request = client.request(Method::GET, "/").build().ok()?;
    let header = request.headers().get("authorization")?.to_str().ok()?;
    header.strip_prefix("Bearer ").map(str::to_owned)
}

#[tokio::test]
async fn a_supplied_certificate_is_served_and_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["plant1.example".to_owned()]).unwrap();
    let cert_path = dir.path().join("real.crt");
    let key_path = dir.path().join("real.key");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    let app = spawn_app_with(|c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;
    let expected = Fingerprint::of_der(certified.cert.der());
    assert_eq!(app.server.fingerprint, Some(expected));
    // Pinning ignores the host name: the certificate names plant1.example, we dial 127.0.0.1.
    app.admin().await.me().await.unwrap();
    assert!(
        !app.dir.path().join("tls").exists(),
        "generated a certificate anyway"
    );
}
