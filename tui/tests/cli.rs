//! The `plantwatch` command line against the real `plantwatch-server` binary over HTTPS.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{
    ADMIN_PASSWORD, CLI, Server, login, login_with, ok, plantwatch, server_command, start_server,
    stderr,
};

/// Whether `plantwatch` saved a client configuration under `config`.
fn saved(config: &Path) -> bool {
    config.join("plantwatch").join("config.toml").exists()
}

#[test]
fn an_admin_logs_in_manages_users_and_logs_out() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();

    let out = ok(&login(&server, cfg));
    assert!(out.contains("Signed in to"), "{out}");
    let file = cfg.join("plantwatch").join("config.toml");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let me: serde_json::Value =
        serde_json::from_str(&ok(&plantwatch(cfg, &["whoami", "-o", "json"], ""))).unwrap();
    assert_eq!(me["user"]["username"], "admin");
    assert_eq!(me["user"]["role"], "admin");
    let table = ok(&plantwatch(cfg, &["whoami"], ""));
    assert!(table.starts_with("USER"), "{table}");

    let created = ok(&plantwatch(
        cfg,
        &[
            "users",
            "create",
            "olga",
            "--role",
            "operator",
            "--password-stdin",
        ],
        "olga-password\n",
    ));
    assert!(
        created.contains("olga") && created.contains("operator"),
        "{created}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&plantwatch(cfg, &["users", "list", "-o", "json"], ""))).unwrap();
    assert_eq!(listed["total"], 2);
    let table = ok(&plantwatch(cfg, &["users", "list"], ""));
    assert!(
        table
            .lines()
            .any(|l| l.contains("olga") && l.contains("operator")),
        "{table}"
    );

    ok(&plantwatch(
        cfg,
        &["users", "set-role", "olga", "viewer"],
        "",
    ));
    let demote_self = plantwatch(cfg, &["users", "set-role", "admin", "viewer"], "");
    assert_eq!(demote_self.status.code(), Some(1));
    assert!(
        stderr(&demote_self).contains("last admin"),
        "{}",
        stderr(&demote_self)
    );

    // Deleting asks for confirmation; without a terminal, --yes is required.
    let unconfirmed = plantwatch(cfg, &["users", "delete", "olga"], "");
    assert_eq!(unconfirmed.status.code(), Some(1));
    assert!(stderr(&unconfirmed).contains("--yes"));
    ok(&plantwatch(cfg, &["users", "delete", "olga", "--yes"], ""));
    let listed = ok(&plantwatch(cfg, &["users", "list"], ""));
    assert!(!listed.contains("olga"));

    ok(&plantwatch(cfg, &["logout"], ""));
    let after = plantwatch(cfg, &["whoami"], "");
    assert_eq!(after.status.code(), Some(1));
    assert!(
        stderr(&after).contains("plantwatch login"),
        "{}",
        stderr(&after)
    );
    // The token is gone from the file, the pinned fingerprint stays.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("pws_"));
    assert!(text.contains(&server.fingerprint));
}

#[test]
fn contexts_list_switch_and_remove() {
    let first = start_server();
    let second = start_server();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    ok(&login(&first, cfg));
    ok(&login(&second, cfg));
    let name_of = |s: &Server| s.url.trim_start_matches("https://").to_owned();

    let list: serde_json::Value = serde_json::from_str(&ok(&plantwatch(
        cfg,
        &["context", "list", "-o", "json"],
        "",
    )))
    .unwrap();
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items.iter().all(|c| c.get("token").is_none()),
        "token listed"
    );
    let current: Vec<_> = items.iter().filter(|c| c["current"] == true).collect();
    assert_eq!(current[0]["name"], name_of(&second));

    ok(&plantwatch(cfg, &["context", "use", &name_of(&first)], ""));
    let me: serde_json::Value =
        serde_json::from_str(&ok(&plantwatch(cfg, &["whoami", "-o", "json"], ""))).unwrap();
    assert_eq!(me["url"], first.url);
    // --context overrides the current one for one command.
    let me: serde_json::Value = serde_json::from_str(&ok(&plantwatch(
        cfg,
        &["whoami", "-o", "json", "--context", &name_of(&second)],
        "",
    )))
    .unwrap();
    assert_eq!(me["url"], second.url);

    ok(&plantwatch(
        cfg,
        &["context", "remove", &name_of(&first)],
        "",
    ));
    let none = plantwatch(cfg, &["whoami"], "");
    assert_eq!(none.status.code(), Some(1));
    let missing = plantwatch(cfg, &["context", "use", "nope"], "");
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn sites_status_asks_every_context_at_once_and_names_the_unreachable() {
    let first = start_server();
    let second = start_server();
    let gone = start_server();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    for server in [&gone, &first, &second] {
        ok(&login(server, cfg));
    }
    let name_of = |s: &Server| s.url.trim_start_matches("https://").to_owned();
    ok(&plantwatch(
        cfg,
        &[
            "nodes",
            "create",
            "plc-1",
            "--address",
            "127.0.0.1",
            "--context",
            &name_of(&first),
        ],
        "",
    ));
    let gone_name = name_of(&gone);
    drop(gone);
    let out = plantwatch(cfg, &["sites", "status", "-o", "json"], "");
    assert_eq!(
        out.status.code(),
        Some(3),
        "a site not read: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("1 of 3 site(s) not read"),
        "{}",
        stderr(&out)
    );
    let sites: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sites = sites.as_array().unwrap();
    assert_eq!(sites.len(), 3);
    // The unreachable one first, with why; then the others with their figures.
    assert_eq!(sites[0]["site"], gone_name.as_str());
    assert_eq!(sites[0]["state"], "unreachable");
    assert!(
        sites[0]["problem"].as_str().unwrap().contains("connect"),
        "{sites:?}"
    );
    let first_site = sites
        .iter()
        .find(|s| s["site"] == name_of(&first).as_str())
        .unwrap();
    assert_eq!(first_site["state"], "ok");
    let nodes: i64 = first_site["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(nodes, 1, "{first_site}");
    let second_site = sites
        .iter()
        .find(|s| s["site"] == name_of(&second).as_str())
        .unwrap();
    assert_eq!(second_site["current"], true);
    // --context names the site in use for this command.
    let out = plantwatch(
        cfg,
        &[
            "sites",
            "status",
            "-o",
            "json",
            "--context",
            &name_of(&first),
        ],
        "",
    );
    let sites: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let current: Vec<&serde_json::Value> = sites
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["site"], name_of(&first).as_str());
    assert_eq!(second_site["nodes"], serde_json::json!({}));
    // The table names the site in use with a star; the merged alerts name the one not read.
    let table = plantwatch(cfg, &["sites", "status"], "");
    let text = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        text.starts_with("SITE") && text.lines().next().unwrap().ends_with("PROBLEM"),
        "{text}"
    );
    assert!(text.contains(&format!("{} *", name_of(&second))), "{text}");
    let alerts = plantwatch(cfg, &["sites", "alerts"], "");
    assert_eq!(alerts.status.code(), Some(3));
    assert!(
        stderr(&alerts).contains(&format!("not read: {gone_name} (")),
        "{}",
        stderr(&alerts)
    );
}

#[test]
fn a_wrong_fingerprint_is_refused_and_nothing_is_saved() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let out = login_with(&server, config.path(), wrong, ADMIN_PASSWORD);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("intercepting"), "{err}");
    assert!(err.contains(&server.fingerprint), "{err}");
    assert!(!saved(config.path()));
}

#[test]
fn an_unknown_certificate_without_a_terminal_needs_fingerprint() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let out = plantwatch(
        config.path(),
        &["login", &server.url, "--user", "admin", "--password-stdin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("--fingerprint {}", server.fingerprint)),
        "{err}"
    );
}

#[test]
fn bad_password_and_bad_usage_have_distinct_exit_codes() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let out = login_with(
        &server,
        config.path(),
        &server.fingerprint,
        "wrong-password",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid username or password"),
        "{}",
        stderr(&out)
    );
    let usage = plantwatch(config.path(), &["users", "set-role", "x", "superuser"], "");
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        stderr(&usage).contains("unknown role"),
        "{}",
        stderr(&usage)
    );
}

/// Runs `plantwatch` on a pseudo-terminal (util-linux `script`) and answers its prompts as a
/// person would: each `(prompt, answer)` is typed once `prompt` has appeared on the screen.
/// Returns the screen and the exit status.
fn plantwatch_on_terminal(
    config: &Path,
    args: &str,
    dialogue: &[(&str, &str)],
) -> (String, std::process::ExitStatus) {
    use std::io::Read as _;
    use std::sync::{Arc, Mutex};

    let mut child = Command::new("script")
        .args(["-qec", &format!("{CLI} {args}"), "/dev/null"])
        .env("XDG_CONFIG_HOME", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux `script` is needed for terminal tests");
    let screen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = 0;
    for (prompt, answer) in dialogue {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = screen.lock().unwrap().clone();
            if let Some(at) = text[seen..].find(prompt) {
                seen += at + prompt.len();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no prompt {prompt:?} on screen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the program switch the terminal to no-echo after printing a password prompt.
        std::thread::sleep(Duration::from_millis(300));
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let text = screen.lock().unwrap().clone();
    (text, status)
}

#[test]
fn first_contact_shows_the_fingerprint_and_asks_like_ssh() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let args = format!("login {} --user admin", server.url);
    let trust = "Trust it and continue? [yes/no] ";
    let password = "Password for admin: ";

    let (screen, status) = plantwatch_on_terminal(config.path(), &args, &[(trust, "no")]);
    assert!(!status.success());
    assert!(screen.contains(&server.fingerprint), "{screen}");
    assert!(screen.contains("not trusted"), "{screen}");
    assert!(!saved(config.path()));

    let (screen, status) = plantwatch_on_terminal(
        config.path(),
        &args,
        &[(trust, "yes"), (password, ADMIN_PASSWORD)],
    );
    assert!(status.success(), "{screen}");
    assert!(screen.contains("Signed in to"), "{screen}");
    assert!(
        !screen.contains(ADMIN_PASSWORD),
        "the password was echoed: {screen}"
    );

    // The fingerprint is now pinned: the next login does not ask again.
    let (screen, status) =
        plantwatch_on_terminal(config.path(), &args, &[(password, ADMIN_PASSWORD)]);
    assert!(status.success(), "{screen}");
    assert!(!screen.contains("Trust it"), "{screen}");
}

#[test]
fn a_plain_http_development_server_needs_no_fingerprint() {
    let data = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = server_command(data.path(), &format!("127.0.0.1:{port}"))
        .arg("--insecure-http")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let config = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let out = plantwatch(
            config.path(),
            &["login", &url, "-u", "admin", "--password-stdin"],
            &format!("{ADMIN_PASSWORD}\n"),
        );
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok(&out).contains(&format!("Signed in to {url}")));
}

#[test]
fn the_console_without_a_terminal_points_to_the_subcommands() {
    let config = tempfile::tempdir().unwrap();
    let output = plantwatch(config.path(), &[], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the console needs a terminal"),
        "{}",
        stderr(&output)
    );
    assert!(!saved(config.path()));
    // The demo says so before it starts a server.
    let output = plantwatch(config.path(), &["demo"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("plantwatch: the console needs a terminal"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_admin_sets_up_the_directory_tests_it_and_a_directory_user_signs_in() {
    use plantwatch_testkit::slapd::{self, Slapd};
    let directory = Slapd::start();
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    ok(&login(&server, cfg));
    let ca = cfg.join("directory-ca.pem");
    std::fs::write(&ca, &directory.ca_pem).unwrap();

    // Before any setting, a test says what to do first.
    let early = plantwatch(cfg, &["ldap", "test", "ana"], "");
    assert_eq!(early.status.code(), Some(1));
    assert!(stderr(&early).contains("ldap set"), "{}", stderr(&early));

    let admins = format!("--map={}=admin", slapd::ADMINS);
    let operators = format!("--map={}=operator", slapd::OPERATORS);
    let shown = ok(&plantwatch(
        cfg,
        &[
            "ldap",
            "set",
            "--enable",
            "--openldap",
            "--url",
            &directory.ldaps_url,
            "--ca-file",
            ca.to_str().unwrap(),
            "--bind-dn",
            slapd::BIND_DN,
            "--bind-password-stdin",
            "--user-base",
            slapd::PEOPLE,
            "--group-base",
            slapd::GROUPS,
            &admins,
            &operators,
        ],
        &format!("{}\n", slapd::BIND_PASSWORD),
    ));
    assert!(
        shown.contains("bind_password") && shown.contains("set"),
        "{shown}"
    );
    assert!(!shown.contains(slapd::BIND_PASSWORD), "{shown}");
    assert!(
        shown.contains(&format!("{} → operator", slapd::OPERATORS)),
        "{shown}"
    );

    // The chain, step by step, for a user in a nested group; nobody is signed in.
    let report = ok(&plantwatch(cfg, &["ldap", "test", "olaf"], ""));
    for step in ["connect", "TLS", "service bind", "search", "groups", "role"] {
        assert!(report.contains(step), "{step} missing:\n{report}");
    }
    assert!(
        report.contains("nested") && report.contains("operator"),
        "{report}"
    );
    // A user in no mapped group: the test fails at the role, with exit code 1.
    let nora = plantwatch(cfg, &["ldap", "test", "nora"], "");
    assert_eq!(nora.status.code(), Some(1));
    assert!(
        stderr(&nora).contains("failed at role"),
        "{}",
        stderr(&nora)
    );

    // olaf signs in with his directory password, in his own client configuration.
    let olaf_config = tempfile::tempdir().unwrap();
    let olaf = plantwatch(
        olaf_config.path(),
        &[
            "login",
            &server.url,
            "--user",
            "olaf",
            "--password-stdin",
            "--fingerprint",
            &server.fingerprint,
        ],
        &format!("{}\n", slapd::password("olaf")),
    );
    assert!(ok(&olaf).contains("Signed in to"));
    let users = ok(&plantwatch(cfg, &["users", "list"], ""));
    let line = users.lines().find(|l| l.contains("olaf")).unwrap();
    assert!(
        line.contains("operator") && line.contains("ldap"),
        "{users}"
    );

    // Pinned by an admin, then handed back to the groups.
    let pinned = ok(&plantwatch(
        cfg,
        &["users", "set-role", "olaf", "viewer"],
        "",
    ));
    assert!(pinned.contains("ldap, role pinned"), "{pinned}");
    let unpinned = ok(&plantwatch(cfg, &["users", "unpin", "olaf"], ""));
    assert!(!unpinned.contains("pinned"), "{unpinned}");
}

#[test]
fn completions_load_in_bash_and_the_man_page_lists_every_command() {
    let config = tempfile::tempdir().unwrap();
    // bash reads the script and registers it; it offers the subcommands.
    let script = ok(&plantwatch(config.path(), &["completions", "bash"], ""));
    let path = config.path().join("plantwatch.bash");
    std::fs::write(&path, &script).unwrap();
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p plantwatch",
            path.display()
        ))
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("_plantwatch plantwatch"),
        "{loaded:?}"
    );
    for word in ["metrics", "topology", "auto-parents", "templates"] {
        assert!(script.contains(word), "the bash script lacks {word}");
    }
    for shell in ["zsh", "fish"] {
        let text = ok(&plantwatch(config.path(), &["completions", shell], ""));
        assert!(text.contains("metrics"), "{shell}: {text}");
    }
    let bad = plantwatch(config.path(), &["completions", "tcsh"], "");
    assert_eq!(bad.status.code(), Some(2));
    let man = ok(&plantwatch(config.path(), &["man"], ""));
    assert!(man.contains(".TH plantwatch"), "{man}");
    for line in [
        "plantwatch metrics query",
        "plantwatch topology auto-parents",
        "plantwatch nodes import",
    ] {
        assert!(man.contains(line), "the man page lacks {line:?}");
    }
}

#[test]
fn templates_show_one_whole_and_files_are_checked_before_copying() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    ok(&login(&server, cfg));
    let shown = ok(&plantwatch(
        cfg,
        &["templates", "show", "eastron-sdm630"],
        "",
    ));
    assert!(shown.starts_with("# eastron-sdm630 — "), "{shown}");
    assert!(
        shown.contains("name = \"meter.voltage\"") && shown.contains("unit = \"V\""),
        "{shown}"
    );
    let missing = plantwatch(cfg, &["templates", "show", "nope"], "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no template \"nope\"; the server has "),
        "{}",
        stderr(&missing)
    );

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("ups.toml");
    std::fs::write(
        &good,
        "name = \"plant-ups\"\nextends = [\"generic\"]\n[[scalars]]\nmeasurement = \"ups\"\n\
         fields = [{ name = \"load_pct\", oid = \"1.3.6.1.2.1.33.1.4.4.1.5.1\", kind = \"gauge\" }]\n",
    )
    .unwrap();
    let said = ok(&plantwatch(
        cfg,
        &["templates", "validate", good.to_str().unwrap()],
        "",
    ));
    assert!(
        said.contains("template plant-ups is valid (1 value(s), extends generic)"),
        "{said}"
    );
    // The server's own checks, all named; a parent the server lacks is named too.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad one\"\n[[scalars]]\nmeasurement = \"ups\"\n\
         fields = [{ name = \"load\", oid = \"1.3.x\", kind = \"counter\" }]\n",
    )
    .unwrap();
    let out = plantwatch(cfg, &["templates", "validate", bad.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for problem in [
        "name \"bad one\"",
        "\"1.3.x\" is not a numeric OID",
        "must end in _total",
        "(3 problem(s))",
    ] {
        assert!(err.contains(problem), "{problem}: {err}");
    }
    std::fs::write(&bad, "name = \"orphan\"\nextends = [\"no-such-parent\"]\n").unwrap();
    let out = plantwatch(cfg, &["templates", "validate", bad.to_str().unwrap()], "");
    assert!(
        stderr(&out).contains("extends no-such-parent the server does not have"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn search_gathers_nodes_tags_credentials_rules_and_collectors_from_the_real_server() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    ok(&login(&server, cfg));
    ok(&plantwatch(
        cfg,
        &[
            "nodes",
            "create",
            "press-plc-2",
            "--address",
            "127.0.0.2",
            "--tag",
            "line-3",
        ],
        "",
    ));
    ok(&plantwatch(
        cfg,
        &[
            "credentials",
            "create",
            "plant-ro",
            "-k",
            "snmp_v2c",
            "--secrets-stdin",
        ],
        "public\n",
    ));
    let profiles =
        plantwatch_tui::profile::Profiles::load(&cfg.join("plantwatch").join("config.toml"))
            .unwrap();
    let context = &profiles.contexts[0];
    let client = plantwatch_shared::Client::new(&context.url, context.fingerprint)
        .unwrap()
        .with_token(context.token.clone().unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hits = runtime.block_on(plantwatch_tui::views::search::gather(&client));
    let find = |kind: &str, name: &str| hits.iter().find(|h| h.kind == kind && h.name == name);
    let node = find("node", "press-plc-2").expect("the node");
    assert!(
        node.detail.contains("127.0.0.2") && node.detail.contains("tags line-3"),
        "{node:?}"
    );
    assert_eq!((node.view, node.filter.as_str()), ("nodes", "press-plc-2"));
    assert!(find("credential", "plant-ro").is_some(), "{hits:?}");
    assert!(
        find("rule", "node_unreachable").is_some(),
        "built-in rules: {hits:?}"
    );
    assert!(
        hits.iter().any(|h| h.kind == "collector"),
        "the local collector: {hits:?}"
    );
}

#[test]
fn nodes_change_and_go_by_the_dozen_in_one_transaction_after_a_preview() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    ok(&login(&server, cfg));
    for (name, tag) in [
        ("plc-1", "line-1"),
        ("plc-2", "line-1"),
        ("plc-3", "line-2"),
    ] {
        let address = format!("127.0.0.{}", &name[4..]);
        ok(&plantwatch(
            cfg,
            &["nodes", "create", name, "--address", &address, "--tag", tag],
            "",
        ));
    }
    let interval = |name: &str| -> serde_json::Value {
        let node: serde_json::Value = serde_json::from_str(&ok(&plantwatch(
            cfg,
            &["nodes", "get", name, "-o", "json"],
            "",
        )))
        .unwrap();
        node["interval_s"].clone()
    };
    // The preview names each node and field; a dry run changes nothing.
    let preview = ok(&plantwatch(
        cfg,
        &[
            "nodes",
            "update",
            "--where",
            "tag=line-1",
            "--set",
            "interval_s=30",
            "--add-tag",
            "audited",
            "--dry-run",
        ],
        "",
    ));
    assert!(preview.starts_with("NODE"), "{preview}");
    assert!(
        preview
            .lines()
            .any(|l| l.starts_with("plc-1") && l.contains("interval_s") && l.contains("30 s")),
        "{preview}"
    );
    assert!(
        preview
            .lines()
            .any(|l| l.starts_with("plc-2") && l.contains("line-1;audited")),
        "{preview}"
    );
    assert!(!preview.contains("plc-3"), "{preview}");
    assert_eq!(interval("plc-1"), serde_json::Value::Null);
    // Without a terminal a change to several nodes needs --yes.
    let unconfirmed = plantwatch(
        cfg,
        &[
            "nodes",
            "update",
            "--where",
            "tag=line-1",
            "--set",
            "interval_s=30",
        ],
        "",
    );
    assert!(!unconfirmed.status.success());
    assert!(
        stderr(&unconfirmed).contains("--yes"),
        "{}",
        stderr(&unconfirmed)
    );
    let done = plantwatch(
        cfg,
        &[
            "nodes",
            "update",
            "--where",
            "tag=line-1",
            "--set",
            "interval_s=30",
            "-y",
        ],
        "",
    );
    ok(&done);
    assert!(
        stderr(&done).contains("Changed 2 node(s) in one transaction."),
        "{}",
        stderr(&done)
    );
    assert_eq!(
        (interval("plc-1"), interval("plc-2"), interval("plc-3")),
        (30.into(), 30.into(), serde_json::Value::Null)
    );
    // All or none: a template that does not exist changes no node, and the answer says which.
    let refused = plantwatch(
        cfg,
        &[
            "nodes",
            "update",
            "--where",
            "name=plc-*",
            "--set",
            "interval_s=60",
            "--set",
            "template=nope",
            "-y",
        ],
        "",
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("node ") && stderr(&refused).contains("nope"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(interval("plc-3"), serde_json::Value::Null);
    // Bad conditions and fields are usage errors.
    let bad = plantwatch(
        cfg,
        &[
            "nodes",
            "update",
            "--where",
            "colour=red",
            "--set",
            "interval_s=5",
        ],
        "",
    );
    assert_eq!(bad.status.code(), Some(2));
    let bad = plantwatch(
        cfg,
        &[
            "nodes",
            "update",
            "--where",
            "tag=line-1",
            "--set",
            "name=x",
        ],
        "",
    );
    assert_eq!(bad.status.code(), Some(2));
    // Delete by the dozen.
    let gone = plantwatch(cfg, &["nodes", "delete", "--where", "tag=line-1", "-y"], "");
    ok(&gone);
    assert!(
        stderr(&gone).contains("Deleted 2 node(s) in one transaction."),
        "{}",
        stderr(&gone)
    );
    let left = ok(&plantwatch(cfg, &["nodes", "list"], ""));
    assert!(left.contains("plc-3") && !left.contains("plc-1"), "{left}");
}
