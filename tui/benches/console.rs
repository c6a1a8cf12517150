//! Console benchmarks: frame time of a 10,000-row table, time from start to the first drawn frame
//! (real binary on a pseudo-terminal), and resident memory.
//!
//! Run: `cargo bench -p plantwatch-tui --bench console` (after `cargo build --release`, so the
//! server binary exists next to the console for the signed-in start).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plantwatch_shared::api::{
    ListResponse, Me, Node, NodeStatus, NodeType, Role, SessionInfo, User, UserSource,
};
use plantwatch_tui::app::App;
use plantwatch_tui::event::{Event, Reply};
use plantwatch_tui::profile::{Context, Profiles};
use plantwatch_tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use time::OffsetDateTime;

const CLI: &str = env!("CARGO_BIN_EXE_plantwatch");

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{name:<48} n={:<5} mean {:>9.3?}  p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}",
        samples.len(),
        mean,
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn deliver(app: &mut App, reply: Reply) {
    let generation = app.generation();
    app.handle(Event::Done {
        generation,
        origin: None,
        outcome: Ok(reply),
    });
    app.outbox.clear();
}

fn key(app: &mut App, code: KeyCode) {
    app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    app.outbox.clear();
}

fn bench_user(id: i64, name: String, now: OffsetDateTime) -> User {
    User {
        id,
        username: name,
        role: [Role::Viewer, Role::Operator, Role::Admin][(id % 3) as usize],
        created_at: now,
        updated_at: now,
        last_login_at: (id % 2 == 0).then_some(now),
        source: UserSource::Local,
        role_pinned: false,
    }
}

/// A console signed in as an admin, with no server behind it.
fn signed_in_app(now: OffsetDateTime) -> App {
    let mut profiles = Profiles::default();
    profiles.upsert_current(Context {
        name: "bench".into(),
        url: "https://127.0.0.1:9".into(),
        fingerprint: Some(plantwatch_shared::Fingerprint::of_der(b"bench")),
        username: Some("admin".into()),
        token: Some("pws_bench".into()),
        alternates: Vec::new(),
    });
    let mut app = App::new(profiles, None, Theme { color: true });
    app.start(None);
    app.outbox.clear();
    deliver(
        &mut app,
        Reply::Me(Me {
            user: bench_user(2, "admin".into(), now),
            session: SessionInfo {
                expires_at: now,
                idle_timeout_secs: 1,
            },
        }),
    );
    app
}

/// Frame times of the users view holding `rows` users, at 120x40.
fn table_frames(rows: usize) {
    let now = OffsetDateTime::now_utc();
    let mut app = signed_in_app(now);
    let admin = |id: i64, name: String| bench_user(id, name, now);
    app.go_to("users");
    app.outbox.clear();
    let users: Vec<User> = (0..rows as i64)
        .map(|i| admin(i, format!("user-{i:05}")))
        .collect();
    let started = Instant::now();
    deliver(
        &mut app,
        Reply::Users(ListResponse {
            items: users.clone(),
            total: rows as u64,
        }),
    );
    println!(
        "{:<48} {:>9.3?}",
        format!("load {rows} rows into the table"),
        started.elapsed()
    );

    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut frames = Vec::new();
    for i in 0..2000 {
        // Scroll a page each frame, wrapping at the end, as a user holding PgDn would.
        key(
            &mut app,
            if i % 300 == 299 {
                KeyCode::Home
            } else {
                KeyCode::PageDown
            },
        );
        let started = Instant::now();
        terminal
            .draw(|frame| plantwatch_tui::ui::render(&app, frame))
            .unwrap();
        frames.push(started.elapsed());
    }
    summary(&format!("frame, {rows} rows, scrolling (120x40)"), frames);

    // Typing a filter: each key re-filters all rows, then draws.
    let mut typed = Vec::new();
    for round in 0..20 {
        key(&mut app, KeyCode::Char('/'));
        for c in ["user-0", "1", "2"].concat().chars() {
            let started = Instant::now();
            key(&mut app, KeyCode::Char(c));
            terminal
                .draw(|frame| plantwatch_tui::ui::render(&app, frame))
                .unwrap();
            typed.push(started.elapsed());
        }
        key(&mut app, KeyCode::Esc);
        let _ = round;
    }
    summary(&format!("filter keystroke + frame, {rows} rows"), typed);

    // A refresh replacing all rows while a sort is active.
    key(&mut app, KeyCode::Char('N'));
    key(&mut app, KeyCode::Char('N'));
    let mut refreshes = Vec::new();
    for _ in 0..20 {
        let items = users.clone();
        let started = Instant::now();
        deliver(
            &mut app,
            Reply::Users(ListResponse {
                items,
                total: rows as u64,
            }),
        );
        terminal
            .draw(|frame| plantwatch_tui::ui::render(&app, frame))
            .unwrap();
        refreshes.push(started.elapsed());
    }
    summary(&format!("refresh (sorted) + frame, {rows} rows"), refreshes);
}

/// Frame times of the nodes view holding `rows` nodes, with every seventh marked, at 120x40.
/// Node `i` of a generated plant: name, address, type and status spread over every kind.
fn bench_node(i: i64, now: OffsetDateTime) -> Node {
    Node {
        id: i,
        name: format!("dev-{i:05}"),
        address: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
        node_type: NodeType::ALL[i as usize % NodeType::ALL.len()],
        tags: vec![format!("line-{}", i % 7), "plc".into()],
        collector_id: Some(1),
        collector: Some("plant1-local".into()),
        template_id: None,
        template: None,
        interval_s: None,
        modbus_unit: None,
        parent_id: Some(0),
        parent: Some("dev-00000".into()),
        other_parents: Vec::new(),
        notes: None,
        status: NodeStatus::ALL[i as usize % NodeStatus::ALL.len()],
        status_reason: None,
        credentials: Vec::new(),
        created_at: now,
        updated_at: now,
        last_sample_at: None,
        rtt_ms: None,
    }
}

fn node_frames(rows: usize) {
    let now = OffsetDateTime::now_utc();
    let mut app = signed_in_app(now);
    app.go_to("nodes");
    app.outbox.clear();
    let nodes: Vec<Node> = (0..rows as i64).map(|i| bench_node(i, now)).collect();
    let started = Instant::now();
    deliver(
        &mut app,
        Reply::Nodes(ListResponse {
            items: nodes,
            total: rows as u64,
        }),
    );
    println!(
        "{:<48} {:>9.3?}",
        format!("load {rows} nodes into the table"),
        started.elapsed()
    );
    for i in 0..rows {
        key(
            &mut app,
            if i % 7 == 0 {
                KeyCode::Char(' ')
            } else {
                KeyCode::Down
            },
        );
    }
    key(&mut app, KeyCode::Home);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut frames = Vec::new();
    for i in 0..2000 {
        key(
            &mut app,
            if i % 300 == 299 {
                KeyCode::Home
            } else {
                KeyCode::PageDown
            },
        );
        let started = Instant::now();
        terminal
            .draw(|frame| plantwatch_tui::ui::render(&app, frame))
            .unwrap();
        frames.push(started.elapsed());
    }
    summary(
        &format!("frame, {rows} nodes, 1/7 marked, scrolling"),
        frames,
    );
}

/// Runs `command` on a pseudo-terminal (util-linux `script`), returning the child.
fn on_pty(command: &str, env: &[(&str, &Path)]) -> Child {
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-f", "-e", "-c", command, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("PLANTWATCH_CONTEXT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.spawn().expect("util-linux `script` is needed")
}

/// The console process under `script`.
fn console_pid(script: u32) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(children) =
            std::fs::read_to_string(format!("/proc/{script}/task/{script}/children"))
            && let Some(pid) = children.split_whitespace().next()
        {
            return pid.parse().ok();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Time until `needle` appears on the terminal, and the console's memory then.
fn first_frame(config: &Path, needle: &str) -> (Duration, u64, u64) {
    let started = Instant::now();
    // `script` gives its terminal no size when its own input is not one: set 120x40 first.
    let mut child = on_pty(
        &format!("stty cols 120 rows 40; exec {CLI}"),
        &[("XDG_CONFIG_HOME", config)],
    );
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 65536];
    let elapsed = loop {
        let n = stdout.read(&mut buffer).unwrap();
        assert!(n > 0, "the console ended before drawing {needle:?}");
        seen.extend_from_slice(&buffer[..n]);
        if String::from_utf8_lossy(&seen).contains(needle) {
            break started.elapsed();
        }
    };
    let pid = console_pid(child.id()).expect("the console runs under script");
    std::thread::sleep(Duration::from_millis(300));
    let rss = rss_kib(pid, "VmRSS:").unwrap_or(0);
    let hwm = rss_kib(pid, "VmHWM:").unwrap_or(0);
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    std::thread::spawn(move || while stdout.read(&mut buffer).unwrap_or(0) > 0 {});
    let _ = child.wait();
    (elapsed, rss, hwm)
}

struct Server {
    child: Child,
    url: String,
    fingerprint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(data: &Path) -> Option<Server> {
    let binary = PathBuf::from(CLI).with_file_name("plantwatch-server");
    if !binary.exists() {
        return None;
    }
    let mut child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("PLANTWATCH_ADMIN_USER", "admin")
        .env("PLANTWATCH_ADMIN_PASSWORD", "bench-password-1")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            let (url, fingerprint) = rest.split_once(" (fingerprint ").unwrap();
            let (url, fingerprint) = (url.to_owned(), fingerprint.trim_end_matches(')').to_owned());
            std::thread::spawn(move || for _ in lines {});
            return Some(Server {
                child,
                url,
                fingerprint,
            });
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `plantwatch login` as the bench admin into the client configuration under `config`.
fn sign_in(server: &Server, config: &Path) {
    let mut login = Command::new(CLI)
        .args(["login", &server.url, "--user", "admin", "--password-stdin"])
        .args(["--fingerprint", &server.fingerprint])
        .env("XDG_CONFIG_HOME", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(b"bench-password-1\n")
        .unwrap();
    assert!(login.wait().unwrap().success());
}

fn startup() {
    let dir = tempfile::tempdir().unwrap();
    // No context: the login screen.
    let mut times = Vec::new();
    let mut memory = (0, 0);
    for _ in 0..20 {
        let (elapsed, rss, hwm) = first_frame(&dir.path().join("empty"), "Welcome.");
        times.push(elapsed);
        memory = (rss, hwm);
    }
    summary("start to first frame (login screen)", times);
    println!(
        "{:<48} RSS {} KiB, peak {} KiB",
        "console memory at the login screen", memory.0, memory.1
    );

    // A saved session: until the dashboard shows the server online.
    let Some(server) = start_server(&dir.path().join("data")) else {
        println!("(plantwatch-server not built next to plantwatch: signed-in start skipped)");
        return;
    };
    let config = dir.path().join("signed-in");
    sign_in(&server, &config);
    let mut times = Vec::new();
    for _ in 0..20 {
        times.push(first_frame(&config, "Dashboard").0);
    }
    summary("start to first frame (signed in, dashboard)", times);
    let mut times = Vec::new();
    for _ in 0..20 {
        // Only changed cells are redrawn, so wait for a label that appears whole with the data.
        times.push(first_frame(&config, "Response").0);
    }
    summary("start to server status shown (HTTPS round trip)", times);
}

/// 48 interfaces' in and out over 30 days at the console's step (200 points each): the panels,
/// the series list, the top-8 chart, and the chart as SVG and PNG.
fn chart_frames(rounds: usize) {
    use plantwatch_shared::api::{Aggregation, MetricSeries, MetricsAnswer, SeriesKind};
    use plantwatch_tui::keymap::Action;
    use plantwatch_tui::widgets::node_charts::NodeCharts;
    use plantwatch_tui::widgets::picture;

    let now = OffsetDateTime::now_utc();
    let mut node = bench_node(1, now);
    node.name = "core-sw-1".into();
    let to = now.unix_timestamp();
    let span = 30 * 86_400;
    let step = span / 200;
    let mut items = Vec::new();
    for port in 1..=48 {
        for (metric, scale) in [
            ("interface.in_octets_total", 1e6),
            ("interface.out_octets_total", 2e5),
        ] {
            items.push(MetricSeries {
                metric: metric.into(),
                tags: [("ifName".to_owned(), format!("Gi1/0/{port}"))].into(),
                kind: SeriesKind::Counter,
                points: (0..200)
                    .map(|i| {
                        (
                            to - span + i * step,
                            scale * (1.0 + ((i + port) as f64 / 9.0).sin()),
                        )
                    })
                    .collect(),
            });
        }
    }
    let answer = MetricsAnswer {
        node_id: 1,
        from: to - span,
        to,
        step,
        agg: Aggregation::Avg,
        total: items.len() as u64,
        truncated: false,
        items,
    };
    let mut charts = NodeCharts::new(node);
    let started = Instant::now();
    charts.set_answer(answer.clone());
    println!(
        "{:<48} {:>9.3?}",
        "take 96 series x 200 points (30 days)",
        started.elapsed()
    );
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let theme = Theme { color: true };
    let mut frame_of = |charts: &NodeCharts| {
        let started = Instant::now();
        terminal
            .draw(|frame| charts.render(frame, frame.area(), theme))
            .unwrap();
        started.elapsed()
    };
    let panels: Vec<Duration> = (0..rounds).map(|_| frame_of(&charts)).collect();
    summary("frame, panels of 48 interfaces (30 days)", panels);
    charts.on_action(Action::NextPane);
    let list: Vec<Duration> = (0..rounds).map(|_| frame_of(&charts)).collect();
    summary("frame, series list (96 series, sparklines)", list);
    charts.on_action(Action::TopOf);
    let top: Vec<Duration> = (0..rounds).map(|_| frame_of(&charts)).collect();
    summary("frame, top-8 in-rate chart of 48 (axes, legend)", top);
    let plot = charts.plot().unwrap();
    let svg: Vec<Duration> = (0..rounds.min(50))
        .map(|_| {
            let started = Instant::now();
            picture::svg(&plot, "core-sw-1").unwrap();
            started.elapsed()
        })
        .collect();
    summary("export the top-8 chart as SVG (1200x600)", svg);
    let png: Vec<Duration> = (0..rounds.min(20))
        .map(|_| {
            let started = Instant::now();
            picture::png(&plot, "core-sw-1").unwrap();
            started.elapsed()
        })
        .collect();
    summary("export the top-8 chart as PNG (1200x600)", png);
}

/// The sites view's refresh: 20 saved contexts on 4 real servers, each asked in parallel; then
/// with one context whose server is gone (connection refused).
fn sites_refresh() {
    use plantwatch_tui::sites;
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    for i in 0..4 {
        let Some(server) = start_server(&dir.path().join(format!("data-{i}"))) else {
            println!("(plantwatch-server not built next to plantwatch: sites refresh skipped)");
            return;
        };
        servers.push(server);
    }
    let mut profiles = Profiles::default();
    for (i, server) in servers.iter().enumerate() {
        let config = dir.path().join(format!("config-{i}"));
        sign_in(server, &config);
        let saved = Profiles::load(&config.join("plantwatch").join("config.toml")).unwrap();
        for copy in 0..5 {
            let mut context = saved.contexts[0].clone();
            context.name = format!("site-{i}-{copy}");
            profiles.contexts.push(context);
        }
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let all = runtime.block_on(sites::statuses(&profiles, None));
        times.push(started.elapsed());
        assert!(all.iter().all(|s| s.is_ok()), "{all:?}");
    }
    summary("sites refresh, 20 contexts on 4 servers", times);
    let mut gone = profiles.contexts[0].clone();
    gone.name = "site-gone".into();
    gone.url = format!("https://127.0.0.1:{}", free_port());
    profiles.contexts.push(gone);
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let all = runtime.block_on(sites::statuses(&profiles, None));
        times.push(started.elapsed());
        assert_eq!(all.iter().filter(|s| !s.is_ok()).count(), 1);
    }
    summary("sites refresh, 20 + 1 refusing connections", times);
    let mut times = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        runtime.block_on(sites::alerts(&profiles));
        times.push(started.elapsed());
    }
    summary("merged alerts of 21 contexts (1 refusing)", times);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn main() {
    // `cargo test --benches` runs benchmarks once as tests; keep that quick.
    if std::env::args().any(|a| a == "--test") {
        table_frames(1000);
        node_frames(1000);
        chart_frames(3);
        return;
    }
    table_frames(10_000);
    node_frames(10_000);
    chart_frames(200);
    println!(
        "{:<48} RSS {} KiB, peak {} KiB",
        "bench process after the 10,000-row table",
        rss_kib(std::process::id(), "VmRSS:").unwrap_or(0),
        rss_kib(std::process::id(), "VmHWM:").unwrap_or(0)
    );
    startup();
    sites_refresh();
}
