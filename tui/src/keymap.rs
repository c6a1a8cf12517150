//! Keys → actions, in one table per view. The same table drives key handling, the footer and the
//! help overlay, so a binding that works is always documented and vice versa.

use std::borrow::Cow;
use std::fmt;

use plantwatch_shared::api::Role;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A key as bindings name it. Letters carry their case; Shift is implied by an upper-case letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    pub const fn new(code: KeyCode) -> Self {
        Key { code, ctrl: false }
    }

    pub const fn ch(c: char) -> Self {
        Key::new(KeyCode::Char(c))
    }

    pub const fn ctrl(c: char) -> Self {
        Key {
            code: KeyCode::Char(c),
            ctrl: true,
        }
    }
}

impl From<KeyEvent> for Key {
    fn from(event: KeyEvent) -> Self {
        let code = match event.code {
            // Terminals report Shift+Tab either way.
            KeyCode::Tab if event.modifiers.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
            KeyCode::Char(c) if event.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            code => code,
        };
        Key {
            code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl+")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if c.is_ascii_uppercase() && !self.ctrl => write!(f, "Shift+{c}"),
            KeyCode::Char(c) if self.ctrl => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift+Tab"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Everything a key can do outside of text input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Back,
    Close,
    Help,
    Palette,
    Filter,
    Refresh,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    /// Sort the table by its column `n`; again to reverse.
    SortBy(usize),
    Create,
    /// Change the selected record.
    Edit,
    ChangeRole,
    ResetPassword,
    Delete,
    /// Mark or unmark the row for a batch action.
    Mark,
    /// Attach a credential to nodes.
    Attach,
    /// Show secrets in clear (admins, audit-logged).
    Reveal,
    /// Approve a collector or agent.
    Approve,
    /// Revoke a collector's or agent's key.
    Revoke,
    /// Create an enrollment token and show its join code.
    NewToken,
    AddContext,
    RemoveContext,
    /// Open or close the selected node's charts.
    Charts,
    /// Chart range `n` of `widgets::charts::RANGES`.
    Range(usize),
    /// Acknowledge an alert (with a comment).
    Acknowledge,
    Unacknowledge,
    /// Show resolved alerts too, or only active ones.
    History,
    /// Go to the node an alert is about.
    JumpToNode,
    /// Disable or enable a rule.
    Toggle,
    /// Send a test notification.
    Test,
    /// Import found devices as nodes.
    Import,
    /// Dismiss found devices.
    Dismiss,
    /// Leave a sub-list for the list above it (a job's inbox for the jobs).
    Leave,
    /// Hand a directory user's role back to their groups.
    Unpin,
    /// Add a service check to a node.
    AddCheck,
    /// Stop or resume following (the events view).
    Pause,
    /// Create an event rule (the rules view).
    NewEventRule,
    /// Draw the tree from the selected node (the topology view).
    Reroot,
    /// Show the parents the links suggest, or the tree again (the topology view).
    SuggestParents,
    /// Set the suggested parents (marked ones, else all listed).
    ApplyParents,
    /// Switch between a screen's panes (a node's panels and its every series).
    NextPane,
    /// Chart one metric of every series, the highest ones.
    TopOf,
    /// Move a chart's cursor by this many steps.
    Cursor(i8),
    /// Zoom the time window in (1) or out (-1).
    Zoom(i8),
    /// Move the time window later (1) or earlier (-1).
    Scroll(i8),
    /// Write the chart as pictures.
    Export,
    /// Mark every row shown, or unmark them all.
    MarkAll,
    /// Change the marked rows together (one request).
    BulkEdit,
    /// Set what a node must run (Windows services, processes).
    MustRun,
}

impl Action {
    /// Whether the action changes something on the server: never offered to viewers.
    pub fn is_edit(self) -> bool {
        matches!(
            self,
            Action::Create
                | Action::NewEventRule
                | Action::Edit
                | Action::ChangeRole
                | Action::ResetPassword
                | Action::Delete
                | Action::Attach
                | Action::Approve
                | Action::Revoke
                | Action::NewToken
                | Action::Acknowledge
                | Action::Unacknowledge
                | Action::Toggle
                | Action::Test
                | Action::Import
                | Action::Dismiss
                | Action::Unpin
                | Action::AddCheck
                | Action::ApplyParents
                | Action::BulkEdit
                | Action::MustRun
        )
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub keys: Vec<Key>,
    pub action: Action,
    /// What the help overlay says.
    pub help: Cow<'static, str>,
    /// The short label in the footer, for the view's main keys.
    pub footer: Option<&'static str>,
    /// The least role that is offered this binding.
    pub min_role: Role,
}

impl Binding {
    pub fn new(keys: &[Key], action: Action, help: impl Into<Cow<'static, str>>) -> Self {
        Binding {
            keys: keys.to_vec(),
            action,
            help: help.into(),
            footer: None,
            min_role: Role::Viewer,
        }
    }

    /// Shows the binding in the footer with `label`.
    pub fn footer(mut self, label: &'static str) -> Self {
        self.footer = Some(label);
        self
    }

    /// Offers the binding only to `role` and above.
    pub fn role(mut self, role: Role) -> Self {
        self.min_role = role;
        self
    }

    /// The keys as the help overlay and footer print them: `j/↓`.
    pub fn keys_label(&self) -> String {
        self.keys
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The bindings every view has.
pub fn global() -> Vec<Binding> {
    use KeyCode as K;
    vec![
        Binding::new(
            &[Key::ch(':')],
            Action::Palette,
            "open the command palette (views)",
        )
        .footer("views"),
        Binding::new(
            &[Key::ch('/')],
            Action::Filter,
            "filter the table (! inverts); without a table, search",
        )
        .footer("filter"),
        Binding::new(
            &[Key::ch('?')],
            Action::Help,
            "help: every key of this view",
        )
        .footer("help"),
        Binding::new(
            &[Key::ch('j'), Key::new(K::Down)],
            Action::Down,
            "move down",
        ),
        Binding::new(&[Key::ch('k'), Key::new(K::Up)], Action::Up, "move up"),
        Binding::new(
            &[Key::new(K::PageDown), Key::ctrl('f')],
            Action::PageDown,
            "page down",
        ),
        Binding::new(
            &[Key::new(K::PageUp), Key::ctrl('b')],
            Action::PageUp,
            "page up",
        ),
        Binding::new(&[Key::new(K::Home), Key::ch('g')], Action::Top, "first row"),
        Binding::new(
            &[Key::new(K::End), Key::ch('G')],
            Action::Bottom,
            "last row",
        ),
        Binding::new(&[Key::ctrl('r')], Action::Refresh, "refresh now"),
        Binding::new(
            &[Key::new(K::Esc)],
            Action::Back,
            "back (clears the filter first)",
        ),
        Binding::new(
            &[Key::ch('q')],
            Action::Close,
            "back; on the first view, quit",
        )
        .footer("back"),
        Binding::new(&[Key::ctrl('c')], Action::Quit, "quit from anywhere"),
    ]
}

/// The bindings offered to `role`: the view's own first, then the global ones.
pub fn for_view(view_bindings: Vec<Binding>, role: Role) -> Vec<Binding> {
    view_bindings
        .into_iter()
        .chain(global())
        .filter(|b| role >= b.min_role)
        .collect()
}

/// The action bound to `key`, if any.
pub fn lookup(bindings: &[Binding], key: Key) -> Option<Action> {
    bindings
        .iter()
        .find(|b| b.keys.contains(&key))
        .map(|b| b.action)
}

/// The sort bindings for a table's columns: Shift + the column's sort letter.
pub fn sort_bindings(columns: &[(&'static str, char)]) -> Vec<Binding> {
    columns
        .iter()
        .enumerate()
        .map(|(index, (title, letter))| {
            Binding::new(
                &[Key::ch(letter.to_ascii_uppercase())],
                Action::SortBy(index),
                format!("sort by {title} (again: reverse)"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_letters_and_control_keys_normalise() {
        let shifted = KeyEvent::new(KeyCode::Char('N'), KeyModifiers::SHIFT);
        assert_eq!(Key::from(shifted), Key::ch('N'));
        let ctrl = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(Key::from(ctrl), Key::ctrl('c'));
        let back_tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::SHIFT);
        assert_eq!(Key::from(back_tab).code, KeyCode::BackTab);
        assert_eq!(Key::ch('N').to_string(), "Shift+N");
        assert_eq!(Key::ctrl('c').to_string(), "Ctrl+C");
    }

    #[test]
    fn role_filters_bindings() {
        let view = vec![Binding::new(&[Key::ch('c')], Action::Create, "create").role(Role::Admin)];
        assert_eq!(
            lookup(&for_view(view.clone(), Role::Admin), Key::ch('c')),
            Some(Action::Create)
        );
        assert_eq!(lookup(&for_view(view, Role::Viewer), Key::ch('c')), None);
    }
}
