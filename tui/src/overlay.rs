//! What floats over a view: each overlay draws itself and handles its keys, and tells the
//! console what the user chose ([`Outcome`]). Only one is open at a time, so it is one enum.

use plantwatch_shared::Fingerprint;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::theme::Theme;
use crate::views::{self, ViewSpec};
use crate::widgets::centered;
use crate::widgets::form::{Ask, Form, FormOutcome};

#[derive(Debug, Clone)]
pub enum Overlay {
    /// Every binding of the current view.
    Help {
        scroll: u16,
    },
    /// `:` — go to a view by name or alias.
    Palette {
        input: String,
    },
    /// `/` — the filter being typed; `before` is restored by Esc.
    Filter {
        input: String,
        before: String,
    },
    Form(Form),
    Confirm(Confirm),
    /// An unknown server certificate: accept once, always, or refuse.
    Trust {
        url: String,
        fingerprint: Fingerprint,
    },
    /// A record's fields, read-only.
    Detail {
        title: String,
        lines: Vec<(String, String)>,
    },
}

/// A question before a destructive action.
#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    pub question: String,
    /// What pressing `y` does, in words ("delete").
    pub yes: &'static str,
    /// Handed back to the view that asked.
    pub tag: Ask,
}

/// What overlays see of the console.
pub trait Host {
    fn theme(&self) -> Theme;
    /// The current view's bindings, as (keys, help) lines.
    fn help_lines(&self) -> Vec<(String, String)>;
    /// The views the palette offers for `prefix`.
    fn palette_matches(&self, prefix: &str) -> Vec<&'static ViewSpec>;
    fn view_name(&self) -> &'static str;
}

/// What a key did to an overlay.
#[derive(Debug)]
pub enum Outcome {
    /// It stays open, as it is now.
    Keep(Overlay),
    /// It closed.
    Close,
    /// A question answered no: nothing was done.
    Declined,
    /// The palette's command (a view's name, `q`, `logout`).
    Command(String),
    /// The filter as typed so far, and the filter overlay if it stays open.
    Filter(String, Option<Overlay>),
    /// A form submitted, for the view that opened it.
    Submit(Form),
    /// A confirmation given, with the asking view's tag.
    Confirmed(Ask),
    /// An unknown certificate trusted, once or for good.
    Trusted {
        fingerprint: Fingerprint,
        once: bool,
    },
    /// An unknown certificate refused.
    Refused,
}

impl Overlay {
    /// Handles one key.
    pub fn on_key(self, key: KeyEvent, host: &dyn Host) -> Outcome {
        let code = key.code;
        match self {
            Overlay::Help { scroll } => match code {
                KeyCode::Down | KeyCode::Char('j') => {
                    let last =
                        u16::try_from(host.help_lines().len().saturating_sub(1)).unwrap_or(0);
                    Outcome::Keep(Overlay::Help {
                        scroll: (scroll + 1).min(last),
                    })
                }
                KeyCode::Up | KeyCode::Char('k') => Outcome::Keep(Overlay::Help {
                    scroll: scroll.saturating_sub(1),
                }),
                _ => Outcome::Close,
            },
            Overlay::Palette { mut input } => match code {
                KeyCode::Esc => Outcome::Close,
                KeyCode::Enter => Outcome::Command(input),
                KeyCode::Tab => {
                    if let Some(first) = host.palette_matches(&input).first() {
                        input = first.name.to_owned();
                    }
                    Outcome::Keep(Overlay::Palette { input })
                }
                KeyCode::Backspace => {
                    input.pop();
                    Outcome::Keep(Overlay::Palette { input })
                }
                KeyCode::Char(c) => {
                    input.push(c);
                    Outcome::Keep(Overlay::Palette { input })
                }
                _ => Outcome::Keep(Overlay::Palette { input }),
            },
            Overlay::Filter { mut input, before } => {
                let keep = match code {
                    KeyCode::Esc => {
                        input.clear();
                        false
                    }
                    KeyCode::Enter => false,
                    KeyCode::Backspace => {
                        input.pop();
                        true
                    }
                    KeyCode::Char(c) => {
                        input.push(c);
                        true
                    }
                    _ => true,
                };
                let open = keep.then(|| Overlay::Filter {
                    input: input.clone(),
                    before,
                });
                Outcome::Filter(input, open)
            }
            Overlay::Form(mut form) => match form.handle_key(key) {
                FormOutcome::Editing => Outcome::Keep(Overlay::Form(form)),
                FormOutcome::Cancel => Outcome::Close,
                FormOutcome::Submit => Outcome::Submit(form),
            },
            Overlay::Confirm(confirm) => match code {
                KeyCode::Char('y' | 'Y') => Outcome::Confirmed(confirm.tag),
                KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => Outcome::Declined,
                _ => Outcome::Keep(Overlay::Confirm(confirm)),
            },
            Overlay::Trust { url, fingerprint } => match code {
                KeyCode::Char(c @ ('o' | 'a')) => Outcome::Trusted {
                    fingerprint,
                    once: c == 'o',
                },
                KeyCode::Char('r' | 'n' | 'q') | KeyCode::Esc => Outcome::Refused,
                _ => Outcome::Keep(Overlay::Trust { url, fingerprint }),
            },
            Overlay::Detail { title, lines } => match code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => Outcome::Close,
                _ => Outcome::Keep(Overlay::Detail { title, lines }),
            },
        }
    }

    /// Draws the overlay over the frame.
    pub fn render(&self, frame: &mut Frame, host: &dyn Host) {
        let theme = host.theme();
        let area = frame.area();
        let boxed = |title: String| {
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(format!(" {title} "), theme.title()))
        };
        match self {
            Overlay::Filter { .. } => {}
            Overlay::Palette { input } => {
                let matches = host.palette_matches(input);
                // Columns as wide as their longest entry, so names, aliases and text never touch.
                let name_width = views::VIEWS.iter().map(|s| s.name.len()).max().unwrap_or(0) + 2;
                let alias_width = views::VIEWS
                    .iter()
                    .map(|s| s.aliases.join(" ").len())
                    .max()
                    .unwrap_or(0)
                    + 2;
                let mut lines: Vec<Line> = matches
                    .iter()
                    .map(|spec| {
                        Line::from(vec![
                            Span::styled(format!("{:<name_width$}", spec.name), theme.key()),
                            Span::styled(
                                format!("{:<alias_width$}", spec.aliases.join(" ")),
                                theme.dim(),
                            ),
                            Span::raw(spec.about),
                        ])
                    })
                    .collect();
                if lines.is_empty() {
                    lines.push(Line::styled("no such view", theme.dim()));
                }
                let height = u16::try_from(lines.len()).unwrap_or(0) + 2;
                let width = area.width.saturating_sub(4).min(96);
                let target = Rect {
                    x: area.x + 2,
                    y: area.bottom().saturating_sub(height + 2),
                    width,
                    height: height.min(area.height.saturating_sub(2)),
                };
                frame.render_widget(Clear, target);
                frame.render_widget(Paragraph::new(lines).block(boxed("Views".into())), target);
            }
            Overlay::Help { scroll } => {
                let lines: Vec<Line> = host
                    .help_lines()
                    .into_iter()
                    .map(|(keys, help)| {
                        Line::from(vec![
                            Span::styled(format!("{keys:<16}"), theme.key()),
                            Span::raw(help),
                        ])
                    })
                    .collect();
                let height = u16::try_from(lines.len())
                    .unwrap_or(u16::MAX)
                    .saturating_add(2);
                let target = centered(area, area.width.saturating_sub(4).min(72), height);
                frame.render_widget(Clear, target);
                let title = format!("Keys of {} (Esc closes, j/k scroll)", host.view_name());
                frame.render_widget(
                    Paragraph::new(lines)
                        .block(boxed(title))
                        .scroll((*scroll, 0)),
                    target,
                );
            }
            Overlay::Form(form) => {
                let width = area.width.saturating_sub(4).min(72);
                form.render(frame, centered(area, width, form.height(width)), theme);
            }
            Overlay::Confirm(confirm) => {
                // A question of several lines (a preview of changes) gets a wider box.
                let several = confirm.question.contains('\n');
                let width = area
                    .width
                    .saturating_sub(4)
                    .min(if several { 96 } else { 64 });
                let inner = usize::from(width.saturating_sub(2)).max(1);
                let mut lines: Vec<Line> = confirm.question.lines().map(Line::raw).collect();
                let rows: usize = confirm
                    .question
                    .lines()
                    .map(|l| {
                        unicode_width::UnicodeWidthStr::width(l)
                            .div_ceil(inner)
                            .max(1)
                    })
                    .sum();
                lines.push(Line::default());
                lines.push(Line::from(vec![
                    Span::styled("<y>", theme.key()),
                    Span::raw(format!(" {}    ", confirm.yes)),
                    Span::styled("<n>", theme.key()),
                    Span::raw(" cancel"),
                ]));
                let height = u16::try_from(rows + 4).unwrap_or(u16::MAX).max(8);
                let target = centered(area, width, height);
                frame.render_widget(Clear, target);
                frame.render_widget(
                    Paragraph::new(lines)
                        .block(boxed(confirm.title.clone()))
                        .wrap(Wrap { trim: false }),
                    target,
                );
            }
            Overlay::Trust { url, fingerprint } => {
                let lines = vec![
                    Line::raw(format!(
                        "The server at {url} presents a certificate with fingerprint"
                    )),
                    Line::default(),
                    Line::styled(format!("  {fingerprint}"), theme.key()),
                    Line::default(),
                    Line::raw(
                        "Compare it with what `plantwatch-server fingerprint` prints on the server.",
                    ),
                    Line::default(),
                    Line::from(vec![
                        Span::styled("<o>", theme.key()),
                        Span::raw(" trust once  "),
                        Span::styled("<a>", theme.key()),
                        Span::raw(" trust always (save)  "),
                        Span::styled("<r>", theme.key()),
                        Span::raw(" refuse"),
                    ]),
                ];
                // Nothing of the form behind may show: the question is all there is to answer.
                let body = Rect {
                    y: area.y + 1,
                    height: area.height.saturating_sub(2),
                    ..area
                };
                frame.render_widget(Clear, body);
                let target = centered(body, area.width.saturating_sub(2).min(78), 12);
                frame.render_widget(
                    Paragraph::new(lines)
                        .block(boxed("Unknown server certificate".into()))
                        .wrap(Wrap { trim: false }),
                    target,
                );
            }
            Overlay::Detail { title, lines } => {
                // Labels in a column wide enough for the longest, always a space before the value
                // (`auth_password` must not run into the pass phrase).
                let width = lines
                    .iter()
                    .map(|(label, _)| label.chars().count() + 1)
                    .max()
                    .unwrap_or(0)
                    .max(12);
                let mut text: Vec<Line> = Vec::new();
                let mut plain: Vec<String> = Vec::new();
                for (label, value) in lines {
                    for (index, part) in value.lines().enumerate() {
                        let label = if index == 0 { label.as_str() } else { "" };
                        let label = format!("{label:<width$}");
                        plain.push(format!("{label}{part}"));
                        text.push(Line::from(vec![
                            Span::styled(label, theme.dim()),
                            Span::raw(part.to_owned()),
                        ]));
                    }
                }
                // As wide as the longest line wants (up to 110 columns), as high as the lines
                // take once wrapped: a long detail never pushes the last lines out of the box.
                let widest = plain.iter().map(|l| l.chars().count()).max().unwrap_or(0);
                let box_width = area
                    .width
                    .saturating_sub(4)
                    .min(u16::try_from(widest + 2).unwrap_or(u16::MAX).clamp(72, 110));
                let inner = usize::from(box_width.saturating_sub(2)).max(1);
                let rows: usize = plain.iter().map(|l| wrapped_rows(l, inner)).sum();
                let height = u16::try_from(rows).unwrap_or(u16::MAX).saturating_add(2);
                let target = centered(area, box_width, height);
                frame.render_widget(Clear, target);
                frame.render_widget(
                    Paragraph::new(text)
                        .block(boxed(format!("{title} (Esc closes)")))
                        .wrap(Wrap { trim: false }),
                    target,
                );
            }
        }
    }
}

/// How many rows `line` takes when wrapped at word boundaries into `width` columns (words longer
/// than the width broken), as a wrapping paragraph lays it out.
fn wrapped_rows(line: &str, width: usize) -> usize {
    let mut rows = 1;
    let mut used = 0;
    for word in line.split(' ') {
        let len = word.chars().count();
        let needed = if used == 0 { len } else { used + 1 + len };
        if needed <= width {
            used = needed;
        } else if len <= width {
            rows += 1;
            used = len;
        } else {
            // A word longer than a row: it starts a row and runs over as many as it needs.
            rows += usize::from(used > 0) + (len - 1) / width;
            used = (len - 1) % width + 1;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::KeyModifiers;

    use super::*;

    struct NoConsole;

    impl Host for NoConsole {
        fn theme(&self) -> Theme {
            Theme::for_no_color(None)
        }
        fn help_lines(&self) -> Vec<(String, String)> {
            vec![("q".into(), "quit".into()), ("?".into(), "help".into())]
        }
        fn palette_matches(&self, prefix: &str) -> Vec<&'static ViewSpec> {
            views::VIEWS
                .iter()
                .filter(|s| s.name.starts_with(prefix))
                .collect()
        }
        fn view_name(&self) -> &'static str {
            "nodes"
        }
    }

    fn press(overlay: Overlay, code: KeyCode) -> Outcome {
        overlay.on_key(KeyEvent::new(code, KeyModifiers::NONE), &NoConsole)
    }

    #[test]
    fn wrapped_rows_counts_rows_as_a_word_wrap_lays_them_out() {
        assert_eq!(wrapped_rows("", 10), 1);
        assert_eq!(wrapped_rows("one two", 10), 1);
        assert_eq!(wrapped_rows("one two three", 10), 2);
        // A fingerprint longer than the row runs over three rows after its label's row.
        assert_eq!(wrapped_rows(&format!("TLS {}", "A".repeat(25)), 10), 4);
    }

    #[test]
    fn overlays_say_what_the_user_chose() {
        let confirm = || {
            Overlay::Confirm(Confirm {
                title: "Delete".into(),
                question: "Delete n1?".into(),
                yes: "delete",
                tag: Ask("DELETE"),
            })
        };
        assert!(matches!(
            press(confirm(), KeyCode::Char('y')),
            Outcome::Confirmed(Ask("DELETE"))
        ));
        assert!(matches!(press(confirm(), KeyCode::Esc), Outcome::Declined));
        assert!(matches!(
            press(confirm(), KeyCode::Char('x')),
            Outcome::Keep(_)
        ));
        let palette = Overlay::Palette {
            input: "cred".into(),
        };
        let Outcome::Keep(completed) = press(palette, KeyCode::Tab) else {
            panic!("Tab keeps the palette open");
        };
        assert!(
            matches!(press(completed, KeyCode::Enter), Outcome::Command(c) if c == "credentials")
        );
        let filter = Overlay::Filter {
            input: "hall".into(),
            before: String::new(),
        };
        assert!(
            matches!(press(filter.clone(), KeyCode::Char('b')), Outcome::Filter(f, Some(_)) if f == "hallb")
        );
        assert!(matches!(press(filter, KeyCode::Esc), Outcome::Filter(f, None) if f.is_empty()));
        let help = Overlay::Help { scroll: 1 };
        assert!(
            matches!(
                press(help, KeyCode::Down),
                Outcome::Keep(Overlay::Help { scroll: 1 })
            ),
            "no scrolling past the last line"
        );
    }
}
