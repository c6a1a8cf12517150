//! Sign-in through a real directory: OpenLDAP's slapd on loopback, over LDAPS and StartTLS,
//! with the plant's people and (nested) groups loaded from LDIF.
//!
//! Active Directory's in-chain rule is not served by slapd; the nested walk (group searches one
//! level at a time) is what these tests exercise, with `memberOf` from slapd's memberof overlay.

use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;

use plantwatch_shared::api::{
    AuditAction, AuditQuery, ErrorCode, GroupLookup, GroupRole, LdapSettingsUpdate, LdapStepKind,
    LdapTestRequest, Role, UpdateUserRequest, UserQuery, UserSource,
};
use plantwatch_shared::{Client, Fingerprint, Secret};
use plantwatch_testkit::slapd::{
    self, ADMINS, BIND_DN, BIND_PASSWORD, GROUPS, OPERATORS, PEOPLE, SHIFT_LEADS, Slapd, VIEWERS,
};

use crate::common::{ADMIN, ADMIN_PASSWORD, TestApp, spawn_app_with};

/// The plant's directory settings: LDAPS with the test CA, `memberOf` and the nested walk.
fn plant_settings(directory: &Slapd) -> LdapSettingsUpdate {
    LdapSettingsUpdate {
        enabled: true,
        urls: vec![directory.ldaps_url.clone()],
        starttls: false,
        ca_pem: Some(directory.ca_pem.clone()),
        fingerprint: None,
        bind_dn: BIND_DN.to_owned(),
        bind_password: Some(BIND_PASSWORD.into()),
        user_base_dn: PEOPLE.to_owned(),
        user_filter: "(uid={user})".to_owned(),
        group_lookup: GroupLookup::MemberOf,
        group_base_dn: GROUPS.to_owned(),
        group_filter: String::new(),
        nested: true,
        group_roles: vec![
            GroupRole {
                group: ADMINS.to_owned(),
                role: Role::Admin,
            },
            GroupRole {
                group: OPERATORS.to_owned(),
                role: Role::Operator,
            },
            GroupRole {
                group: VIEWERS.to_owned(),
                role: Role::Viewer,
            },
        ],
        default_role: None,
        timeout_secs: 2,
    }
}

/// A directory, a server using it (`tweak` adjusts the settings), and its admin.
async fn plant(
    check_every: u64,
    tweak: impl FnOnce(&Slapd, &mut LdapSettingsUpdate),
) -> (Slapd, TestApp, Client) {
    let directory = tokio::task::spawn_blocking(Slapd::start).await.unwrap();
    let app = spawn_app_with(|c| c.ldap_check_interval_secs = check_every).await;
    let admin = app.admin().await;
    let mut settings = plant_settings(&directory);
    tweak(&directory, &mut settings);
    admin.set_ldap_settings(&settings).await.unwrap();
    (directory, app, admin)
}

async fn sign_in(
    app: &TestApp,
    name: &str,
) -> Result<plantwatch_shared::api::LoginResponse, plantwatch_shared::Error> {
    app.client().login(name, &slapd::password(name)).await
}

async fn failures(admin: &Client) -> Vec<serde_json::Value> {
    admin
        .audit(&AuditQuery {
            action: Some(AuditAction::AuthLoginFailed.to_string()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|entry| serde_json::json!({ "actor": entry.actor, "details": entry.details }))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_users_get_the_role_of_their_groups_nested_ones_included() {
    let (_directory, app, admin) = plant(300, |_, _| {}).await;

    let ana = sign_in(&app, "ana").await.unwrap();
    assert_eq!(ana.user.role, Role::Admin);
    assert_eq!(ana.user.source, UserSource::Ldap);
    // olaf is in shift-leads, which is a member of plant-operators.
    let olaf = sign_in(&app, "olaf").await.unwrap();
    assert_eq!(olaf.user.role, Role::Operator);
    let vera = sign_in(&app, "vera").await.unwrap();
    assert_eq!(vera.user.role, Role::Viewer);

    // The session works like a local one; the shadow rows list like local users.
    let me = app.client().with_token(olaf.token).me().await.unwrap();
    assert_eq!(me.user.username, "olaf");
    let users = admin.list_users(&UserQuery::default()).await.unwrap();
    let sources: Vec<(String, UserSource, Role)> = users
        .items
        .iter()
        .map(|u| (u.username.clone(), u.source, u.role))
        .collect();
    assert!(sources.contains(&("ana".into(), UserSource::Ldap, Role::Admin)));
    assert!(sources.contains(&(ADMIN.into(), UserSource::Local, Role::Admin)));

    // A second sign-in reuses the row.
    sign_in(&app, "ana").await.unwrap();
    let users = admin.list_users(&UserQuery::default()).await.unwrap();
    assert_eq!(
        users.items.iter().filter(|u| u.username == "ana").count(),
        1
    );

    // The audit log says where the sign-in came from.
    let logins = admin
        .audit(&AuditQuery {
            action: Some(AuditAction::AuthLogin.to_string()),
            actor: Some("olaf".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let details = logins.items[0].details.clone().unwrap();
    assert_eq!(details["source"], "ldap");
    assert_eq!(details["role"], "operator");
    assert_eq!(
        details["groups"], 2,
        "shift-leads and plant-operators: {details}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_told_apart_in_the_audit_log_and_never_hold_the_password() {
    let (directory, app, admin) = plant(300, |_, _| {}).await;
    let client = app.client();

    let wrong = client.login("ana", "not-her-password").await.unwrap_err();
    assert_eq!(wrong.code(), Some(ErrorCode::InvalidCredentials));
    let unknown = client.login("nobody", "some-password").await.unwrap_err();
    assert_eq!(unknown.code(), Some(ErrorCode::InvalidCredentials));
    assert_eq!(wrong.to_string(), unknown.to_string());
    // Empty: refused before anything is sent (an empty simple bind is anonymous and succeeds).
    // Every attempt that reaches the directory starts with the service account's bind.
    let binds = directory.binds_as(BIND_DN);
    assert!(
        binds >= 2,
        "slapd logged {binds} service binds:\n{}",
        directory.log()
    );
    let empty = client.login("ana", "").await.unwrap_err();
    assert_eq!(empty.code(), Some(ErrorCode::InvalidCredentials));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        directory.binds_as(BIND_DN),
        binds,
        "the empty password reached the directory"
    );
    // nora's password is right, but she is in no mapped group.
    let nogroup = sign_in(&app, "nora").await.unwrap_err();
    assert_eq!(nogroup.status(), Some(403));
    assert_eq!(nogroup.code(), Some(ErrorCode::NoRole));

    let reasons: Vec<(String, String)> = failures(&admin)
        .await
        .iter()
        .map(|f| {
            (
                f["actor"].as_str().unwrap_or("").to_owned(),
                f["details"]["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for expected in [
        ("ana", "wrong_password"),
        ("nobody", "unknown_user"),
        ("ana", "empty_password"),
        ("nora", "no_group"),
    ] {
        assert!(
            reasons.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {reasons:?}"
        );
    }
    let log = serde_json::to_string(&admin.audit(&AuditQuery::default()).await.unwrap()).unwrap();
    for secret in ["not-her-password", "nora-pass-1", BIND_PASSWORD] {
        assert!(!log.contains(secret), "{secret} is in the audit log");
    }

    // With a default role, nora is let in as a viewer.
    let mut settings = plant_settings(&directory);
    settings.default_role = Some(Role::Viewer);
    settings.bind_password = None; // kept
    admin.set_ldap_settings(&settings).await.unwrap();
    assert_eq!(sign_in(&app, "nora").await.unwrap().user.role, Role::Viewer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_users_are_throttled_like_local_ones() {
    let (_directory, app, _admin) = plant(300, |_, _| {}).await;
    let client = app.client();
    for _ in 0..5 {
        let err = client.login("ana", "wrong-password").await.unwrap_err();
        assert_eq!(err.status(), Some(401));
    }
    // Locked from this address: even her right password is answered 429.
    let locked = sign_in(&app, "ana").await.unwrap_err();
    assert_eq!(locked.status(), Some(429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_the_group_search_and_certificate_checks() {
    let (directory, app, admin) = plant(300, |directory, s| {
        s.urls = vec![directory.ldap_url.clone()];
        s.starttls = true;
        s.group_lookup = GroupLookup::Search;
        s.group_filter = "(member={dn})".into();
    })
    .await;
    // StartTLS and the group search, nested: olaf reaches plant-operators through shift-leads.
    let report = admin
        .test_ldap(&LdapTestRequest {
            username: "olaf".into(),
            password: None,
        })
        .await
        .unwrap();
    assert!(report.ok, "{report:#?}");
    let tls = report
        .steps
        .iter()
        .find(|s| s.step == LdapStepKind::Tls)
        .unwrap();
    assert!(tls.detail.starts_with("StartTLS"), "{tls:?}");
    let nested: Vec<(&str, bool)> = report
        .groups
        .iter()
        .map(|g| (g.dn.as_str(), g.nested))
        .collect();
    assert_eq!(nested, vec![(SHIFT_LEADS, false), (OPERATORS, true)]);
    assert_eq!(
        sign_in(&app, "olaf").await.unwrap().user.role,
        Role::Operator
    );

    // A CA that did not issue the directory's certificate: no sign-in, and the test names TLS.
    let mut settings = plant_settings(&directory);
    settings.bind_password = None;
    settings.ca_pem = Some(slapd::certificate_chain().0);
    admin.set_ldap_settings(&settings).await.unwrap();
    let refused = sign_in(&app, "ana").await.unwrap_err();
    assert_eq!(refused.status(), Some(503));
    assert_eq!(refused.code(), Some(ErrorCode::DirectoryUnavailable));
    let report = admin
        .test_ldap(&LdapTestRequest {
            username: "ana".into(),
            password: None,
        })
        .await
        .unwrap();
    assert!(!report.ok);
    let failed = report.steps.iter().find(|s| !s.ok).unwrap();
    assert_eq!(failed.step, LdapStepKind::Tls);
    // It names the certificate it refused, by the fingerprint an admin can check and pin.
    let der = rustls::pki_types::CertificateDer::from_pem_slice(directory.cert_pem.as_bytes());
    let pin = Fingerprint::of_der(der.as_ref().unwrap());
    assert!(failed.detail.contains("is not trusted"), "{failed:?}");
    assert!(failed.detail.contains(&pin.to_hex()), "{failed:?}");

    // Pinned by fingerprint instead of a CA: exactly that certificate is accepted.
    settings.ca_pem = None;
    settings.fingerprint = Some(pin.to_hex());
    admin.set_ldap_settings(&settings).await.unwrap();
    assert_eq!(sign_in(&app, "ana").await.unwrap().user.role, Role::Admin);
    settings.fingerprint = Some(Fingerprint::of_der(b"another certificate").to_string());
    admin.set_ldap_settings(&settings).await.unwrap();
    assert_eq!(sign_in(&app, "ana").await.unwrap_err().status(), Some(503));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_over_then_a_dead_or_hanging_directory_leaves_local_admins_their_way_in() {
    // The first URL has nothing listening: the second answers.
    let dead = format!("ldaps://127.0.0.1:{}", plantwatch_testkit::free_port());
    let (mut directory, app, admin) = plant(300, |directory, s| {
        s.urls = vec![dead.clone(), directory.ldaps_url.clone()];
    })
    .await;
    assert_eq!(sign_in(&app, "ana").await.unwrap().user.role, Role::Admin);

    // Frozen: a sign-in waits no longer than the step timeout (2 s), and the server answers
    // everything else meanwhile.
    directory.pause();
    let started = Instant::now();
    let hung = tokio::spawn({
        let client = app.client();
        async move { client.login("ana", &slapd::password("ana")).await }
    });
    for _ in 0..5 {
        let asked = Instant::now();
        app.client().health().await.unwrap();
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "health took {:?}",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = hung.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::DirectoryUnavailable));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // The local admin signs in while the directory hangs, and after it is gone.
    app.client().login(ADMIN, ADMIN_PASSWORD).await.unwrap();
    directory.resume();
    let _ = directory.child.kill();
    let _ = directory.child.wait();
    let refused = sign_in(&app, "ana").await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::DirectoryUnavailable));
    app.client().login(ADMIN, ADMIN_PASSWORD).await.unwrap();
    // Outage failures do not lock the address: more of them, then the local admin still gets in.
    for _ in 0..6 {
        let _ = sign_in(&app, "ana").await;
    }
    app.client().login(ADMIN, ADMIN_PASSWORD).await.unwrap();
    let reasons = failures(&admin).await;
    assert!(
        reasons
            .iter()
            .any(|f| f["details"]["reason"] == "directory_unavailable"),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_removed_from_a_group_loses_access_within_the_check_interval() {
    let (directory, app, admin) = plant(1, |_, _| {}).await;
    let ana = app
        .client()
        .with_token(sign_in(&app, "ana").await.unwrap().token);
    let vera_login = sign_in(&app, "vera").await.unwrap();
    let vera = app.client().with_token(vera_login.token);
    let olaf = app
        .client()
        .with_token(sign_in(&app, "olaf").await.unwrap().token);
    ana.me().await.unwrap();

    // An admin pins vera's role: her groups no longer set it.
    let pinned = admin
        .update_user(
            vera_login.user.id,
            &UpdateUserRequest {
                role: Some(Role::Operator),
                ..UpdateUserRequest::default()
            },
        )
        .await
        .unwrap();
    assert!(pinned.role_pinned);

    let ana_dn = slapd::person("ana");
    let olaf_dn = slapd::person("olaf");
    let vera_dn = slapd::person("vera");
    directory.add_member(ADMINS, &olaf_dn);
    directory.remove_member(ADMINS, &ana_dn);
    directory.remove_member(VIEWERS, &vera_dn);

    // Within a few check intervals: ana is out, olaf is an admin, vera (pinned) keeps her role.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ana_out = ana.me().await.is_err();
        let olaf_admin = olaf.me().await.is_ok_and(|me| me.user.role == Role::Admin);
        if ana_out && olaf_admin {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ana out: {ana_out}, olaf admin: {olaf_admin}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ana.me().await.unwrap_err().status(), Some(401));
    let vera_now = vera.me().await.unwrap();
    assert_eq!(vera_now.user.role, Role::Operator);
    // And she signs in again with it, in no group at all; with a wrong password she does not.
    let again = sign_in(&app, "vera").await.unwrap();
    assert_eq!(again.user.role, Role::Operator);
    let wrong = app.client().login("vera", "not-her-password").await;
    assert_eq!(wrong.unwrap_err().status(), Some(401));
    // Nor can ana sign in again.
    assert_eq!(
        sign_in(&app, "ana").await.unwrap_err().code(),
        Some(ErrorCode::NoRole)
    );

    assert_eq!(revocations(&admin).await, vec!["no_group"]);

    // Unpinned, vera's groups decide again: she is in none, so she is out too.
    admin
        .update_user(
            vera_login.user.id,
            &UpdateUserRequest {
                role_pinned: Some(false),
                ..UpdateUserRequest::default()
            },
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while vera.me().await.is_ok() {
        assert!(Instant::now() < deadline, "vera kept her session");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Directory sign-in switched off: olaf, still signed in, is out too; the local admin stays.
    olaf.me().await.unwrap();
    let mut off = plant_settings(&directory);
    off.enabled = false;
    off.bind_password = None;
    admin.set_ldap_settings(&off).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while olaf.me().await.is_ok() {
        assert!(Instant::now() < deadline, "olaf kept his session");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    admin.me().await.unwrap();
    assert_eq!(revocations(&admin).await[0], "directory_disabled");
}

/// The reasons of the `user.directory_revoke` audit rows, newest first.
async fn revocations(admin: &Client) -> Vec<String> {
    let revoked = admin
        .audit(&AuditQuery {
            action: Some(AuditAction::UserDirectoryRevoke.to_string()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    revoked
        .items
        .iter()
        .map(|row| {
            row.details.as_ref().unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_names_each_step_and_the_settings_never_show_the_password() {
    let (directory, app, admin) = plant(300, |_, _| {}).await;
    let report = admin
        .test_ldap(&LdapTestRequest {
            username: "olaf".into(),
            password: Some(slapd::password("olaf").into()),
        })
        .await
        .unwrap();
    assert!(report.ok, "{report:#?}");
    let steps: Vec<LdapStepKind> = report.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        [
            LdapStepKind::Connect,
            LdapStepKind::Tls,
            LdapStepKind::ServiceBind,
            LdapStepKind::Search,
            LdapStepKind::Groups,
            LdapStepKind::UserBind,
            LdapStepKind::Role,
        ]
    );
    assert_eq!(report.dn.as_deref(), Some(slapd::person("olaf").as_str()));
    assert_eq!(report.role, Some(Role::Operator));
    assert!(report.groups.iter().any(|g| g.dn == OPERATORS && g.nested));
    // A test signs nobody in.
    let users = admin.list_users(&UserQuery::default()).await.unwrap();
    assert!(!users.items.iter().any(|u| u.username == "olaf"));

    // A wrong service password fails at the service bind, and says so.
    let mut settings = plant_settings(&directory);
    settings.bind_password = Some("wrong-service-password".into());
    admin.set_ldap_settings(&settings).await.unwrap();
    let report = admin
        .test_ldap(&LdapTestRequest {
            username: "olaf".into(),
            password: None,
        })
        .await
        .unwrap();
    let failed = report.steps.iter().find(|s| !s.ok).unwrap();
    assert_eq!(failed.step, LdapStepKind::ServiceBind);
    assert!(failed.detail.contains("wrong DN or password"), "{failed:?}");

    // The settings show that a password is set, never the password.
    let shown = admin.ldap_settings().await.unwrap();
    assert!(shown.bind_password_set);
    let raw = serde_json::to_string(&shown).unwrap();
    assert!(!raw.contains("wrong-service-password") && !raw.contains(BIND_PASSWORD));
    let log = serde_json::to_string(&admin.audit(&AuditQuery::default()).await.unwrap()).unwrap();
    assert!(!log.contains("wrong-service-password"));

    // Plain LDAP to a host that is not loopback is refused.
    settings.urls = vec!["ldap://dc1.plant.example".into()];
    let refused = admin.set_ldap_settings(&settings).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::InvalidLdapSettings));
    assert!(refused.to_string().contains("in clear"), "{refused}");

    // A directory user's password is the directory's.
    settings = plant_settings(&directory);
    admin.set_ldap_settings(&settings).await.unwrap();
    let olaf = sign_in(&app, "olaf").await.unwrap();
    let olaf_client = app.client().with_token(olaf.token);
    let refused = olaf_client
        .change_password(&slapd::password("olaf"), "a-new-password-1")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::DirectoryUser));
    let refused = admin
        .update_user(
            olaf.user.id,
            &UpdateUserRequest {
                password: Some(Secret::from("a-new-password-1")),
                ..UpdateUserRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::DirectoryUser));
}
