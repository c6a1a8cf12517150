//! Forms: labelled fields (text, masked secret, choice), each checked as it is typed, with the
//! error shown under the field and a form-level error from the server under all of them.

use plantwatch_shared::Secret;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::event::{Reply, Task, task};
use crate::theme::Theme;

/// What submitting a form does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Login,
    Setup,
    /// Handled by the current view: which of its forms.
    View(Ask),
}

/// Which of a view's forms or questions an overlay is, handed back to the view. A view
/// declares its own once with [`asks!`](crate::asks) and matches on those constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask(pub &'static str);

/// Declares a view's forms and questions: `asks!(CREATE, DELETE)` makes constants of type
/// [`Ask`], each named for itself, so two cannot be told apart by accident.
#[macro_export]
macro_rules! asks {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        $($(#[$doc])* const $name: $crate::widgets::form::Ask =
            $crate::widgets::form::Ask(stringify!($name));)*
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Secret,
    Choice(&'static [&'static str]),
    /// A choice between options known only at run time (collectors, say).
    Pick(Vec<String>),
    /// Any of `options`, in the order chosen (credentials to try, say): ←/→ move the cursor,
    /// Space takes or drops the option under it. The value lists the chosen ones, `, `-joined.
    Multi {
        options: Vec<String>,
        cursor: usize,
    },
}

impl FieldKind {
    /// Chosen from options rather than typed.
    fn is_choice(&self) -> bool {
        !matches!(self, FieldKind::Text | FieldKind::Secret)
    }
}

/// `text` cut to `width` characters with an ellipsis: its end when `tail`, else its start.
fn fit(text: &str, width: usize, tail: bool) -> String {
    let count = text.chars().count();
    if count <= width || width < 2 {
        return text.to_owned();
    }
    if tail {
        let skip = count - (width - 1);
        format!("…{}", text.chars().skip(skip).collect::<String>())
    } else {
        format!("{}…", text.chars().take(width - 1).collect::<String>())
    }
}

/// A check run on a field's value as it changes.
pub type Check = fn(&str) -> Result<(), String>;

/// A field's identity in a form: each view declares its fields once with [`field_ids!`],
/// builds its forms from them and reads them back by the same ids, so a misspelt field is a
/// compile error rather than an empty value.
pub trait FieldKey: Copy {
    /// The label shown before the field.
    fn label(self) -> &'static str;
}

/// Declares a view's form fields: `field_ids! { Name = "Name", ServerUrl = "Server URL" }`
/// makes an enum `FieldId` whose variants are [`FieldKey`]s with those labels.
#[macro_export]
macro_rules! field_ids {
    ($($id:ident = $label:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum FieldId {
            $($id,)*
        }

        impl $crate::widgets::form::FieldKey for FieldId {
            fn label(self) -> &'static str {
                match self {
                    $(FieldId::$id => $label,)*
                }
            }
        }
    };
}

#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    pub kind: FieldKind,
    pub value: String,
    pub error: Option<String>,
    pub check: Option<Check>,
    /// Whether an empty value fails validation.
    pub required: bool,
    /// Values a text field completes to (`→` takes the one shown); in a `;`-separated list,
    /// the last item completes.
    pub suggestions: Vec<String>,
}

impl Field {
    pub fn text(id: impl FieldKey) -> Self {
        let label = id.label();
        Field {
            label,
            kind: FieldKind::Text,
            value: String::new(),
            error: None,
            check: None,
            required: true,
            suggestions: Vec::new(),
        }
    }

    pub fn secret(id: impl FieldKey) -> Self {
        Field {
            kind: FieldKind::Secret,
            ..Field::text(id)
        }
    }

    /// A choice between `options`, starting at `initial`.
    pub fn choice(id: impl FieldKey, options: &'static [&'static str], initial: &str) -> Self {
        Field {
            kind: FieldKind::Choice(options),
            value: initial.to_owned(),
            ..Field::text(id)
        }
    }

    /// A choice between `options` known at run time, starting at the first.
    pub fn pick(id: impl FieldKey, options: Vec<String>) -> Self {
        Field {
            value: options.first().cloned().unwrap_or_default(),
            kind: FieldKind::Pick(options),
            ..Field::text(id)
        }
    }

    /// Any number of `options`, in the order chosen; none at first.
    pub fn multi(id: impl FieldKey, options: Vec<String>) -> Self {
        Field {
            kind: FieldKind::Multi { options, cursor: 0 },
            required: false,
            ..Field::text(id)
        }
    }

    /// The chosen options of a multi-choice field, in order.
    pub fn chosen(&self) -> Vec<String> {
        self.value
            .split(", ")
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.value = value.into();
        self
    }

    /// The field may stay empty.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    pub fn checked(mut self, check: Check) -> Self {
        self.check = Some(check);
        self
    }

    /// Values the field completes to as you type (the real templates, collectors, nodes).
    pub fn suggest(mut self, mut options: Vec<String>) -> Self {
        options.sort_by_key(|o| o.to_lowercase());
        options.dedup();
        self.suggestions = options;
        self
    }

    /// Takes the completion shown: the item being typed becomes the suggestion, spelt as it is.
    fn complete(&mut self) {
        let Some((rest, _)) = self.completion() else {
            return;
        };
        let start = self.value.rfind(';').map_or(0, |i| i + 1);
        let typed = self.value[start..].trim_start().to_owned();
        let whole = format!("{typed}{rest}");
        let lower = whole.to_lowercase();
        if let Some(exact) = self.suggestions.iter().find(|s| s.to_lowercase() == lower) {
            let keep = self.value.len() - typed.len();
            self.value.truncate(keep);
            self.value.push_str(exact);
        }
        self.run_check();
    }

    /// What `→` would add to the value: the rest of the first suggestion the item being typed
    /// (the last of a `;` list) begins, ignoring case; and how many match.
    pub fn completion(&self) -> Option<(String, usize)> {
        if self.kind != FieldKind::Text || self.suggestions.is_empty() {
            return None;
        }
        let typed = self
            .value
            .rsplit(';')
            .next()
            .unwrap_or_default()
            .trim_start();
        let lower = typed.to_lowercase();
        let mut matching = self
            .suggestions
            .iter()
            .filter(|s| s.to_lowercase().starts_with(&lower) && s.len() > typed.len());
        let first = matching.next()?;
        let rest: String = first.chars().skip(typed.chars().count()).collect();
        Some((rest, 1 + matching.count()))
    }

    fn run_check(&mut self) {
        self.error = match self.check {
            Some(check) if !self.value.is_empty() => check(&self.value).err(),
            _ => None,
        };
    }

    fn shown(&self) -> String {
        match &self.kind {
            FieldKind::Text => self.value.clone(),
            FieldKind::Secret => "•".repeat(self.value.chars().count()),
            // Too many to show side by side: the current one and where it stands.
            FieldKind::Choice(options) if options.len() > 4 => {
                let at = options.iter().position(|o| *o == self.value).unwrap_or(0);
                format!("◂ {} ▸  ({}/{})", self.value, at + 1, options.len())
            }
            FieldKind::Choice(options) => options
                .iter()
                .map(|o| {
                    if *o == self.value {
                        format!("[{o}]")
                    } else {
                        format!(" {o} ")
                    }
                })
                .collect::<Vec<_>>()
                .join(""),
            FieldKind::Pick(options) if options.is_empty() => "(none)".into(),
            FieldKind::Pick(options) => {
                let at = options.iter().position(|o| *o == self.value).unwrap_or(0);
                format!("◂ {} ▸  ({}/{})", self.value, at + 1, options.len())
            }
            FieldKind::Multi { options, .. } if options.is_empty() => "(none)".into(),
            FieldKind::Multi { options, cursor } => {
                let chosen = self.chosen();
                options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        let mark = match chosen.iter().position(|c| c == o) {
                            Some(n) => (n + 1).to_string(),
                            None => " ".into(),
                        };
                        let (open, close) = if i == *cursor {
                            ("›", "‹")
                        } else {
                            (" ", " ")
                        };
                        format!("{open}[{mark}] {o}{close}")
                    })
                    .collect::<Vec<_>>()
                    .join("")
            }
        }
    }

    fn cycle(&mut self, forward: bool) {
        let step = |at: usize, len: usize| {
            if forward {
                (at + 1) % len
            } else {
                (at + len - 1) % len
            }
        };
        match &mut self.kind {
            FieldKind::Choice(options) if !options.is_empty() => {
                let at = options.iter().position(|o| *o == self.value).unwrap_or(0);
                self.value = options[step(at, options.len())].to_owned();
            }
            FieldKind::Pick(options) if !options.is_empty() => {
                let at = options.iter().position(|o| *o == self.value).unwrap_or(0);
                self.value = options[step(at, options.len())].clone();
            }
            FieldKind::Multi { options, cursor } if !options.is_empty() => {
                *cursor = step(*cursor, options.len());
            }
            _ => {}
        }
    }

    /// Space: a multi-choice field takes or drops the option under its cursor; any other
    /// choice moves on.
    fn toggle(&mut self) {
        let FieldKind::Multi { options, cursor } = &self.kind else {
            self.cycle(true);
            return;
        };
        let Some(option) = options.get(*cursor).cloned() else {
            return;
        };
        let mut chosen = self.chosen();
        match chosen.iter().position(|c| *c == option) {
            Some(at) => {
                chosen.remove(at);
            }
            None => chosen.push(option),
        }
        self.value = chosen.join(", ");
    }
}

/// What a key did to the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormOutcome {
    Editing,
    Submit,
    Cancel,
}

#[derive(Debug, Clone)]
pub struct Form {
    pub title: String,
    pub purpose: Purpose,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// A note above the fields (why this form is shown).
    pub note: Option<String>,
    /// The server's answer to the last submit.
    pub error: Option<String>,
    /// Submitted and waiting for the server: what the call is doing (its failure comes back
    /// with the same words and is shown here).
    pub busy: Option<&'static str>,
}

impl Form {
    pub fn new(title: impl Into<String>, purpose: Purpose, fields: Vec<Field>) -> Self {
        Form {
            title: title.into(),
            purpose,
            fields,
            focus: 0,
            note: None,
            error: None,
            busy: None,
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Puts the cursor on the first empty field.
    pub fn focus_first_empty(mut self) -> Self {
        self.focus = self
            .fields
            .iter()
            .position(|f| f.value.is_empty())
            .unwrap_or(0);
        self
    }

    /// The value of field `id` (empty if the form has none).
    pub fn value(&self, id: impl FieldKey) -> &str {
        let label = id.label();
        self.fields
            .iter()
            .find(|f| f.label == label)
            .map_or("", |f| f.value.as_str())
    }

    /// A secret field's value, as a `Secret`.
    pub fn secret(&self, id: impl FieldKey) -> Secret {
        Secret::from(self.value(id))
    }

    /// Marks `label` as wrong; returns false so validators can `return form.fail(...)`.
    pub fn fail(&mut self, id: impl FieldKey, message: impl Into<String>) -> bool {
        let label = id.label();
        if let Some(field) = self.fields.iter_mut().find(|f| f.label == label) {
            field.error = Some(message.into());
        }
        false
    }

    /// Sends the form: `call` runs as a task doing `doing`, and the form waits for it.
    pub fn submit<F>(&mut self, doing: &'static str, call: F) -> Task
    where
        F: Future<Output = Result<Reply, plantwatch_shared::Error>> + Send + 'static,
    {
        self.busy = Some(doing);
        self.error = None;
        task(doing, call)
    }

    /// Runs every field's check, requiring a value in each; true when all pass.
    pub fn validate(&mut self) -> bool {
        let mut ok = true;
        for field in &mut self.fields {
            field.run_check();
            if field.value.is_empty() && field.required {
                field.error = Some(format!("{} is required", field.label));
            }
            ok &= field.error.is_none();
        }
        ok
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> FormOutcome {
        if self.busy.is_some() {
            return if key.code == KeyCode::Esc {
                FormOutcome::Cancel
            } else {
                FormOutcome::Editing
            };
        }
        let last = self.fields.len().saturating_sub(1);
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let field = &mut self.fields[self.focus.min(last)];
        match key.code {
            KeyCode::Esc => return FormOutcome::Cancel,
            KeyCode::Enter if self.focus >= last => return FormOutcome::Submit,
            KeyCode::Enter | KeyCode::Tab | KeyCode::Down => {
                self.focus = (self.focus + 1).min(last)
            }
            KeyCode::BackTab | KeyCode::Up => self.focus = self.focus.saturating_sub(1),
            KeyCode::Left if field.kind.is_choice() => field.cycle(false),
            KeyCode::Right if field.kind.is_choice() => field.cycle(true),
            KeyCode::Right => field.complete(),
            KeyCode::Char(' ') if field.kind.is_choice() => field.toggle(),
            KeyCode::Char('u') if ctrl && !field.kind.is_choice() => {
                field.value.clear();
                field.run_check();
            }
            KeyCode::Char(c) if !ctrl && !field.kind.is_choice() => {
                field.value.push(c);
                field.run_check();
                self.error = None;
            }
            KeyCode::Backspace if !field.kind.is_choice() => {
                field.value.pop();
                field.run_check();
            }
            _ => {}
        }
        FormOutcome::Editing
    }

    /// A long form gives a field's error its own line only when there is one, so that it fits
    /// an 80x24 terminal.
    fn compact(&self) -> bool {
        self.fields.len() > 5
    }

    /// Rows the form needs at `width`: borders, note (wrapped), one or two per field, error,
    /// hint.
    pub fn height(&self, width: u16) -> u16 {
        let inner = usize::from(width.saturating_sub(2)).max(1);
        let note = self.note.as_ref().map_or(0, |n| {
            u16::try_from(n.chars().count().div_ceil(inner) + 1).unwrap_or(u16::MAX)
        });
        let label_width = self.fields.iter().map(|f| f.label.len()).max().unwrap_or(0) + 2;
        // An error line is indented under the value and wraps when long.
        let error_rows = |error: &str| (label_width + 4 + error.chars().count()).div_ceil(inner);
        let rows: usize = self
            .fields
            .iter()
            .map(|f| match &f.error {
                Some(error) => 1 + error_rows(error),
                None if self.compact() => 1,
                None => 2,
            })
            .sum();
        let fields = u16::try_from(rows).unwrap_or(u16::MAX);
        2 + note + fields + 2 + 1
    }

    /// Draws the form in `area` (cleared first, so it can float over a view).
    pub fn render(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        frame.render_widget(Clear, area);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(format!(" {} ", self.title), theme.title()));
        let inner = block.inner(area);
        frame.render_widget(block, area);

        let label_width = self.fields.iter().map(|f| f.label.len()).max().unwrap_or(0) + 2;
        let mut lines: Vec<Line> = Vec::new();
        if let Some(note) = &self.note {
            lines.push(Line::from(note.as_str()));
            lines.push(Line::default());
        }
        let mut cursor = None;
        for (index, field) in self.fields.iter().enumerate() {
            let focused = index == self.focus;
            let marker = if focused { "›" } else { " " };
            let box_width = usize::from(inner.width).saturating_sub(label_width + 2);
            // A value longer than its box shows its end while typed in, its start otherwise,
            // on one line (never wrapping into the next field).
            let shown = fit(&field.shown(), box_width.saturating_sub(1), focused);
            let padded = format!("{shown:<box_width$}");
            if focused && !field.kind.is_choice() {
                let x =
                    inner.x + u16::try_from(label_width + 2 + shown.chars().count()).unwrap_or(0);
                let y = inner.y + u16::try_from(lines.len()).unwrap_or(0);
                cursor = Some(Position::new(x.min(inner.right().saturating_sub(1)), y));
            }
            // The completion `→` would take, dimmed after what was typed.
            let completion = field
                .completion()
                .filter(|_| focused)
                .map(|(rest, _)| rest)
                .filter(|rest| shown.chars().count() + rest.chars().count() < box_width);
            let (padded, rest) = match completion {
                Some(rest) => {
                    let room = box_width.saturating_sub(shown.chars().count());
                    (shown.clone(), format!("{rest:<room$}"))
                }
                None => (padded, String::new()),
            };
            lines.push(Line::from(vec![
                Span::raw(format!("{marker}{:<label_width$} ", field.label)),
                Span::styled(
                    padded,
                    if focused {
                        theme.focused_field()
                    } else {
                        theme.field()
                    },
                ),
                Span::styled(rest, theme.focused_field().patch(theme.dim())),
            ]));
            match &field.error {
                Some(error) => lines.push(Line::from(vec![
                    Span::raw(" ".repeat(label_width + 2)),
                    Span::styled(format!("✖ {error}"), theme.error()),
                ])),
                None if !self.compact() => lines.push(Line::default()),
                None => {}
            }
        }
        if let Some(error) = &self.error {
            lines.push(Line::styled(format!("✖ {error}"), theme.error()));
        } else if self.busy.is_some() {
            lines.push(Line::styled("… working", theme.dim()));
        } else {
            lines.push(Line::default());
        }
        let focused = self.fields.get(self.focus).map(|f| &f.kind);
        let hint = if matches!(focused, Some(FieldKind::Multi { .. })) {
            "←/→ move · Space takes or drops · Tab next · Enter on the last field submits · Esc cancels"
        } else if focused.is_some_and(FieldKind::is_choice) {
            "←/→ choose · Tab next · Enter on the last field submits · Esc cancels"
        } else if self
            .fields
            .get(self.focus)
            .is_some_and(|f| f.completion().is_some())
        {
            "→ completes · Tab next · ↑ back · Enter on the last submits · Esc cancels"
        } else {
            "Tab/↓ next · ↑ back · Enter on the last field submits · Esc cancels"
        };
        lines.push(Line::styled(hint, theme.dim()));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        if let Some(position) = cursor {
            frame.set_cursor_position(position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::field_ids! {
        Username = "Username",
        Password = "Password",
        Role = "Role",
    }

    fn press(form: &mut Form, code: KeyCode) -> FormOutcome {
        form.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn a_long_value_fits_its_box_on_one_line() {
        assert_eq!(fit("short", 10, false), "short");
        assert_eq!(fit("cn=svc,ou=people,dc=plant", 10, false), "cn=svc,ou…");
        assert_eq!(fit("cn=svc,ou=people,dc=plant", 10, true), "…,dc=plant");
        assert_eq!(
            fit("cn=svc,ou=people,dc=plant", 10, true).chars().count(),
            10
        );
    }

    fn type_text(form: &mut Form, text: &str) {
        for c in text.chars() {
            press(form, KeyCode::Char(c));
        }
    }

    fn form() -> Form {
        Form::new(
            "New user",
            Purpose::View(Ask("NEW_USER")),
            vec![
                Field::text(FieldId::Username).checked(|v| {
                    if v.contains(' ') {
                        Err("no spaces".into())
                    } else {
                        Ok(())
                    }
                }),
                Field::secret(FieldId::Password),
                Field::choice(FieldId::Role, &["viewer", "operator", "admin"], "viewer"),
            ],
        )
    }

    #[test]
    fn typing_checks_inline_and_enter_walks_to_submit() {
        let mut form = form();
        type_text(&mut form, "an a");
        assert_eq!(form.fields[0].error.as_deref(), Some("no spaces"));
        press(&mut form, KeyCode::Backspace);
        press(&mut form, KeyCode::Backspace);
        assert_eq!(form.fields[0].error, None);
        assert_eq!(press(&mut form, KeyCode::Enter), FormOutcome::Editing);
        type_text(&mut form, "s3cret pw");
        assert_eq!(form.fields[1].shown(), "•••••••••");
        press(&mut form, KeyCode::Tab);
        press(&mut form, KeyCode::Right);
        press(&mut form, KeyCode::Right);
        assert_eq!(form.value(FieldId::Role), "admin");
        press(&mut form, KeyCode::Right);
        assert_eq!(form.value(FieldId::Role), "viewer");
        press(&mut form, KeyCode::Left);
        assert_eq!(form.value(FieldId::Role), "admin");
        assert_eq!(press(&mut form, KeyCode::Enter), FormOutcome::Submit);
        assert!(form.validate());
        assert_eq!(form.value(FieldId::Username), "an");
        assert_eq!(form.secret(FieldId::Password).expose(), "s3cret pw");
        assert_eq!(press(&mut form, KeyCode::Esc), FormOutcome::Cancel);
    }

    #[test]
    fn right_completes_from_the_suggestions_and_the_last_item_of_a_list() {
        let mut form = Form::new(
            "New node",
            Purpose::View(Ask("NEW_NODE")),
            vec![Field::text(FieldId::Username).suggest(vec![
                "cisco-nxos".into(),
                "cisco-ios".into(),
                "apc-ups".into(),
            ])],
        );
        type_text(&mut form, "Cis");
        assert_eq!(form.fields[0].completion(), Some(("co-ios".into(), 2)));
        press(&mut form, KeyCode::Right);
        assert_eq!(
            form.value(FieldId::Username),
            "cisco-ios",
            "spelt as the template is"
        );
        assert_eq!(form.fields[0].completion(), None, "nothing longer matches");
        type_text(&mut form, ";ap");
        press(&mut form, KeyCode::Right);
        assert_eq!(form.value(FieldId::Username), "cisco-ios;apc-ups");
        // Nothing matches: → does nothing.
        type_text(&mut form, ";zz");
        press(&mut form, KeyCode::Right);
        assert_eq!(form.value(FieldId::Username), "cisco-ios;apc-ups;zz");
    }

    #[test]
    fn empty_fields_fail_validation_by_name() {
        let mut form = form();
        assert!(!form.validate());
        assert_eq!(
            form.fields[0].error.as_deref(),
            Some("Username is required")
        );
        assert_eq!(form.fields[2].error, None);
    }
}
