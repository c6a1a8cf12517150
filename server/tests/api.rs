//! The role matrix of every route, user management rules, the audit log and the error shape.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use plantwatch_shared::api::{AuditAction, ErrorCode};
use std::time::Duration;

use common::{ADMIN, TestApp, spawn_app, spawn_app_with};
use plantwatch_shared::Client;
use plantwatch_shared::api::{AuditQuery, CreateUserRequest, Role, UpdateUserRequest, UserQuery};
use reqwest::Method;
use serde_json::{Value, json};

/// Who sends a request in the matrix.
#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Viewer,
    Operator,
    Admin,
}

const WHO: [Who; 4] = [Who::Anonymous, Who::Viewer, Who::Operator, Who::Admin];

struct Route {
    method: Method,
    /// `{victim}` is replaced by the id of a viewer created for the row.
    path: &'static str,
    body: Option<Value>,
    /// Expected status for anonymous, viewer, operator, admin.
    expect: [u16; 4],
}

fn route(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 4]) -> Route {
    Route {
        method,
        path,
        body,
        expect,
    }
}

#[tokio::test]
async fn role_matrix_of_every_route() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (viewer, _) = app.user_with_role(&admin, "val", Role::Viewer).await;
    let (operator, _) = app.user_with_role(&admin, "otto", Role::Operator).await;
    let anonymous = app.client();

    let bad_password_change =
        json!({"current_password": "wrong-one", "new_password": "new-password-9"});
    let routes = vec![
        route(Method::GET, "/healthz", None, [200, 200, 200, 200]),
        route(Method::GET, "/api/v1/setup", None, [200, 200, 200, 200]),
        route(
            Method::POST,
            "/api/v1/setup",
            Some(json!({"code": "x", "username": "x", "password": "xxxxxxxx"})),
            [409, 409, 409, 409],
        ),
        route(Method::GET, "/api/v1/auth/me", None, [401, 200, 200, 200]),
        // Wrong current password: 400 shows the route was reached, 401 that it was not.
        route(
            Method::POST,
            "/api/v1/auth/password",
            Some(bad_password_change),
            [401, 400, 400, 400],
        ),
        route(Method::GET, "/api/v1/users", None, [401, 403, 403, 200]),
        route(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "new-{who}", "password": "password-new", "role": "viewer"})),
            [401, 403, 403, 201],
        ),
        route(
            Method::GET,
            "/api/v1/users/{victim}",
            None,
            [401, 403, 403, 200],
        ),
        route(
            Method::PATCH,
            "/api/v1/users/{victim}",
            Some(json!({"role": "operator"})),
            [401, 403, 403, 200],
        ),
        route(
            Method::DELETE,
            "/api/v1/users/{victim}",
            None,
            [401, 403, 403, 204],
        ),
        route(Method::GET, "/api/v1/audit", None, [401, 403, 403, 200]),
        route(
            Method::GET,
            "/api/v1/settings/ldap",
            None,
            [401, 403, 403, 200],
        ),
        route(
            Method::PUT,
            "/api/v1/settings/ldap",
            Some(
                json!({"enabled": false, "urls": [], "bind_dn": "", "user_base_dn": "", "user_filter": "(uid={user})"}),
            ),
            [401, 403, 403, 200],
        ),
        // No directory set up yet: 409 shows the route was reached.
        route(
            Method::POST,
            "/api/v1/settings/ldap/test",
            Some(json!({"username": "ana"})),
            [401, 403, 403, 409],
        ),
        route(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            [401, 204, 204, 204],
        ),
    ];

    let mut failures = Vec::new();
    for (index, row) in routes.iter().enumerate() {
        let victim = admin
            .create_user(&CreateUserRequest {
                username: format!("victim{index}"),
                password: "victim-password".into(),
                role: Role::Viewer,
            })
            .await
            .unwrap();
        for (who, expected) in WHO.iter().zip(row.expect) {
            // Logout ends the session: give each role a fresh one for that row.
            let client = match (who, row.path.ends_with("logout")) {
                (Who::Anonymous, _) => anonymous.clone(),
                (Who::Viewer, false) => viewer.clone(),
                (Who::Operator, false) => operator.clone(),
                (Who::Admin, false) => admin.clone(),
                (Who::Viewer, true) => app.login("val", "password-val").await,
                (Who::Operator, true) => app.login("otto", "password-otto").await,
                (Who::Admin, true) => app.admin().await,
            };
            let path = row.path.replace("{victim}", &victim.id.to_string());
            let body = row.body.as_ref().map(|b| {
                b.to_string()
                    .replace("{who}", &format!("{who:?}").to_lowercase())
            });
            let (status, bytes) = app
                .routed(
                    &client,
                    row.method.clone(),
                    &path,
                    body.as_ref().map(|_| "application/json"),
                    body.unwrap_or_default().into_bytes(),
                )
                .await;
            if status != expected {
                failures.push(format!(
                    "{who:?} {} {path}: expected {expected}, got {status} {}",
                    row.method,
                    String::from_utf8_lossy(&bytes)
                ));
            }
            if status >= 400 {
                let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                assert!(error["error"]["code"].is_string(), "no error shape: {path}");
            }
        }
    }
    assert!(failures.is_empty(), "role matrix:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_deleted() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let me = admin.me().await.unwrap().user;
    let demote = UpdateUserRequest {
        role: Some(Role::Operator),
        password: None,
        role_pinned: None,
    };
    let err = admin.update_user(me.id, &demote).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some(ErrorCode::LastAdmin))
    );
    let err = admin.delete_user(me.id).await.unwrap_err();
    assert_eq!(err.status(), Some(409));

    // With a second admin, the first can be demoted; then the second is the last one.
    let (second, second_id) = app.user_with_role(&admin, "ada", Role::Admin).await;
    admin.update_user(me.id, &demote).await.unwrap();
    let err = second.update_user(second_id, &demote).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::LastAdmin));
    // The demoted admin lost admin rights at once, on the same session.
    assert_eq!(
        admin
            .list_users(&UserQuery::default())
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    // And the last admin cannot be deleted by anyone.
    second.delete_user(me.id).await.unwrap();
    let users = second.list_users(&UserQuery::default()).await.unwrap();
    assert_eq!(users.total, 1);
}

#[tokio::test]
async fn user_management_validates_input() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let create = |username: &str, password: &str| CreateUserRequest {
        username: username.to_owned(),
        password: password.into(),
        role: Role::Viewer,
    };
    let err = admin
        .create_user(&create("a b", "long-enough"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidUsername));
    let err = admin
        .create_user(&create("bea", "short"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidPassword));
    admin
        .create_user(&create("bea", "long-enough"))
        .await
        .unwrap();
    // Usernames are unique case-insensitively; the conflict names the field.
    let err = admin
        .create_user(&create("BEA", "long-enough"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some(ErrorCode::AlreadyExists))
    );
    match err {
        plantwatch_shared::Error::Api { details, .. } => {
            assert_eq!(details.unwrap()["field"], "username")
        }
        other => panic!("{other:?}"),
    }
    let err = admin.get_user(999).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some(ErrorCode::UserNotFound))
    );
    let err = admin
        .update_user(999, &UpdateUserRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NothingToChange));
}

#[tokio::test]
async fn a_password_reset_ends_the_users_sessions() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (viewer, viewer_id) = app.user_with_role(&admin, "vic", Role::Viewer).await;
    let reset = UpdateUserRequest {
        role: None,
        password: Some("reset-password".into()),
        role_pinned: None,
    };
    admin.update_user(viewer_id, &reset).await.unwrap();
    assert_eq!(viewer.me().await.unwrap_err().status(), Some(401));
    app.login("vic", "reset-password").await.me().await.unwrap();
}

#[tokio::test]
async fn users_list_pages_sorts_and_filters() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for name in ["carl", "bob"] {
        app.user_with_role(&admin, name, Role::Viewer).await;
    }
    let page: plantwatch_shared::api::ListResponse<plantwatch_shared::api::User> = admin
        .json(admin.request(Method::GET, "/api/v1/users?sort=-username&limit=2"))
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    let names: Vec<_> = page.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["carl", "bob"]);
    let matching = admin
        .list_users(&UserQuery {
            role: Some(Role::Viewer),
            q: Some("AR".into()),
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(matching.total, 1);
    assert_eq!(matching.items[0].username, "carl");
    let err = admin
        .empty(admin.request(Method::GET, "/api/v1/users?role=root"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidQuery));
    let err = admin
        .empty(admin.request(Method::GET, "/api/v1/users?sort=password_hash"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidSort));
    let err = admin
        .empty(admin.request(Method::GET, "/api/v1/users?limit=0"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidLimit));
}

#[tokio::test]
async fn every_write_is_audited_with_actor_and_source() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (_, id) = app.user_with_role(&admin, "aud", Role::Viewer).await;
    admin
        .update_user(
            id,
            &UpdateUserRequest {
                role: Some(Role::Operator),
                password: None,
                role_pinned: None,
            },
        )
        .await
        .unwrap();
    admin.delete_user(id).await.unwrap();
    let _ = app.client().login(ADMIN, "wrong-password").await;

    let log = admin.audit(&AuditQuery::default()).await.unwrap();
    let actions: Vec<&str> = log.items.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "setup.bootstrap_admin",
        "auth.login",
        "user.create",
        "user.set_role",
        "user.delete",
        "auth.login_failed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let delete = log
        .items
        .iter()
        .find(|e| e.action == AuditAction::UserDelete)
        .unwrap();
    assert_eq!(delete.actor, ADMIN);
    assert_eq!(
        delete.target.as_deref(),
        Some(format!("user:{id}").as_str())
    );
    assert_eq!(delete.source.as_deref(), Some("127.0.0.1"));
    // Newest first, and filterable by action prefix.
    assert!(log.items.windows(2).all(|w| w[0].id > w[1].id));
    let only_users = admin
        .audit(&AuditQuery {
            action: Some("user".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        only_users
            .items
            .iter()
            .all(|e| e.action.as_str().starts_with("user."))
    );
    assert_eq!(only_users.total, 3);
    // No secret ever lands in the log.
    let text = serde_json::to_string(&log.items).unwrap();
    assert!(!text.contains("password-aud") && !text.contains("pws_"));
}

async fn raw(
    client: &Client,
    method: Method,
    path: &str,
    ct: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let (status, bytes) = client
        .send_raw(method, path, ct, body.to_vec())
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, value)
}

#[tokio::test]
async fn bad_input_gets_the_json_error_shape() {
    let app: TestApp = spawn_app_with(|c| c.max_body_bytes = 2048).await;
    let admin = app.admin().await;
    let json_ct = Some("application/json");

    let (status, body) = raw(&admin, Method::POST, "/api/v1/users", json_ct, b"{not json").await;
    assert_eq!(
        (status, body["error"]["code"].as_str().map(ErrorCode::parse)),
        (400, Some(ErrorCode::InvalidJson))
    );

    let (status, body) = raw(
        &admin,
        Method::POST,
        "/api/v1/users",
        json_ct,
        br#"{"username": 5}"#,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_json");

    // A typo in a field name is reported, not silently ignored.
    let typo = br#"{"username": "ted", "password": "long-enough", "rol": "admin"}"#;
    let (status, body) = raw(&admin, Method::POST, "/api/v1/users", json_ct, typo).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("rol"),
        "{body}"
    );

    let big = format!(
        r#"{{"username":"x","password":"{}","role":"viewer"}}"#,
        "x".repeat(10_000)
    );
    let (status, body) = raw(
        &admin,
        Method::POST,
        "/api/v1/users",
        json_ct,
        big.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str().map(ErrorCode::parse)),
        (413, Some(ErrorCode::PayloadTooLarge))
    );

    let (status, body) = raw(
        &admin,
        Method::POST,
        "/api/v1/users",
        Some("text/plain"),
        b"{}",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str().map(ErrorCode::parse)),
        (415, Some(ErrorCode::UnsupportedMediaType))
    );

    let (status, body) = raw(&admin, Method::GET, "/api/v1/no-such-thing", None, b"").await;
    assert_eq!(
        (status, body["error"]["code"].as_str().map(ErrorCode::parse)),
        (404, Some(ErrorCode::RouteNotFound))
    );

    let (status, body) = raw(&admin, Method::PUT, "/api/v1/audit", None, b"").await;
    assert_eq!(
        (status, body["error"]["code"].as_str().map(ErrorCode::parse)),
        (405, Some(ErrorCode::MethodNotAllowed))
    );

    let (status, body) = raw(&admin, Method::GET, "/api/v1/users/not-a-number", None, b"").await;
    assert_eq!(
        (status, body["error"]["code"].as_str().map(ErrorCode::parse)),
        (400, Some(ErrorCode::InvalidPath))
    );

    let (status, body) = raw(&admin, Method::GET, "/api/v1/audit?limit=abc", None, b"").await;
    assert_eq!(
        (status, body["error"]["code"].as_str().map(ErrorCode::parse)),
        (400, Some(ErrorCode::InvalidQuery))
    );
}

#[tokio::test]
async fn a_failing_write_is_rolled_back_whole_and_answered_without_internals() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    // A real fault: the audit table vanishes under the running server, so the audit row of the
    // next write fails after the write itself succeeded inside the transaction.
    let db = rusqlite::Connection::open(app.dir.path().join("plantwatch.db")).unwrap();
    db.execute_batch("DROP TABLE audit_log").unwrap();

    let (status, bytes) = admin
        .send_raw(
            Method::POST,
            "/api/v1/users",
            Some("application/json"),
            br#"{"username": "half", "password": "long-enough", "role": "viewer"}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(status, 500);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "internal");
    let text = body.to_string();
    assert!(
        !text.contains("audit_log") && !text.contains("sqlite"),
        "{text}"
    );
    assert!(body["error"]["details"]["request_id"].is_string(), "{text}");

    // Nothing half-written: the user was not created either.
    let users = admin.list_users(&UserQuery::default()).await.unwrap();
    assert!(users.items.iter().all(|u| u.username != "half"));
}

#[tokio::test]
async fn concurrent_setups_create_exactly_one_admin() {
    let app = spawn_app_with(|c| c.bootstrap_admin = None).await;
    let code = app.server.setup_code.clone().unwrap();
    let attempts: Vec<_> = (0..4)
        .map(|i| {
            let client = app.client();
            let code = code.clone();
            tokio::spawn(async move {
                client
                    .setup(&plantwatch_shared::api::SetupRequest {
                        code: code.into(),
                        username: format!("first{i}"),
                        password: "first-password".into(),
                    })
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(err) => assert_eq!(err.status(), Some(409), "{err}"),
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn failures_from_one_address_lock_that_address_across_usernames() {
    let app = spawn_app_with(|c| c.login_max_failures = 3).await;
    let client = app.client();
    for name in ["u1", "u2", "u3"] {
        let err = client.login(name, "wrong-password").await.unwrap_err();
        assert_eq!(err.status(), Some(401));
    }
    // A fourth username from the same address is refused without a password check.
    let err = client.login("u4", "wrong-password").await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    let err = client
        .login(ADMIN, common::ADMIN_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(429));
}

/// Reads until the server closes the connection; how long that took.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt as _;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_and_their_number_is_capped() {
    use tokio::io::AsyncWriteExt as _;
    let app = common::spawn_app_with(|c| {
        c.insecure_http = true;
        c.http_header_timeout_secs = 1;
        c.http_idle_timeout_secs = 2;
        c.max_connections = 3;
    })
    .await;
    let addr = app.server.addr;
    // An idle connection and one stuck mid-header are closed after the header timeout.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The cap (3) is reached: a fourth connection is closed at once.
    let mut fourth = tokio::net::TcpStream::connect(addr).await.unwrap();
    let refused = closed_within(&mut fourth, Duration::from_millis(500)).await;
    assert!(refused.is_some(), "a connection past the cap was kept");
    for stream in [&mut idle, &mut slow, &mut third] {
        let took = closed_within(stream, Duration::from_secs(5)).await;
        let took = took.expect("an idle connection was never closed");
        assert!(took < Duration::from_secs(4), "closed after {took:?}");
    }
    // A kept-alive connection that goes quiet after a request is closed too.
    let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut kept, Duration::from_secs(5))
            .await
            .is_some()
    );
    // An HTTP/2 connection that never sends a request: closed too (the first-request
    // timeout; once requests flow, the idle timeout).
    let mut h2 = tokio::net::TcpStream::connect(addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let took = closed_within(&mut h2, Duration::from_secs(8)).await;
    assert!(took.is_some(), "an idle HTTP/2 connection was never closed");
    // With the idle ones gone, requests are served again, and /metrics counted the refusal.
    let admin = app.admin().await;
    let (status, body) = admin
        .send_raw(reqwest::Method::GET, "/metrics", None, Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let refused: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("plantwatch_http_connections_refused_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(refused >= 1.0, "{text}");
}
