//! The console's views. A view is one file here holding its state, its key bindings, its
//! rendering and its handling of actions and API replies (a `SPEC` names it); it joins the
//! console by adding its name to the `views!` list below.

use plantwatch_shared::Client;
use plantwatch_shared::api::{Me, Role};
use ratatui::Frame;
use ratatui::layout::Rect;
use time::OffsetDateTime;

use crate::event::{Reply, Task};
use crate::keymap::{self, Action, Binding};
use crate::overlay::Overlay;
use crate::profile::Profiles;
use crate::theme::Theme;
use crate::widgets::form::{Ask, Form};

/// Declares each view's module and lists its spec in [`VIEWS`].
macro_rules! views {
    ($($view:ident),* $(,)?) => {
        $(pub mod $view;)*

        /// Every view, in the order the palette lists them. The first is where the console
        /// starts.
        pub const VIEWS: &[ViewSpec] = &[$($view::SPEC),*];
    };
}

pub mod event_rule_form;
pub mod lifecycle;
pub mod resource;

// The view list: a new view is its file in this folder and its name here.
views!(
    dashboard,
    search,
    alerts,
    nodes,
    certs,
    events,
    topology,
    discovery,
    credentials,
    collectors,
    rules,
    templates,
    maintenance,
    channels,
    users,
    settings,
    sites,
    contexts,
    audit
);

/// A view's name, aliases for the `:` palette, the least role that sees it, and its constructor.
pub struct ViewSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub about: &'static str,
    pub min_role: Role,
    pub make: fn() -> Box<dyn View>,
}

/// What a view sees of the rest of the console: read-only, so rendering stays pure.
pub struct Ctx<'a> {
    pub now: OffsetDateTime,
    pub me: Option<&'a Me>,
    pub client: Option<&'a Client>,
    pub profiles: &'a Profiles,
    pub context: Option<&'a str>,
    pub server: Option<&'a crate::app::ServerStatus>,
    pub theme: Theme,
}

impl Ctx<'_> {
    pub fn role(&self) -> Role {
        self.me.map_or(Role::Viewer, |me| me.user.role)
    }
}

/// What a view asks the console to do.
pub enum Effect {
    /// Run an API call; its reply comes back through `on_reply`.
    Call(Task),
    /// Show an overlay (form, confirmation, details).
    Open(Overlay),
    /// Close the overlay (a form whose submit succeeded).
    CloseOverlay,
    /// Say something in the status line.
    Info(String),
    /// Reload the current view now.
    Refresh,
    /// Switch to another saved context, signing in again if needed.
    SwitchContext(String),
    /// Show the login screen to add a context.
    AddContext,
    /// Forget a saved context.
    RemoveContext(String),
    /// Go to another view with its table filtered (an alert's node).
    Goto { view: &'static str, filter: String },
}

pub trait View {
    /// The title in the view's frame.
    fn title(&self) -> String;

    /// The view's own bindings (sort and global ones are added by [`bindings_of`]).
    fn bindings(&self) -> Vec<Binding>;

    /// Its table's column titles and sort letters, if it has a table.
    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        Vec::new()
    }

    /// Draws the view; never does I/O.
    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx);

    /// The API calls that (re)load the view's data.
    fn refresh(&self, ctx: &Ctx) -> Vec<Task>;

    /// Handles one of its bindings' actions (navigation is handled for it if it has a table).
    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect>;

    /// Takes what an API call returned; every view sees every reply and keeps what is its own.
    fn on_reply(&mut self, reply: &Reply, ctx: &Ctx) -> Vec<Effect>;

    /// A form it opened was submitted.
    fn on_submit(&mut self, _form: &mut Form, _ctx: &Ctx) -> Vec<Effect> {
        Vec::new()
    }

    /// A confirmation it asked for was given.
    fn on_confirm(&mut self, _tag: Ask, _ctx: &Ctx) -> Vec<Effect> {
        Vec::new()
    }

    /// Whether it shows work in progress (a running scan): reloaded every second, not every 10.
    fn live(&self) -> bool {
        false
    }

    /// Its table, if it has one, for the generic navigation, filter and sort.
    fn table(&mut self) -> Option<&mut dyn Navigate> {
        None
    }
}

/// The part of a table the console drives directly.
pub trait Navigate {
    fn move_by(&mut self, delta: isize);
    fn page(&self) -> isize;
    fn top(&mut self);
    fn bottom(&mut self);
    fn filter(&self) -> &str;
    fn set_filter(&mut self, filter: &str);
    fn sort_by(&mut self, column: usize);
}

impl<T> Navigate for crate::widgets::table::DataTable<T> {
    fn move_by(&mut self, delta: isize) {
        self.move_by(delta);
    }
    fn page(&self) -> isize {
        self.page()
    }
    fn top(&mut self) {
        self.top();
    }
    fn bottom(&mut self) {
        self.bottom();
    }
    fn filter(&self) -> &str {
        self.filter()
    }
    fn set_filter(&mut self, filter: &str) {
        self.set_filter(filter);
    }
    fn sort_by(&mut self, column: usize) {
        self.sort_by(column);
    }
}

/// Every binding `role` is offered in `view`: its own, Shift+letter sorts for its columns, and
/// the global ones.
pub fn bindings_of(view: &dyn View, role: Role) -> Vec<Binding> {
    let mut bindings = view.bindings();
    bindings.extend(keymap::sort_bindings(&view.sort_keys()));
    keymap::for_view(bindings, role)
}

/// The spec of the view called `name` or aliased so.
pub fn find(name: &str) -> Option<(usize, &'static ViewSpec)> {
    let name = name.trim().to_lowercase();
    VIEWS
        .iter()
        .enumerate()
        .find(|(_, spec)| spec.name == name || spec.aliases.contains(&name.as_str()))
}
