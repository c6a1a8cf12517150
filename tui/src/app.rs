//! The console's state and navigation: which screen and view are shown, the session, the
//! server's status, and how keys, the clock and API replies change them. Nothing here waits on
//! the network: API calls leave through `outbox` and come back as events.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use plantwatch_shared::api::{Health, Me, Role, SetupRequest};
use plantwatch_shared::client::normalize_url;
use plantwatch_shared::{Client, Fingerprint};
use ratatui::crossterm::event::{KeyEvent, KeyEventKind};
use time::OffsetDateTime;

use crate::event::{Event, Failure, Reply, Task, task};
use crate::keymap::{self, Action, Binding, Key};
use crate::overlay::{Outcome, Overlay};
use crate::profile::{Context, Profiles, name_for_url};
use crate::theme::Theme;
use crate::views::{self, Ctx, Effect, VIEWS, View};
use crate::widgets::form::{Field, Form, FormOutcome, Purpose};

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    ServerURL = "Server URL",
    Username = "Username",
    Password = "Password",
    SetupCode = "Setup code",
    AdminUsername = "Admin username",
    Repeat = "Repeat",
}

/// How often the current view and the server's status are reloaded.
pub const REFRESH_EVERY: time::Duration = time::Duration::seconds(10);
/// How often an unreachable server is tried again.
pub const RETRY_EVERY: time::Duration = time::Duration::seconds(5);

/// The server as last seen.
#[derive(Debug, Clone)]
pub struct ServerStatus {
    pub url: String,
    pub health: Option<Health>,
    pub checked_at: Option<OffsetDateTime>,
    pub latency: Option<Duration>,
    pub unreachable: Option<Down>,
    /// Server clock minus ours, for the header's server time.
    pub skew: time::Duration,
}

/// Since when and why the server cannot be reached.
#[derive(Debug, Clone)]
pub struct Down {
    pub since: OffsetDateTime,
    pub reason: String,
}

/// The signed-in session.
pub struct Session {
    pub context: Context,
    pub client: Client,
    pub me: Option<Me>,
    /// Whether the context is saved in the client configuration (not after "trust once").
    pub saved: bool,
}

/// A message in the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
    /// When it was shown: messages expire ([`STATUS_SHOWN`], errors [`ERROR_SHOWN`]).
    pub at: OffsetDateTime,
}

/// How long a message stays in the status line.
pub const STATUS_SHOWN: time::Duration = time::Duration::seconds(6);
/// How long an error stays in the status line.
pub const ERROR_SHOWN: time::Duration = time::Duration::seconds(20);

pub enum Screen {
    /// Server URL, user and password.
    Login(Form),
    /// First start of a server: setup code and the first admin.
    Setup(Form),
    /// The views.
    Main,
}

/// A sign-in under way: what the login form asked for, and which certificate is trusted.
#[derive(Debug, Clone, Default)]
struct Pending {
    url: String,
    pin: Option<Fingerprint>,
    /// Trusted for this session only: nothing is saved.
    once: bool,
}

pub struct App {
    pub screen: Screen,
    pub overlay: Option<Overlay>,
    pub views: Vec<Box<dyn View>>,
    pub current: usize,
    history: Vec<usize>,
    pub session: Option<Session>,
    pub server: Option<ServerStatus>,
    pub profiles: Profiles,
    /// Where contexts are saved; `None` keeps them in memory only.
    config_path: Option<PathBuf>,
    pub status: Option<Status>,
    /// The local clock, advanced by ticks (fixed in tests).
    pub now: OffsetDateTime,
    pub theme: Theme,
    /// Bumped whenever the session changes, so replies for an old one are dropped.
    generation: u64,
    pub quit: bool,
    last_refresh: Option<OffsetDateTime>,
    /// API calls to start, with the generation they belong to.
    pub outbox: Vec<Outgoing>,
    pending: Pending,
    /// The login screen was opened from the views (adding a context): Esc goes back.
    login_from_main: bool,
}

/// The context a view sees, borrowing only the fields it reads, so a view can be borrowed
/// mutably beside it.
macro_rules! ctx {
    ($app:expr) => {
        ctx(
            $app.now,
            $app.session.as_ref(),
            &$app.profiles,
            $app.server.as_ref(),
            $app.theme,
        )
    };
}

/// The context a view sees, from the parts of `App` it may read.
fn ctx<'a>(
    now: OffsetDateTime,
    session: Option<&'a Session>,
    profiles: &'a Profiles,
    server: Option<&'a ServerStatus>,
    theme: Theme,
) -> Ctx<'a> {
    Ctx {
        now,
        me: session.and_then(|s| s.me.as_ref()),
        client: session.map(|s| &s.client),
        profiles,
        context: session.filter(|s| s.saved).map(|s| s.context.name.as_str()),
        server,
        theme,
    }
}

fn login_form(url: &str, user: &str) -> Form {
    let mut form = Form::new(
        "Sign in to a plantwatch server",
        Purpose::Login,
        vec![
            Field::text(FieldId::ServerURL).with_value(url),
            Field::text(FieldId::Username).with_value(user),
            Field::secret(FieldId::Password),
        ],
    )
    .focus_first_empty();
    if url == "https://" {
        form.focus = 0;
    }
    form
}

fn setup_form() -> Form {
    Form::new(
        "First start: create the admin",
        Purpose::Setup,
        vec![
            Field::text(FieldId::SetupCode),
            Field::text(FieldId::AdminUsername)
                .checked(|v| plantwatch_shared::rules::username_problem(v).map_or(Ok(()), Err)),
            Field::secret(FieldId::Password)
                .checked(|v| plantwatch_shared::rules::password_problem(v).map_or(Ok(()), Err)),
            Field::secret(FieldId::Repeat),
        ],
    )
    .with_note(
        "This server has no admin yet. Enter the one-time setup code it printed at start \
         (also in its data dir, file setup-code).",
    )
}

impl App {
    /// A console over `profiles`, starting on `context` (or the current one).
    pub fn new(profiles: Profiles, config_path: Option<PathBuf>, theme: Theme) -> Self {
        App {
            screen: Screen::Login(login_form("https://", "")),
            overlay: None,
            views: VIEWS.iter().map(|spec| (spec.make)()).collect(),
            current: 0,
            history: Vec::new(),
            session: None,
            server: None,
            profiles,
            config_path,
            status: None,
            now: OffsetDateTime::now_utc(),
            theme,
            generation: 0,
            quit: false,
            last_refresh: None,
            outbox: Vec::new(),
            pending: Pending::default(),
            login_from_main: false,
        }
    }

    /// Opens `context` (else the current one): straight to the views with a saved session,
    /// else the login screen.
    pub fn start(&mut self, context: Option<&str>) {
        match self.profiles.select(context).cloned() {
            Ok(context) => self.open_context(context),
            Err(_) if self.profiles.contexts.is_empty() => {
                self.screen = Screen::Login(
                    login_form("https://", "")
                        .with_note("Welcome. Sign in to a plantwatch server to begin."),
                );
            }
            Err(error) => {
                self.screen = Screen::Login(login_form("https://", ""));
                self.error(error.to_string());
            }
        }
    }

    fn open_context(&mut self, context: Context) {
        let Some(token) = context.token.clone() else {
            self.show_login(&context, "Sign in again to use this context.");
            return;
        };
        match context.client() {
            Ok(client) => self.begin_session(Session {
                client: client.with_token(token),
                context,
                me: None,
                saved: true,
            }),
            Err(error) => {
                self.show_login(&context, "");
                self.error(error.to_string());
            }
        }
    }

    fn show_login(&mut self, context: &Context, note: &str) {
        let mut form = login_form(&context.url, context.username.as_deref().unwrap_or(""));
        if !note.is_empty() {
            form = form.with_note(note);
        }
        self.screen = Screen::Login(form);
        self.overlay = None;
    }

    /// Starts showing the views for `session`, from a clean slate.
    fn begin_session(&mut self, session: Session) {
        self.generation += 1;
        self.server = Some(ServerStatus {
            url: session.context.url.clone(),
            health: None,
            checked_at: None,
            latency: None,
            unreachable: None,
            skew: time::Duration::ZERO,
        });
        self.session = Some(session);
        self.views = VIEWS.iter().map(|spec| (spec.make)()).collect();
        self.current = 0;
        self.history.clear();
        self.overlay = None;
        self.screen = Screen::Main;
        self.login_from_main = false;
        self.refresh();
    }

    /// The current session's generation: replies tagged with another one are dropped.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn role(&self) -> Role {
        self.session
            .as_ref()
            .and_then(|s| s.me.as_ref())
            .map_or(Role::Viewer, |me| me.user.role)
    }

    /// The bindings of the current view for the signed-in role.
    pub fn bindings(&self) -> Vec<Binding> {
        views::bindings_of(self.view(), self.role())
    }

    /// The current view's name, as the palette knows it.
    /// The current view's title.
    pub fn view_title(&self) -> String {
        self.views[self.current].title()
    }

    pub fn view_name(&self) -> &'static str {
        VIEWS[self.current].name
    }

    pub fn view(&self) -> &dyn View {
        self.views[self.current].as_ref()
    }

    /// The server's clock, as far as we know it.
    pub fn server_time(&self) -> OffsetDateTime {
        self.now
            + self
                .server
                .as_ref()
                .map_or(time::Duration::ZERO, |s| s.skew)
    }

    pub fn ctx(&self) -> Ctx<'_> {
        ctx!(self)
    }

    fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
            at: self.now,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
            at: self.now,
        });
    }

    /// An API call of the console itself (session, health, sign-in): its reply is the
    /// console's and every view's to see.
    fn call(&mut self, task: Task) {
        self.call_from(None, task);
    }

    /// An API call on behalf of view `origin`: its reply goes back to that view alone.
    fn call_from(&mut self, origin: Option<usize>, task: Task) {
        self.outbox.push(Outgoing {
            generation: self.generation,
            origin,
            task,
        });
    }

    /// Reloads the server's status, the session and the current view.
    pub fn refresh(&mut self) {
        self.last_refresh = Some(self.now);
        let Some(session) = &self.session else {
            return;
        };
        let client = session.client.clone();
        let health = task("checking the server", async move {
            let started = Instant::now();
            let health = client.health().await?;
            Ok(Reply::Health {
                health: Box::new(health),
                latency: started.elapsed(),
            })
        });
        let client = session.client.clone();
        let me = task("checking the session", async move {
            client.me().await.map(Reply::Me)
        });
        self.call(health);
        self.call(me);
        self.refresh_view();
    }

    fn refresh_view(&mut self) {
        let tasks = self.views[self.current].refresh(&self.ctx());
        for task in tasks {
            self.call_from(Some(self.current), task);
        }
    }

    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            Event::Key(_) | Event::Resize => {}
            Event::Tick => self.on_tick(OffsetDateTime::now_utc()),
            Event::Done {
                generation,
                origin,
                outcome,
            } => {
                if generation == self.generation {
                    match outcome {
                        Ok(reply) => self.on_reply(reply, origin),
                        Err(failure) => self.on_failure(failure),
                    }
                }
            }
        }
    }

    /// The clock moved to `now`: refresh when due, sooner while the server is unreachable.
    pub fn on_tick(&mut self, now: OffsetDateTime) {
        self.now = now;
        if self.status.as_ref().is_some_and(|s| {
            let shown = if s.error { ERROR_SHOWN } else { STATUS_SHOWN };
            now - s.at >= shown || now < s.at
        }) {
            self.status = None;
        }
        if !matches!(self.screen, Screen::Main) || self.session.is_none() {
            return;
        }
        let every = if self
            .server
            .as_ref()
            .is_some_and(|s| s.unreachable.is_some())
        {
            RETRY_EVERY
        } else {
            REFRESH_EVERY
        };
        // A clock set back counts as due, too.
        if self
            .last_refresh
            .is_none_or(|last| now - last >= every || now < last)
        {
            self.refresh();
        } else if self.views[self.current].live() {
            self.refresh_view();
        }
    }

    // ---- replies ----

    /// A reply: the console's own first; then the view that asked for it, or every view when
    /// the console asked.
    fn on_reply(&mut self, reply: Reply, origin: Option<usize>) {
        if let Some(server) = &mut self.server
            && !matches!(reply, Reply::Contexts(_) | Reply::Probed { .. })
        {
            server.unreachable = None;
        }
        match &reply {
            Reply::Health { health, latency } => {
                if let (Some(server), Some(session)) = (&mut self.server, &self.session) {
                    // One of a pair: the server that answered, which may be the other one.
                    server.url = session.client.base_url();
                }
                if let (Some(ha), Some(session)) = (&health.ha, &mut self.session) {
                    session.client.learn(ha);
                    if session.context.learn_pair(ha) && session.saved {
                        let context = session.context.clone();
                        if let Some(stored) = self
                            .profiles
                            .contexts
                            .iter_mut()
                            .find(|c| c.name == context.name)
                        {
                            stored.alternates = context.alternates;
                        }
                        self.save_profiles();
                    }
                }
                let now = self.now;
                if let Some(server) = &mut self.server {
                    server.skew = health.server_time - now;
                    server.health = Some(health.as_ref().clone());
                    server.checked_at = Some(now);
                    server.latency = Some(*latency);
                }
            }
            Reply::Me(me) => {
                if let Some(session) = &mut self.session {
                    session.me = Some(me.clone());
                }
                // A role that lost access to the view it is on goes back to the dashboard.
                if me.user.role < VIEWS[self.current].min_role {
                    self.current = 0;
                    self.history.clear();
                }
            }
            Reply::Probed { url, fingerprint } => {
                self.overlay = Some(Overlay::Trust {
                    url: url.clone(),
                    fingerprint: *fingerprint,
                });
            }
            Reply::SetupRequired { url, pin } => {
                self.pending.url = url.clone();
                self.pending.pin = *pin;
                self.screen = Screen::Setup(setup_form());
            }
            Reply::SignedIn(response) => {
                let response = response.as_ref().clone();
                self.signed_in(response);
                return;
            }
            Reply::SignedOut => {
                self.signed_out("Signed out.");
                return;
            }
            _ => {}
        }
        let ctx = ctx!(self);
        match origin {
            Some(index) => {
                let Some(view) = self.views.get_mut(index) else {
                    return;
                };
                let effects = view.on_reply(&reply, &ctx);
                self.apply(effects, Some(index));
            }
            None => {
                let mut effects = Vec::new();
                for (index, view) in self.views.iter_mut().enumerate() {
                    effects.push((index, view.on_reply(&reply, &ctx)));
                }
                for (index, effects) in effects {
                    self.apply(effects, Some(index));
                }
            }
        }
    }

    fn on_failure(&mut self, failure: Failure) {
        if failure.is_signed_out() && matches!(self.screen, Screen::Main) {
            self.signed_out("Your session has ended. Sign in again.");
            return;
        }
        let message = failure.message();
        // A form waiting for this answer shows it under its fields.
        let form = match (&mut self.overlay, &mut self.screen) {
            (Some(Overlay::Form(form)), _) if form.busy == Some(failure.doing) => Some(form),
            (None, Screen::Login(form) | Screen::Setup(form))
                if form.busy == Some(failure.doing) =>
            {
                Some(form)
            }
            _ => None,
        };
        if let Some(form) = form {
            form.busy = None;
            form.error = Some(match &failure.error {
                plantwatch_shared::Error::Api { message, .. } => message.clone(),
                other => other.to_string(),
            });
            return;
        }
        if failure.is_unreachable() {
            let now = self.now;
            if let Some(server) = &mut self.server {
                let since = server.unreachable.as_ref().map_or(now, |d| d.since);
                server.unreachable = Some(Down {
                    since,
                    reason: failure.error.to_string(),
                });
            }
            return;
        }
        self.error(message);
    }

    /// Signed in (or set up): save the context unless trusted once, then show the views.
    fn signed_in(&mut self, response: plantwatch_shared::api::LoginResponse) {
        let pending = std::mem::take(&mut self.pending);
        let existing = self.profiles.by_url(&pending.url).cloned();
        let context = Context {
            name: existing
                .as_ref()
                .map_or_else(|| name_for_url(&pending.url), |c| c.name.clone()),
            url: pending.url.clone(),
            fingerprint: pending.pin,
            username: Some(response.user.username.clone()),
            token: Some(response.token.clone()),
            alternates: existing.map(|c| c.alternates).unwrap_or_default(),
        };
        let client = match context.client() {
            Ok(client) => client.with_token(response.token.clone()),
            Err(error) => return self.error(error.to_string()),
        };
        let saved = !pending.once;
        if saved {
            self.profiles.upsert_current(context.clone());
            self.save_profiles();
        }
        let user = response.user.clone();
        self.begin_session(Session {
            client,
            context,
            me: Some(plantwatch_shared::api::Me {
                user: response.user,
                session: response.session,
            }),
            saved,
        });
        self.info(format!("Signed in as {} ({}).", user.username, user.role));
    }

    fn signed_out(&mut self, note: &str) {
        let Some(session) = self.session.take() else {
            return;
        };
        self.generation += 1;
        if session.saved
            && let Some(stored) = self
                .profiles
                .contexts
                .iter_mut()
                .find(|c| c.name == session.context.name)
        {
            stored.token = None;
            self.save_profiles();
        }
        self.server = None;
        self.show_login(&session.context, note);
    }

    fn save_profiles(&mut self) {
        if let Some(path) = &self.config_path
            && let Err(error) = self.profiles.save(path)
        {
            self.error(format!("{error:#}"));
        }
    }

    // ---- keys ----

    fn on_key(&mut self, key: KeyEvent) {
        if Key::from(key) == Key::ctrl('c') {
            self.quit = true;
            return;
        }
        if self.overlay.is_some() {
            self.overlay_key(key);
            return;
        }
        match &mut self.screen {
            Screen::Login(form) | Screen::Setup(form) => match form.handle_key(key) {
                FormOutcome::Editing => {}
                FormOutcome::Cancel if matches!(form.purpose, Purpose::Setup) => {
                    // Back to the login screen, for another server.
                    self.screen = Screen::Login(login_form(&self.pending.url, ""));
                }
                FormOutcome::Cancel => {
                    if self.login_from_main
                        && let Some(session) = &self.session
                    {
                        // Back to the session still open; it is the current context again.
                        if session.saved {
                            let name = session.context.name.clone();
                            if self.profiles.use_context(&name).is_ok() {
                                self.save_profiles();
                            }
                        }
                        self.screen = Screen::Main;
                        self.login_from_main = false;
                    } else {
                        self.quit = true;
                    }
                }
                FormOutcome::Submit => self.submit_entry(),
            },
            Screen::Main => {
                if let Some(action) = keymap::lookup(&self.bindings(), Key::from(key)) {
                    self.perform(action);
                }
            }
        }
    }

    /// Runs an action of the main screen.
    pub fn perform(&mut self, action: Action) {
        let view = &mut self.views[self.current];
        match action {
            Action::Quit => self.quit = true,
            Action::Back | Action::Close => {
                if let Some(table) = view.table()
                    && !table.filter().is_empty()
                {
                    table.set_filter("");
                } else if let Some(previous) = self.history.pop() {
                    self.current = previous;
                    self.refresh_view();
                } else if action == Action::Close {
                    self.quit = true;
                }
            }
            Action::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::Palette => {
                self.overlay = Some(Overlay::Palette {
                    input: String::new(),
                });
            }
            Action::Filter => match view.table() {
                Some(table) => {
                    let before = table.filter().to_owned();
                    self.overlay = Some(Overlay::Filter {
                        input: before.clone(),
                        before,
                    });
                }
                // Where there is no table (the dashboard), `/` searches everything.
                None => {
                    if self.go_to("search") {
                        self.perform(Action::Filter);
                    }
                }
            },
            Action::Refresh => {
                self.refresh();
                self.info("Refreshing…");
            }
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom
            | Action::SortBy(_) => {
                if let Some(table) = view.table() {
                    match action {
                        Action::Up => table.move_by(-1),
                        Action::Down => table.move_by(1),
                        Action::PageUp => table.move_by(-table.page()),
                        Action::PageDown => table.move_by(table.page()),
                        Action::Top => table.top(),
                        Action::Bottom => table.bottom(),
                        Action::SortBy(column) => table.sort_by(column),
                        _ => {}
                    }
                }
            }
            _ => {
                let ctx = ctx!(self);
                let effects = view.on_action(action, &ctx);
                self.apply(effects, Some(self.current));
            }
        }
    }

    /// Goes to the view called `name` (or aliased so), if the role may see it, remembering
    /// the one it came from (a drill-down: `q` goes back); whether it went.
    pub fn go_to(&mut self, name: &str) -> bool {
        match views::find(name) {
            Some((index, spec)) if self.role() >= spec.min_role => {
                if index != self.current {
                    self.history.push(self.current);
                    self.current = index;
                }
                self.refresh_view();
                true
            }
            Some((_, spec)) => {
                self.error(format!(
                    "The {} view is for the {} role and above.",
                    spec.name, spec.min_role
                ));
                false
            }
            None => {
                self.error(format!(
                    "There is no view called {:?}. Press : and Tab to see them.",
                    name.trim()
                ));
                false
            }
        }
    }

    /// The views the role may open whose name or alias starts with `prefix`.
    pub fn palette_matches(&self, prefix: &str) -> Vec<&'static views::ViewSpec> {
        let prefix = prefix.trim().to_lowercase();
        VIEWS
            .iter()
            .filter(|spec| self.role() >= spec.min_role)
            .filter(|spec| {
                spec.name.starts_with(&prefix)
                    || spec.aliases.iter().any(|a| a.starts_with(&prefix))
            })
            .collect()
    }

    /// A key for the open overlay: it handles the key itself; the console does what the
    /// user chose.
    fn overlay_key(&mut self, key: KeyEvent) {
        let Some(overlay) = self.overlay.take() else {
            return;
        };
        match overlay.on_key(key, self) {
            Outcome::Keep(overlay) => self.overlay = Some(overlay),
            Outcome::Close => {}
            Outcome::Declined => self.info("Nothing was changed."),
            Outcome::Command(input) => self.palette_command(&input),
            Outcome::Filter(input, open) => {
                if let Some(table) = self.views[self.current].table() {
                    table.set_filter(&input);
                }
                self.overlay = open;
            }
            Outcome::Submit(mut form) => {
                let ctx = ctx!(self);
                let effects = self.views[self.current].on_submit(&mut form, &ctx);
                self.overlay = Some(Overlay::Form(form));
                self.apply(effects, Some(self.current));
            }
            Outcome::Confirmed(tag) => {
                let ctx = ctx!(self);
                let effects = self.views[self.current].on_confirm(tag, &ctx);
                self.apply(effects, Some(self.current));
            }
            Outcome::Trusted { fingerprint, once } => {
                self.pending.pin = Some(fingerprint);
                self.pending.once = once;
                self.sign_in();
            }
            Outcome::Refused => {
                self.set_entry_idle();
                self.error("Certificate refused; nothing was sent to the server.");
            }
        }
    }

    fn palette_command(&mut self, input: &str) {
        match input.trim() {
            "" => {}
            "q" | "quit" => self.quit = true,
            "logout" => {
                if let Some(session) = &self.session {
                    let client = session.client.clone();
                    self.call(task("signing out", async move {
                        client.logout().await.map(|()| Reply::SignedOut)
                    }));
                }
            }
            // The provider's on-call list: every site's active alerts in one (the sites view's
            // second pane).
            "alerts --all-sites" | "alerts -a" => {
                if self.go_to("sites") {
                    self.history.clear();
                    let title = self.views[self.current].title();
                    if !title.trim_start().starts_with("Alerts of all sites") {
                        self.perform(Action::NextPane);
                    }
                }
            }
            // Views opened from the palette replace each other (k9s habits): `q` on one of
            // them quits rather than walking back through every view visited.
            name => {
                if self.go_to(name) {
                    self.history.clear();
                }
            }
        }
    }

    /// Carries out what view `origin` asked for.
    fn apply(&mut self, effects: Vec<Effect>, origin: Option<usize>) {
        for effect in effects {
            match effect {
                Effect::Call(task) => self.call_from(origin, task),
                Effect::Open(overlay) => self.overlay = Some(overlay),
                Effect::CloseOverlay => self.overlay = None,
                Effect::Info(text) => self.info(text),
                Effect::Refresh => self.refresh_view(),
                Effect::SwitchContext(name) => {
                    let Ok(()) = self.profiles.use_context(&name) else {
                        continue;
                    };
                    self.save_profiles();
                    if let Some(context) = self.profiles.get(&name).cloned() {
                        self.open_context(context);
                        if matches!(self.screen, Screen::Login(_)) {
                            self.login_from_main = true;
                        } else {
                            self.info(format!("Switched to {name}."));
                        }
                    }
                }
                Effect::Goto { view, filter } => {
                    let _ = self.go_to(view);
                    if let Some(table) = self.views[self.current].table() {
                        table.set_filter(&filter);
                    }
                }
                Effect::AddContext => {
                    self.screen = Screen::Login(login_form("https://", ""));
                    self.login_from_main = true;
                }
                Effect::RemoveContext(name) => {
                    let in_use = self
                        .session
                        .as_ref()
                        .is_some_and(|s| s.saved && s.context.name == name);
                    if in_use {
                        self.error(format!(
                            "{name} is the context in use; switch to another one first."
                        ));
                    } else if self.profiles.remove(&name).is_ok() {
                        self.save_profiles();
                        self.info(format!("Context {name} removed."));
                        self.refresh_view();
                    }
                }
            }
        }
    }

    // ---- login and setup ----

    fn set_entry_idle(&mut self) {
        if let Screen::Login(form) | Screen::Setup(form) = &mut self.screen {
            form.busy = None;
        }
    }

    /// The login or setup form was submitted.
    fn submit_entry(&mut self) {
        let (Screen::Login(form) | Screen::Setup(form)) = &mut self.screen else {
            return;
        };
        if !form.validate() {
            return;
        }
        match form.purpose {
            Purpose::Login => {
                let url = match normalize_url(form.value(FieldId::ServerURL)) {
                    Ok(url) => url,
                    Err(error) => {
                        form.fail(FieldId::ServerURL, error.to_string());
                        return;
                    }
                };
                let pin = self.profiles.by_url(&url).and_then(|c| c.fingerprint);
                self.pending = Pending {
                    url: url.clone(),
                    pin,
                    once: false,
                };
                if url.starts_with("https://") && pin.is_none() {
                    let probe = form.submit("reading the server's certificate", async move {
                        let fingerprint =
                            Client::probe_fingerprint(&url).await?.ok_or_else(|| {
                                plantwatch_shared::Error::Decode(
                                    "the server presented no certificate".into(),
                                )
                            })?;
                        Ok(Reply::Probed { url, fingerprint })
                    });
                    self.call(probe);
                } else {
                    self.sign_in();
                }
            }
            Purpose::Setup => {
                if form.value(FieldId::Password) != form.value(FieldId::Repeat) {
                    form.fail(FieldId::Repeat, "the two passwords differ");
                    return;
                }
                let request = SetupRequest {
                    code: form.secret(FieldId::SetupCode),
                    username: form.value(FieldId::AdminUsername).to_owned(),
                    password: form.secret(FieldId::Password),
                };
                let client = match Client::new(&self.pending.url, self.pending.pin) {
                    Ok(client) => client,
                    Err(error) => return self.error(error.to_string()),
                };
                let setup = form.submit("setting up the server", async move {
                    let response = client.setup(&request).await?;
                    Ok(Reply::SignedIn(Box::new(response)))
                });
                self.call(setup);
            }
            Purpose::View(_) => {}
        }
    }

    /// With the certificate trusted: set up if the server needs it, else log in.
    fn sign_in(&mut self) {
        let Screen::Login(form) = &mut self.screen else {
            return;
        };
        let username = form.value(FieldId::Username).to_owned();
        let password = form.secret(FieldId::Password);
        let url = self.pending.url.clone();
        let pin = self.pending.pin;
        let client = match Client::new(&url, pin) {
            Ok(client) => client,
            Err(error) => {
                form.busy = None;
                form.error = Some(error.to_string());
                return;
            }
        };
        let sign_in = form.submit("signing in", async move {
            if client.setup_status().await?.setup_required {
                return Ok(Reply::SetupRequired { url, pin });
            }
            let response = client.login(&username, password.expose()).await?;
            Ok(Reply::SignedIn(Box::new(response)))
        });
        self.call(sign_in);
    }
}

/// An API call leaving the console: the session it belongs to (`generation`) and the view
/// that asked (`None`: the console itself), so the reply goes back where it is wanted.
pub struct Outgoing {
    pub generation: u64,
    pub origin: Option<usize>,
    pub task: Task,
}

impl crate::overlay::Host for App {
    fn theme(&self) -> crate::theme::Theme {
        self.theme
    }

    fn help_lines(&self) -> Vec<(String, String)> {
        self.bindings()
            .iter()
            .map(|b| (b.keys_label(), b.help.to_string()))
            .collect()
    }

    fn palette_matches(&self, prefix: &str) -> Vec<&'static views::ViewSpec> {
        App::palette_matches(self, prefix)
    }

    fn view_name(&self) -> &'static str {
        App::view_name(self)
    }
}
