//! The real `plantwatch` console in a real terminal (tmux) against the real server: keys in with
//! `send-keys`, the screen out with `capture-pane`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, CLI, start_server};

/// A tmux server of its own (its own socket) running one window.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// The console on the contexts saved in `config`, in a 120x30 window.
    fn console(dir: &Path, config: &Path) -> Tmux {
        let command = format!(
            "env XDG_CONFIG_HOME={} {}",
            shell_quote(config),
            shell_quote(Path::new(CLI))
        );
        Tmux::start(dir, 120, 30, &command)
    }

    /// Runs `command` in a `width`x`height` window; the window stays after it ends.
    fn start(dir: &Path, width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&tmux.socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "t", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg(format!("{command}; echo EXITED=$?; sleep 600"))
            .env_remove("TMUX")
            .env("LANG", "C.UTF-8")
            .status()
            .expect("tmux is needed for this test (apt-get install tmux)");
        assert!(status.success());
        tmux
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "tmux {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Presses keys by tmux name (`Enter`, `Tab`, `C-c`, `Escape`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types text literally.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until the screen shows `needle`; returns the screen.
    fn wait_for(&self, needle: &str) -> String {
        self.wait_for_within(needle, Duration::from_secs(30))
    }

    fn wait_for_within(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {needle:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn log_in_create_a_user_filter_it_and_quit() {
    let mut server = start_server();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let tmux = Tmux::start(
        dir.path(),
        80,
        24,
        &format!(
            "env -u PLANTWATCH_CONTEXT -u PLANTWATCH_CLIENT_CONFIG XDG_CONFIG_HOME={} {}",
            shell_quote(&config),
            shell_quote(Path::new(CLI))
        ),
    );

    tmux.wait_for("Welcome. Sign in to a plantwatch server");
    // The URL field starts with https:// already.
    tmux.type_text(server.url.trim_start_matches("https://"));
    tmux.keys(&["Enter"]);
    tmux.type_text("admin");
    tmux.keys(&["Enter"]);
    tmux.type_text(ADMIN_PASSWORD);
    let screen = tmux.screen();
    assert!(
        !screen.contains(ADMIN_PASSWORD),
        "the password shows:\n{screen}"
    );
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Unknown server certificate");
    assert!(screen.contains(&server.fingerprint), "{screen}");
    tmux.keys(&["a"]);
    tmux.wait_for("Signed in as admin (admin)");
    tmux.wait_for("● online");

    tmux.keys(&[":"]);
    tmux.type_text("users");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Users (1)");
    tmux.keys(&["c"]);
    tmux.wait_for("New user");
    tmux.type_text("operator.jo");
    tmux.keys(&["Tab"]);
    tmux.type_text("jo-password-1");
    tmux.keys(&["Tab"]);
    tmux.type_text("jo-password-1");
    tmux.keys(&["Tab", "Right", "Enter"]);
    tmux.wait_for("User operator.jo created (operator)");
    let screen = tmux.wait_for("Users (2)");
    assert!(screen.contains("operator.jo"), "{screen}");

    tmux.keys(&["/"]);
    tmux.type_text("jo");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Users (1 of 2) /jo");
    assert!(screen.contains("│›operator.jo"), "{screen}");
    assert!(!screen.contains("│ admin"), "{screen}");

    // The server goes away: a banner says so and the last data stays.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let screen = tmux.wait_for("Server unreachable");
    assert!(screen.contains("operator.jo"), "{screen}");

    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for("EXITED=0");
    // Back on the normal screen: the console's frame is gone.
    assert!(!screen.contains("Users (1 of 2)"), "{screen}");
    // The context was saved with its pinned fingerprint.
    let saved = std::fs::read_to_string(config.join("plantwatch").join("config.toml")).unwrap();
    assert!(saved.contains(&server.fingerprint), "{saved}");
}

#[test]
fn every_alert_shown_is_marked_and_acknowledged_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_alerting_server(&dir.path().join("data"));
    let config = dir.path().join("config");
    assert!(common::login(&server, &config).status.success());
    let cli = |args: &[&str]| common::ok(&common::plantwatch(&config, args, ""));
    common::pinged_plcs(&config, 78, 3);
    let tmux = Tmux::console(dir.path(), &config);
    tmux.wait_for("● online");
    tmux.type_text(":alerts");
    tmux.keys(&["Enter"]);
    // The console reloads every 10 s: the three alerts come.
    tmux.wait_for_within("Alerts (3)", Duration::from_secs(90));
    tmux.keys(&["*"]);
    tmux.wait_for("3 marked");
    tmux.keys(&["a"]);
    tmux.wait_for("Acknowledge 3 alerts");
    tmux.type_text("cabinet work, known");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("acknowledged");
    assert!(!screen.contains("marked"), "{screen}");
    let listed: serde_json::Value =
        serde_json::from_str(&cli(&["alerts", "list", "-o", "json"])).unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(
        items
            .iter()
            .all(|a| a["ack_comment"] == "cabinet work, known"),
        "{listed}"
    );
    tmux.keys(&["C-c"]);
    tmux.wait_for("EXITED=0");
}

#[test]
fn the_sites_view_shows_two_real_servers_side_by_side_and_switches() {
    let first = start_server();
    let mut second = start_server();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    for server in [&first, &second] {
        let out = common::login(server, &config);
        assert!(out.status.success(), "{out:?}");
    }
    let name_of = |s: &common::Server| s.url.trim_start_matches("https://").to_owned();
    let tmux = Tmux::console(dir.path(), &config);
    tmux.wait_for("● online");
    tmux.type_text(":sites");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Sites (2)");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut screen = screen;
    while screen.matches(" ok ").count() < 2 {
        assert!(Instant::now() < deadline, "both sites answer:\n{screen}");
        std::thread::sleep(Duration::from_millis(300));
        screen = tmux.screen();
    }
    assert!(
        screen.contains(&format!("* {}", name_of(&second))),
        "{screen}"
    );
    // The second server stops: the next refresh shows it unreachable, first.
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    tmux.keys(&["C-r"]);
    let screen = tmux.wait_for("unreachable");
    let row = |name: &str| screen.lines().position(|l| l.contains(name)).unwrap();
    assert!(row(&name_of(&second)) < row(&name_of(&first)), "{screen}");
    // Enter on the first site switches to it.
    tmux.type_text("/");
    tmux.type_text(&name_of(&first));
    tmux.keys(&["Enter"]);
    tmux.wait_for("Sites (1 of 2)");
    tmux.keys(&["Enter"]);
    tmux.wait_for(&format!("ctx {}", name_of(&first)));
    tmux.keys(&["C-c"]);
    tmux.wait_for("EXITED=0");
}

#[test]
fn demo_starts_a_server_signs_in_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("tmp");
    std::fs::create_dir(&temp).unwrap();
    let tmux = Tmux::start(
        dir.path(),
        80,
        24,
        &format!(
            "env TMPDIR={} XDG_CONFIG_HOME={} {} demo",
            shell_quote(&temp),
            shell_quote(&dir.path().join("config")),
            shell_quote(Path::new(CLI))
        ),
    );
    // The health check and who-am-I answer separately: wait for both.
    tmux.wait_for("ctx demo  admin (admin)");
    let screen = tmux.wait_for("● online");
    assert!(screen.contains("ctx demo  admin (admin)"), "{screen}");
    let address = screen
        .lines()
        .find_map(|line| line.split("https://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the dashboard shows the server's address")
        .to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert!(TcpStream::connect(&address).is_ok());
    assert_eq!(std::fs::read_dir(&temp).unwrap().count(), 1);

    // It monitors this machine: the local collector pings it, the demo's agent sends its
    // metrics, and the charts show both.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    tmux.type_text(":nodes");
    tmux.keys(&["Enter"]);
    tmux.wait_for("POLLED");
    tmux.type_text("/");
    tmux.type_text(host);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for_within(" ms ", Duration::from_secs(90));
    assert!(screen.contains(host), "{screen}");
    tmux.type_text("m");
    tmux.wait_for("ping RTT (ms): 0");
    let screen = tmux.wait_for_within("Interfaces", Duration::from_secs(5));
    assert!(screen.contains("1 1h"), "{screen}");
    // The agent's CPU, memory and loopback traffic arrive (charts reload every 10 s).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let screen = tmux.screen();
        if !screen.contains("CPU (%): -")
            && screen.contains("Interfaces (")
            && !screen.contains("Interfaces (0)")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no agent metrics in the charts:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every series the agent sends, then one of them charted with a cursor that reads it.
    tmux.keys(&["Tab"]);
    tmux.wait_for("Series (");
    tmux.type_text("/");
    tmux.type_text("usage_pct");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("cpu_total");
    assert!(screen.contains(" %"), "{screen}");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("cpu_total.usage_pct (%)");
    assert!(
        screen.contains("latest") && screen.contains("UTC"),
        "{screen}"
    );
    tmux.keys(&["Left"]);
    tmux.wait_for("│at ");
    tmux.keys(&["Left"]);
    let screen = tmux.screen();
    assert!(screen.contains("│at ") && screen.contains(" %"), "{screen}");
    // Esc leaves the chart, Tab the list, Esc the charts.
    tmux.keys(&["Escape"]);
    tmux.wait_for("Series (");
    tmux.keys(&["Tab"]);
    tmux.wait_for("Interfaces");
    tmux.keys(&["Escape"]);
    tmux.wait_for("POLLED");
    // The demo plant looks healthy: its SNMP devices answer (snmpd on loopback) and the
    // one problem is explained in its node's notes, not ten warnings.
    tmux.keys(&["Escape"]);
    tmux.type_text(":alerts");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Alerts");
    std::thread::sleep(Duration::from_secs(3));
    let screen = tmux.screen();
    assert!(
        !screen.contains("core-sw-1") && !screen.contains("press-plc"),
        "alerts on healthy demo devices:\n{screen}"
    );
    // Views opened from the palette replace each other: one `q` quits.
    tmux.keys(&["q"]);
    tmux.wait_for("Demo server stopped and its folder removed.");
    tmux.wait_for("EXITED=0");
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "the demo folder is left behind"
    );
    assert!(
        TcpStream::connect(&address).is_err(),
        "the demo server still listens"
    );
    // The user's own configuration was not touched.
    assert!(!dir.path().join("config").exists());
}
