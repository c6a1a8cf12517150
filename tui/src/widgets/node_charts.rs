//! A node's charts screen, in three panes: the panels (ping, CPU, memory, traffic, disks or the
//! device's own values, and a scrollable interface table), every series the node has (grouped by
//! measurement, with its latest value, unit and a sparkline), and one chart picked from either
//! (time and value axes, legend, thresholds, a cursor). The window can be zoomed and scrolled in
//! time in every pane, and the picked chart exported as SVG and PNG.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use plantwatch_shared::api::{
    Aggregation, AlertRule, MetricQuery, MetricSeries, MetricsAnswer, Node, SeriesKind,
};
use plantwatch_shared::metric_names::unit_of;
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::charts::{
    InterfaceRow, RANGES, bits, cpu, disks, halves, interfaces, line_chart, loss, memory, oper,
    other_series, rtt, series_label, short, traffic,
};
use super::picture::{self, Format, file_name};
use super::plot::{Pick, Plot, clock, natural, opposite, sparkline, with_unit};
use super::table::{Column, DataTable, caseless};
use crate::keymap::{Action, Binding, Key};
use crate::theme::Theme;
use crate::views::Navigate;

/// The shortest window zoom reaches.
const MIN_SPAN: i64 = 600;
/// About how many steps a window is read in: a full-width braille chart's dots.
const STEPS: i64 = 200;

/// Which pane the screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Panels,
    Series,
}

/// A row of the series list.
#[derive(Debug, Clone)]
pub struct SeriesRow {
    pub metric: String,
    pub tags: BTreeMap<String, String>,
    pub last: Option<f64>,
    pub unit: &'static str,
    pub trend: String,
}

impl SeriesRow {
    fn measurement(&self) -> &str {
        self.metric.split('.').next().unwrap_or_default()
    }

    fn field(&self) -> &str {
        self.metric.split_once('.').map_or("", |(_, f)| f)
    }

    fn tags_cell(&self) -> String {
        self.tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn by_value(a: &Option<f64>, b: &Option<f64>) -> Ordering {
    a.unwrap_or(f64::NEG_INFINITY)
        .total_cmp(&b.unwrap_or(f64::NEG_INFINITY))
}

static SERIES_COLUMNS: [Column<SeriesRow>; 5] = [
    Column {
        title: "MEASUREMENT",
        sort_key: 'm',
        width: Constraint::Length(14),
        cell: |r| r.measurement().to_owned(),
        cmp: |a, b| {
            caseless(&a.metric, &b.metric).then_with(|| natural(&a.tags_cell(), &b.tags_cell()))
        },
    },
    Column {
        title: "FIELD",
        sort_key: 'f',
        width: Constraint::Length(20),
        cell: |r| r.field().to_owned(),
        cmp: |a, b| caseless(a.field(), b.field()),
    },
    Column {
        title: "TAGS",
        sort_key: 't',
        width: Constraint::Fill(1),
        cell: SeriesRow::tags_cell,
        cmp: |a, b| natural(&a.tags_cell(), &b.tags_cell()),
    },
    Column {
        title: "LAST",
        sort_key: 'l',
        width: Constraint::Length(12),
        cell: |r| r.last.map_or("-".to_owned(), |v| with_unit(v, r.unit)),
        cmp: |a, b| by_value(&a.last, &b.last),
    },
    Column {
        title: "TREND",
        sort_key: 'r',
        width: Constraint::Length(24),
        cell: |r| r.trend.clone(),
        cmp: |a, b| caseless(&a.trend, &b.trend),
    },
];

static INTERFACE_COLUMNS: [Column<InterfaceRow>; 4] = [
    Column {
        title: "INTERFACE",
        sort_key: 'i',
        width: Constraint::Min(6),
        cell: |r| r.name.clone(),
        cmp: |a, b| natural(&a.name, &b.name),
    },
    Column {
        title: "IN",
        sort_key: 'n',
        width: Constraint::Length(10),
        cell: |r| r.in_rate.map_or("-".into(), bits),
        cmp: |a, b| by_value(&a.in_rate, &b.in_rate),
    },
    Column {
        title: "OUT",
        sort_key: 'u',
        width: Constraint::Length(10),
        cell: |r| r.out_rate.map_or("-".into(), bits),
        cmp: |a, b| by_value(&a.out_rate, &b.out_rate),
    },
    Column {
        title: "OPER",
        sort_key: 'o',
        width: Constraint::Length(5),
        cell: |r| oper(r.oper_status).to_owned(),
        cmp: |a, b| by_value(&a.oper_status, &b.oper_status),
    },
];

/// The series list's rows: every series, grouped by measurement, tags in natural order.
pub fn series_rows(items: &[MetricSeries]) -> Vec<SeriesRow> {
    let mut rows: Vec<SeriesRow> = items
        .iter()
        .map(|s| {
            let counter = s.kind == SeriesKind::Counter;
            SeriesRow {
                metric: s.metric.clone(),
                tags: s.tags.clone(),
                last: s.points.last().map(|p| p.1),
                unit: unit_of(&s.metric, counter),
                trend: sparkline(&s.points, 24),
            }
        })
        .collect();
    rows.sort_by(|a, b| (SERIES_COLUMNS[0].cmp)(a, b));
    rows
}

/// What the nodes view does after the screen took an action.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Nothing more.
    Done,
    /// The window changed: load the metrics again.
    Reload,
    /// Close the screen.
    Close,
    /// Say this in the status line.
    Info(String),
}

/// A node's charts.
pub struct NodeCharts {
    pub node: Node,
    /// Index into [`RANGES`] of the range last chosen.
    pub range: usize,
    /// The window's length (seconds): the range's, halved and doubled by zoom.
    pub span: i64,
    /// How long before now the window ends: scrolled back in time.
    pub end_ago: i64,
    /// Counts changes of the window: a reply for an older one is dropped.
    pub generation: usize,
    pub answer: Option<MetricsAnswer>,
    /// The alert rules, for the thresholds a chart draws.
    pub rules: Vec<AlertRule>,
    pub pane: Pane,
    pub series: DataTable<SeriesRow>,
    pub interfaces: DataTable<InterfaceRow>,
    /// The chart picked, shown over the pane.
    pub focus: Option<Pick>,
    /// Where the cursor stands in the picked chart (UNIX seconds).
    pub cursor: Option<i64>,
    /// Where `e` writes pictures: the working directory.
    pub export_dir: std::path::PathBuf,
}

impl NodeCharts {
    pub fn new(node: Node) -> NodeCharts {
        NodeCharts {
            node,
            range: 0,
            span: RANGES[0].1,
            end_ago: 0,
            generation: 0,
            answer: None,
            rules: Vec::new(),
            pane: Pane::Panels,
            series: DataTable::new(&SERIES_COLUMNS, |r| {
                format!("{} {}", r.metric, r.tags_cell())
            }),
            interfaces: DataTable::new(&INTERFACE_COLUMNS, |r| r.name.clone()),
            focus: None,
            cursor: None,
            export_dir: ".".into(),
        }
    }

    /// The queries for the window ending `end_ago` before `now` (UNIX seconds): every series
    /// of the node, or while a chart is picked its metrics alone (and their other direction).
    pub fn queries(&self, now: i64) -> Vec<MetricQuery> {
        let to = now - self.end_ago;
        let query = |metric: Option<String>| MetricQuery {
            metric,
            from: Some(to - self.span),
            to: Some(to),
            step: Some((self.span / STEPS).max(10)),
            agg: Some(Aggregation::Avg),
        };
        match &self.focus {
            None => vec![query(None)],
            Some(Pick::Top { metric }) => vec![query(Some(metric.clone()))],
            Some(Pick::One { metric, .. }) => std::iter::once(metric.clone())
                .chain(opposite(metric))
                .map(|m| query(Some(m)))
                .collect(),
        }
    }

    /// Takes the metrics of the current window.
    pub fn set_answer(&mut self, answer: MetricsAnswer) {
        self.series.set_rows(series_rows(&answer.items));
        self.interfaces.set_rows(interfaces(&answer.items));
        self.answer = Some(answer);
        if let Some(at) = self.cursor {
            // Keep the cursor inside the new window.
            let steps = self.plot().map(|p| p.steps()).unwrap_or_default();
            self.cursor = steps
                .iter()
                .rev()
                .find(|s| **s <= at)
                .or(steps.first())
                .copied();
        }
    }

    fn items(&self) -> &[MetricSeries] {
        self.answer.as_ref().map_or(&[], |a| &a.items)
    }

    fn window(&self) -> (i64, i64) {
        self.answer
            .as_ref()
            .map_or((0, self.span), |a| (a.from, a.to))
    }

    /// The picked chart, when one is.
    pub fn plot(&self) -> Option<Plot> {
        let pick = self.focus.as_ref()?;
        Some(Plot::of(
            pick,
            self.items(),
            &self.node,
            &self.rules,
            self.window(),
        ))
    }

    /// The list the navigation keys move in: the series, or the panels' interfaces; none while
    /// a chart is picked.
    pub fn navigate(&mut self) -> Option<&mut dyn Navigate> {
        match (&self.focus, self.pane) {
            (Some(_), _) => None,
            (None, Pane::Series) => Some(&mut self.series),
            (None, Pane::Panels) => Some(&mut self.interfaces),
        }
    }

    /// Writes the picked chart as SVG and PNG into the working directory.
    fn export(&self) -> Outcome {
        let Some(plot) = self.plot() else {
            return Outcome::Info("Pick a chart first: Enter on a series or an interface.".into());
        };
        let mut written = Vec::new();
        for format in [Format::Svg, Format::Png] {
            let path = self
                .export_dir
                .join(file_name(&self.node.name, &plot, format));
            let result = picture::render(&plot, &self.node.name, format)
                .and_then(|bytes| picture::write(&path, &bytes));
            match result {
                Ok(()) => written.push(path.display().to_string()),
                Err(error) => return Outcome::Info(format!("✘ {error:#}")),
            }
        }
        Outcome::Info(format!("✔ wrote {}", written.join(" and ")))
    }

    /// The screen's keys, for the pane it shows.
    pub fn bindings(&self) -> Vec<Binding> {
        let mut bindings = Vec::new();
        if self.focus.is_some() {
            bindings.extend([
                Binding::new(&[Key::new(KeyCode::Esc)], Action::Leave, "back to the list")
                    .footer("back"),
                Binding::new(&[Key::ch('m')], Action::Charts, "close the charts"),
                Binding::new(
                    &[Key::new(KeyCode::Left), Key::ch('h')],
                    Action::Cursor(-1),
                    "cursor one step earlier",
                )
                .footer("cursor"),
                Binding::new(
                    &[Key::new(KeyCode::Right), Key::ch('l')],
                    Action::Cursor(1),
                    "cursor one step later",
                ),
                Binding::new(
                    &[Key::ch('e')],
                    Action::Export,
                    "export the chart as SVG and PNG",
                )
                .footer("export"),
            ]);
        } else {
            bindings.extend([
                Binding::new(
                    &[Key::new(KeyCode::Esc), Key::ch('m')],
                    Action::Charts,
                    "close the charts",
                )
                .footer("close"),
                Binding::new(
                    &[Key::new(KeyCode::Tab)],
                    Action::NextPane,
                    "every series of the node, or the panels again",
                )
                .footer(if self.pane == Pane::Panels {
                    "all series"
                } else {
                    "panels"
                }),
                Binding::new(
                    &[Key::new(KeyCode::Enter)],
                    Action::Open,
                    "chart the series (an interface: in and out)",
                )
                .footer("chart"),
                Binding::new(
                    &[Key::ch('t')],
                    Action::TopOf,
                    "chart this metric of every series, the 8 highest",
                )
                .footer("top 8"),
            ]);
        }
        bindings.extend([
            Binding::new(
                &[Key::ch('+'), Key::ch('=')],
                Action::Zoom(1),
                "zoom in (half the window)",
            )
            .footer("zoom"),
            Binding::new(
                &[Key::ch('-')],
                Action::Zoom(-1),
                "zoom out (twice the window)",
            ),
            Binding::new(
                &[Key::ch('[')],
                Action::Scroll(-1),
                "earlier by half the window",
            )
            .footer("scroll"),
            Binding::new(
                &[Key::ch(']')],
                Action::Scroll(1),
                "later by half the window",
            ),
        ]);
        for (index, (label, _)) in RANGES.iter().enumerate() {
            let key = char::from(b'1' + index as u8);
            // The header lists the ranges with their keys: not repeated in the footer.
            bindings.push(Binding::new(
                &[Key::ch(key)],
                Action::Range(index),
                format!("last {label}"),
            ));
        }
        bindings
    }

    /// Handles one of the screen's actions.
    pub fn on_action(&mut self, action: Action) -> Outcome {
        match action {
            Action::Charts => Outcome::Close,
            Action::Leave => {
                self.focus = None;
                self.cursor = None;
                // Every series again (the picked chart read only its own).
                self.generation += 1;
                Outcome::Reload
            }
            Action::NextPane => {
                self.pane = match self.pane {
                    Pane::Panels => Pane::Series,
                    Pane::Series => Pane::Panels,
                };
                Outcome::Done
            }
            Action::Open | Action::TopOf => {
                let picked = match self.pane {
                    Pane::Series => self
                        .series
                        .selected()
                        .map(|r| (r.metric.clone(), r.tags.clone())),
                    Pane::Panels => self.interface_series(),
                };
                let Some((metric, tags)) = picked else {
                    return Outcome::Info(match self.pane {
                        Pane::Series => "No series selected.".into(),
                        Pane::Panels => "No interface selected: Tab lists every series.".into(),
                    });
                };
                self.focus = Some(if action == Action::TopOf {
                    Pick::Top { metric }
                } else {
                    Pick::One { metric, tags }
                });
                self.cursor = None;
                // Drawn at once from what is loaded, then read again whole: the picked metrics
                // alone, so no cap on a node's series cuts them.
                self.generation += 1;
                Outcome::Reload
            }
            Action::Cursor(delta) => {
                let steps = self.plot().map(|p| p.steps()).unwrap_or_default();
                let Some(last) = steps.last().copied() else {
                    return Outcome::Info("Nothing to read in this window.".into());
                };
                let at = self.cursor.unwrap_or(last);
                let index = steps
                    .iter()
                    .position(|s| *s >= at)
                    .unwrap_or(steps.len() - 1);
                let index = if self.cursor.is_none() {
                    index
                } else {
                    index
                        .saturating_add_signed(isize::from(delta))
                        .min(steps.len() - 1)
                };
                self.cursor = Some(steps[index]);
                Outcome::Done
            }
            Action::Zoom(direction) => {
                let longest = RANGES[RANGES.len() - 1].1;
                let span = if direction > 0 {
                    self.span / 2
                } else {
                    self.span * 2
                };
                self.set_window(span.clamp(MIN_SPAN, longest), self.end_ago)
            }
            Action::Scroll(direction) => {
                let end = self.end_ago - i64::from(direction) * self.span / 2;
                self.set_window(self.span, end.max(0))
            }
            Action::Range(index) => {
                self.range = index.min(RANGES.len() - 1);
                self.set_window(RANGES[self.range].1, 0)
            }
            Action::Export => self.export(),
            _ => Outcome::Done,
        }
    }

    fn set_window(&mut self, span: i64, end_ago: i64) -> Outcome {
        if (span, end_ago) == (self.span, self.end_ago) && self.answer.is_some() {
            return Outcome::Done;
        }
        self.span = span;
        self.end_ago = end_ago;
        self.generation += 1;
        self.answer = None;
        Outcome::Reload
    }

    /// The in-octets series of the interface under the cursor in the panels.
    fn interface_series(&self) -> Option<(String, BTreeMap<String, String>)> {
        let name = &self.interfaces.selected()?.name;
        self.items()
            .iter()
            .find(|s| {
                matches!(
                    s.metric.as_str(),
                    "interface.in_octets_total" | "net.rx_bytes_total"
                ) && [
                    s.tags.get("ifName"),
                    s.tags.get("interface"),
                    s.tags.get("ifIndex"),
                ]
                .into_iter()
                .flatten()
                .next()
                    == Some(name)
            })
            .map(|s| (s.metric.clone(), s.tags.clone()))
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let title = format!(" {} · {} ", self.node.name, self.node.address);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, theme.title()));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [header, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
        frame.render_widget(Paragraph::new(self.header(theme)), header);
        if let Some(plot) = self.plot() {
            plot.render(frame, body, self.cursor, theme);
            return;
        }
        match self.pane {
            Pane::Panels => self.render_panels(frame, body, theme),
            Pane::Series => self.series.render(
                frame,
                body,
                "Series",
                if self.answer.is_some() {
                    "This node has no series in this window."
                } else {
                    "Loading…"
                },
                theme,
            ),
        }
    }

    /// The ranges with their keys, the window and the ping loss.
    fn header(&self, theme: Theme) -> Line<'static> {
        let mut spans = vec![Span::styled("range ", theme.dim())];
        let custom = (self.span, self.end_ago) != (RANGES[self.range].1, 0);
        for (index, (label, _)) in RANGES.iter().enumerate() {
            let style = if index == self.range && !custom {
                theme.selected()
            } else {
                theme.dim()
            };
            spans.push(Span::styled(format!("{} {label}", index + 1), style));
            spans.push(Span::raw("  "));
        }
        if let Some(answer) = &self.answer {
            spans.push(Span::raw(format!(
                "{}  ",
                window_label(answer.from, answer.to)
            )));
        }
        let loss = loss(self.items()).map_or("-".to_owned(), |l| format!("{l:.0} %"));
        spans.push(Span::styled(format!("loss {loss}"), theme.dim()));
        if self.answer.is_none() {
            spans.push(Span::raw("  loading…"));
        }
        Line::from(spans)
    }

    fn render_panels(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let [top, middle, bottom] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ])
        .areas(area);
        let items = self.items();
        let (from, to) = self.window();
        let [top_left, top_right] = halves(top);
        let [middle_left, middle_right] = halves(middle);
        let [bottom_left, bottom_right] = halves(bottom);
        line_chart(
            frame,
            top_left,
            "ping RTT (ms)",
            &[("rtt", &rtt(items))],
            from,
            to,
            None,
            theme,
        );
        let (cpu, memory) = (cpu(items), memory(items));
        let others = other_series(items);
        if cpu.is_empty() && memory.is_empty() && !others.is_empty() {
            // A meter, a PLC, a UPS: its own values instead of CPU and memory.
            for (area, series) in [top_right, middle_left].into_iter().zip(&others) {
                let label = series_label(series);
                line_chart(
                    frame,
                    area,
                    &label,
                    &[("value", &series.points)],
                    from,
                    to,
                    None,
                    theme,
                );
            }
        } else {
            line_chart(
                frame,
                top_right,
                "CPU (%)",
                &[("cpu", &cpu)],
                from,
                to,
                Some(100.0),
                theme,
            );
            line_chart(
                frame,
                middle_left,
                "memory (%)",
                &[("memory", &memory)],
                from,
                to,
                Some(100.0),
                theme,
            );
        }
        let (rx, tx) = traffic(items);
        let rx_bits: Vec<(i64, f64)> = rx.iter().map(|(t, v)| (*t, v * 8.0 / 1e6)).collect();
        let tx_bits: Vec<(i64, f64)> = tx.iter().map(|(t, v)| (*t, v * 8.0 / 1e6)).collect();
        line_chart(
            frame,
            middle_right,
            "traffic (Mbit/s) in/out",
            &[("in", &rx_bits), ("out", &tx_bits)],
            from,
            to,
            None,
            theme,
        );
        let disk_lines: Vec<Line> = disks(items)
            .into_iter()
            .map(|(name, pct)| {
                let width = 10usize;
                let filled = ((pct / 100.0) * width as f64)
                    .round()
                    .clamp(0.0, width as f64) as usize;
                Line::from(vec![
                    Span::raw(format!("{:>5.1}% ", pct)),
                    Span::styled("█".repeat(filled), theme.title()),
                    Span::styled("░".repeat(width - filled), theme.dim()),
                    Span::raw(format!(" {name}")),
                ])
            })
            .collect();
        let (disk_block, disk_text) = if disk_lines.is_empty() && !others.is_empty() {
            // No file systems: the latest of the device's own values instead.
            let lines: Vec<Line> = others
                .iter()
                .map(|series| {
                    let mut value = series.points.last().map_or("-".into(), |(_, v)| short(*v));
                    if series.kind == SeriesKind::Counter {
                        value.push_str("/s"); // Counters come as rates.
                    }
                    Line::from(vec![
                        Span::raw(format!("{value:>10} ")),
                        Span::styled(series_label(series), theme.dim()),
                    ])
                })
                .collect();
            (
                Block::default().borders(Borders::ALL).title(" values "),
                Paragraph::new(lines),
            )
        } else if disk_lines.is_empty() {
            (
                Block::default().borders(Borders::ALL).title(" disks "),
                Paragraph::new(Line::styled("no file system reported", theme.dim())),
            )
        } else {
            (
                Block::default().borders(Borders::ALL).title(" disks "),
                Paragraph::new(disk_lines),
            )
        };
        frame.render_widget(disk_text.block(disk_block), bottom_left);
        self.interfaces.render(
            frame,
            bottom_right,
            "Interfaces",
            "no interface reported",
            theme,
        );
    }
}

/// `11-29 15:00–16:00 UTC`, or with both days when the window spans more than one.
fn window_label(from: i64, to: i64) -> String {
    let (start, end) = (clock(from), clock(to));
    match (start.split_once(' '), end.split_once(' ')) {
        (Some((day, _)), Some((end_day, end_time))) if day == end_day => {
            format!("{start}–{end_time} UTC")
        }
        _ => format!("{start} – {end} UTC"),
    }
}
