//! One chart as data: its lines over a time window, its unit and the alert thresholds that apply
//! to it. The console draws it (time and value axes, legend, thresholds, a cursor) and
//! `picture` writes it as SVG or PNG, so the picture in a ticket is the chart on the screen.

use std::collections::BTreeMap;

use plantwatch_shared::api::{AlertRule, MetricSeries, Node, SeriesKind};
use plantwatch_shared::metric_names::unit_of;
use plantwatch_shared::rules::glob_matches;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Dataset, GraphType, LegendPosition, Paragraph,
};
use time::OffsetDateTime;

use crate::theme::Theme;

/// Most lines one chart draws: the highest by their latest value.
pub const TOP_N: usize = 8;

/// Points of a line: (UNIX seconds, value).
pub type Points = Vec<(i64, f64)>;

/// A chart: what the console shows and the export writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub title: String,
    /// The values' unit (`%`, `b/s`, `°C`), `""` when none is known.
    pub unit: &'static str,
    /// The window, UNIX seconds.
    pub from: i64,
    pub to: i64,
    pub lines: Vec<(String, Points)>,
    /// Thresholds of the rules that watch these series: `warning: cpu high` at 80.
    pub thresholds: Vec<(String, f64)>,
    /// How many series there were before the top N were kept.
    pub of: usize,
}

/// Which series a chart shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// One series, with its other direction when it has one (in with out).
    One {
        metric: String,
        tags: BTreeMap<String, String>,
    },
    /// Every series of a metric (every interface's in-rate), the [`TOP_N`] highest.
    Top { metric: String },
}

/// The metric of the other direction: in ↔ out, rx ↔ tx.
pub fn opposite(metric: &str) -> Option<String> {
    const PAIRS: [(&str, &str); 4] = [("in_", "out_"), ("rx_", "tx_"), ("in", "out"), ("rx", "tx")];
    let (measurement, field) = metric.split_once('.')?;
    PAIRS.iter().find_map(|(a, b)| {
        let other = if let Some(rest) = field.strip_prefix(a) {
            format!("{b}{rest}")
        } else {
            format!("{a}{}", field.strip_prefix(b)?)
        };
        Some(format!("{measurement}.{other}"))
    })
}

/// The series' tags as a short label: their values (`Gi0/1`, `L1`), or the metric when it has
/// none.
pub fn tags_label(series: &MetricSeries) -> String {
    if series.tags.is_empty() {
        return series.metric.clone();
    }
    // An interface is known by its name; its index only when it has none.
    let name = series.tags.get("ifName").or(series.tags.get("interface"));
    match name {
        Some(name) => name.clone(),
        None => series.tags.values().cloned().collect::<Vec<_>>().join(" "),
    }
}

/// The word for a metric's direction in a legend: `in`, `out`, else the field.
fn direction(metric: &str) -> String {
    let field = metric.split_once('.').map_or(metric, |(_, f)| f);
    for (prefix, word) in [("in", "in"), ("rx", "in"), ("out", "out"), ("tx", "out")] {
        if field.starts_with(prefix) {
            return word.to_owned();
        }
    }
    field.to_owned()
}

/// Byte counters are shown in bits per second, as network people read them.
fn scale(series: &MetricSeries) -> (f64, &'static str) {
    let unit = unit_of(&series.metric, series.kind == SeriesKind::Counter);
    if unit == "B/s" {
        (8.0, "b/s")
    } else {
        (1.0, unit)
    }
}

fn scaled(series: &MetricSeries, factor: f64) -> Points {
    series
        .points
        .iter()
        .map(|(t, v)| (*t, v * factor))
        .collect()
}

impl Plot {
    /// The chart of `pick` from a node's series over `[from, to]`, with the thresholds of the
    /// `rules` that watch them on `node`.
    pub fn of(
        pick: &Pick,
        items: &[MetricSeries],
        node: &Node,
        rules: &[AlertRule],
        (from, to): (i64, i64),
    ) -> Plot {
        let (metric, chosen): (&str, Vec<&MetricSeries>) = match pick {
            Pick::One { metric, tags } => {
                let other = opposite(metric);
                let chosen = items
                    .iter()
                    .filter(|s| {
                        (s.metric == *metric || Some(&s.metric) == other.as_ref())
                            && s.tags == *tags
                    })
                    .collect();
                (metric, chosen)
            }
            Pick::Top { metric } => (
                metric,
                items.iter().filter(|s| s.metric == *metric).collect(),
            ),
        };
        let of = chosen.len();
        let (factor, unit) = chosen
            .first()
            .map_or((1.0, unit_of(metric, false)), |s| scale(s));
        let mut lines: Vec<(String, Points)> = chosen
            .iter()
            .map(|s| {
                let label = match pick {
                    Pick::One { .. } if of > 1 => direction(&s.metric),
                    Pick::One { .. } => tags_label(s),
                    Pick::Top { .. } => tags_label(s),
                };
                (label, scaled(s, factor))
            })
            .collect();
        if matches!(pick, Pick::Top { .. }) {
            let latest = |points: &Points| points.last().map_or(f64::NEG_INFINITY, |p| p.1);
            lines.sort_by(|a, b| {
                latest(&b.1)
                    .total_cmp(&latest(&a.1))
                    .then_with(|| natural(&a.0, &b.0))
            });
            lines.truncate(TOP_N);
        }
        let title = match pick {
            Pick::One { tags, .. } if !tags.is_empty() => format!(
                "{metric} {}",
                chosen.first().map(|s| tags_label(s)).unwrap_or_default()
            ),
            Pick::One { .. } => metric.to_owned(),
            Pick::Top { .. } if of > TOP_N => format!("{metric}, top {TOP_N} of {of}"),
            Pick::Top { .. } => metric.to_owned(),
        };
        let thresholds = thresholds(rules, node, &chosen, factor);
        Plot {
            title,
            unit,
            from,
            to,
            lines,
            thresholds,
            of,
        }
    }

    /// Every step of every line, in order: where the cursor can stand.
    pub fn steps(&self) -> Vec<i64> {
        let mut steps: Vec<i64> = self
            .lines
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.0))
            .collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// Each line's value at `at` (the step at or just before it).
    pub fn values_at(&self, at: i64) -> Vec<(String, Option<f64>)> {
        self.lines
            .iter()
            .map(|(label, points)| {
                let value = points.iter().rev().find(|p| p.0 <= at).map(|p| p.1);
                (label.clone(), value)
            })
            .collect()
    }

    /// The top of the value axis: the data's or a threshold's highest, with headroom; 100 for a
    /// percentage that stays under it.
    pub fn top(&self) -> f64 {
        let highest = self
            .lines
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.1))
            .chain(self.thresholds.iter().map(|t| t.1))
            .fold(0.0, f64::max);
        if self.unit == "%" && highest <= 100.0 {
            return 100.0;
        }
        (highest * 1.1).max(1e-9)
    }

    /// Draws the chart with its axes, legend, thresholds and the cursor at `cursor`.
    pub fn render(&self, frame: &mut Frame, area: Rect, cursor: Option<i64>, theme: Theme) {
        let [legend_line, chart_area] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
        // The cursor's reading, or the latest values.
        let (at, words) = match cursor {
            Some(at) => (at, format!("at {} ", clock(at))),
            None => (self.to, "latest ".to_owned()),
        };
        let mut spans = vec![Span::styled(words, theme.dim())];
        for (index, (label, value)) in self.values_at(at).into_iter().enumerate() {
            spans.push(Span::styled(
                format!("{label} "),
                series_style(theme, index),
            ));
            spans.push(Span::raw(format!(
                "{}  ",
                value.map_or("-".to_owned(), |v| with_unit(v, self.unit))
            )));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), legend_line);

        let span = (self.to - self.from).max(1) as f64;
        let x = |ts: i64| (ts - self.from) as f64;
        let top = self.top();
        let data: Vec<Vec<(f64, f64)>> = self
            .lines
            .iter()
            .map(|(_, points)| points.iter().map(|(t, v)| (x(*t), *v)).collect())
            .collect();
        let threshold_data: Vec<[(f64, f64); 2]> = self
            .thresholds
            .iter()
            .map(|(_, value)| [(0.0, *value), (span, *value)])
            .collect();
        let cursor_data: Option<[(f64, f64); 2]> = cursor.map(|at| [(x(at), 0.0), (x(at), top)]);
        let mut datasets: Vec<Dataset> = data
            .iter()
            .zip(&self.lines)
            .enumerate()
            .map(|(index, (points, (label, _)))| {
                Dataset::default()
                    .name(label.clone())
                    .marker(marker(theme, index))
                    .graph_type(GraphType::Line)
                    .style(series_style(theme, index))
                    .data(points)
            })
            .collect();
        for (points, (label, value)) in threshold_data.iter().zip(&self.thresholds) {
            let style = if label.starts_with("critical") {
                theme.error()
            } else {
                theme.column_header()
            };
            datasets.push(
                Dataset::default()
                    .name(format!("{label} {}", with_unit(*value, self.unit)))
                    .marker(Marker::Dot)
                    .graph_type(GraphType::Line)
                    .style(style)
                    .data(points),
            );
        }
        if let Some(points) = &cursor_data {
            datasets.push(
                Dataset::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(theme.dim())
                    .data(points),
            );
        }
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.unit)
        };
        let x_labels: Vec<Span> = (0..=4)
            .map(|i| {
                Span::raw(tick(
                    self.from + (self.to - self.from) * i / 4,
                    self.to - self.from,
                ))
            })
            .collect();
        let y_labels: Vec<Span> = [0.0, top / 2.0, top]
            .into_iter()
            .map(|v| Span::raw(with_unit(v, self.unit)))
            .collect();
        let chart = Chart::new(datasets)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" {}{unit} ", self.title)),
            )
            .x_axis(
                Axis::default()
                    .title(Span::styled("UTC", theme.dim()))
                    .bounds([0.0, span])
                    .labels(x_labels),
            )
            .y_axis(Axis::default().bounds([0.0, top]).labels(y_labels))
            .legend_position(Some(LegendPosition::TopLeft))
            .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
        frame.render_widget(chart, chart_area);
    }
}

/// The thresholds of the enabled metric rules that watch any of `series` on `node`.
fn thresholds(
    rules: &[AlertRule],
    node: &Node,
    series: &[&MetricSeries],
    factor: f64,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for rule in rules {
        let spec = &rule.spec;
        let Some(metric) = spec.metric.as_deref() else {
            continue;
        };
        if !spec.enabled
            || spec.event.is_some()
            || !spec.scope.covers(
                spec.scope_value.as_deref(),
                &node.name,
                node.node_type.as_str(),
                &node.tags,
                node.template.as_deref(),
            )
        {
            continue;
        }
        let watches = series.iter().any(|s| {
            metric.split('|').any(|m| m == s.metric)
                && spec.tags.iter().all(|(key, pattern)| {
                    let (key, negated) = match key.strip_suffix('!') {
                        Some(key) => (key, true),
                        None => (key.as_str(), false),
                    };
                    let matched = s.tags.get(key).is_some_and(|v| glob_matches(pattern, v));
                    matched != negated
                })
        });
        if !watches {
            continue;
        }
        for (level, value) in [("warning", spec.warning), ("critical", spec.critical)] {
            if let Some(value) = value {
                let entry = (format!("{level}: {}", spec.name), value * factor);
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
    }
    out
}

/// `Gi0/2` before `Gi0/10`: digits compare as numbers, the rest without case.
pub fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (a.peek().copied(), b.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let number = |chars: &mut std::iter::Peekable<std::str::Chars>| {
                    let mut digits = String::new();
                    while let Some(c) = chars.next_if(char::is_ascii_digit) {
                        digits.push(c);
                    }
                    let trimmed = digits.trim_start_matches('0').to_owned();
                    (trimmed.len(), trimmed, digits.len())
                };
                let ordering = number(&mut a).cmp(&number(&mut b));
                if ordering.is_ne() {
                    return ordering;
                }
            }
            (Some(x), Some(y)) => {
                let ordering = x.to_lowercase().cmp(y.to_lowercase());
                if ordering.is_ne() {
                    return ordering;
                }
                a.next();
                b.next();
            }
        }
    }
}

/// `9.6 Mb/s`, `42.0 %`, `1.2 kB`: thousands get a prefix for rates, bytes, watts and hertz.
pub fn with_unit(value: f64, unit: &str) -> String {
    let prefixed = matches!(unit, "B" | "B/s" | "b/s" | "/s" | "W" | "Hz" | "");
    let (value, prefix) = if prefixed && value.abs() >= 1e9 {
        (value / 1e9, "G")
    } else if prefixed && value.abs() >= 1e6 {
        (value / 1e6, "M")
    } else if prefixed && value.abs() >= 1e4 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let number = if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    match (prefix, unit) {
        ("", "") => number,
        (prefix, "") => format!("{number}{prefix}"),
        (prefix, "/s") => format!("{number}{prefix}/s"),
        (prefix, unit) => format!("{number} {prefix}{unit}"),
    }
}

fn utc(ts: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ts).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `14:35`, for the cursor's reading.
pub fn clock(ts: i64) -> String {
    let at = utc(ts);
    format!(
        "{:02}-{:02} {:02}:{:02}",
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// A time-axis label fit for a window of `span` seconds: `14:35` within two days, `12-04`
/// beyond.
pub fn tick(ts: i64, span: i64) -> String {
    let at = utc(ts);
    if span <= 2 * 86_400 {
        format!("{:02}:{:02}", at.hour(), at.minute())
    } else {
        format!("{:02}-{:02}", at.month() as u8, at.day())
    }
}

const SERIES_COLORS: [Color; TOP_N] = [
    Color::Cyan,
    Color::LightGreen,
    Color::LightMagenta,
    Color::LightBlue,
    Color::Yellow,
    Color::LightRed,
    Color::White,
    Color::Green,
];

/// A line's colour; without colour every line is plain and told apart by its marker.
pub fn series_style(theme: Theme, index: usize) -> Style {
    if theme.color {
        Style::new().fg(SERIES_COLORS[index % SERIES_COLORS.len()])
    } else {
        Style::new()
    }
}

fn marker(theme: Theme, index: usize) -> Marker {
    // Dots are the thresholds'.
    const PLAIN: [Marker; 4] = [
        Marker::Braille,
        Marker::Block,
        Marker::Bar,
        Marker::HalfBlock,
    ];
    if theme.color {
        Marker::Braille
    } else {
        PLAIN[index % PLAIN.len()]
    }
}

/// A sparkline of the last `width` points: `▁▂▅▇`.
pub fn sparkline(points: &[(i64, f64)], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &points[points.len().saturating_sub(width)..];
    let (low, high) = tail
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    tail.iter()
        .map(|p| {
            if high - low < 1e-12 {
                BARS[0]
            } else {
                BARS[(((p.1 - low) / (high - low)) * 7.0).round() as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantwatch_shared::api::{Comparison, RuleScope, RuleSpec};

    fn series(metric: &str, name: &str, kind: SeriesKind, value: f64) -> MetricSeries {
        MetricSeries {
            metric: metric.into(),
            tags: BTreeMap::from([("ifName".to_owned(), name.to_owned())]),
            kind,
            points: vec![(0, value / 2.0), (60, value)],
        }
    }

    fn node() -> Node {
        serde_json::from_value(serde_json::json!({
            "id": 1, "name": "sw-1", "address": "10.0.0.1", "type": "network", "credentials": [],
            "tags": ["line-1"], "status": "healthy",
            "created_at": "2026-12-04T00:00:00Z", "updated_at": "2026-12-04T00:00:00Z"
        }))
        .expect("a node")
    }

    fn rule(name: &str, metric: &str, scope: RuleScope, value: &str, warning: f64) -> AlertRule {
        let spec = RuleSpec {
            name: name.into(),
            metric: Some(metric.into()),
            scope,
            scope_value: Some(value.into()),
            comparison: Comparison::Above,
            warning: Some(warning),
            ..serde_json::from_value(serde_json::json!({ "name": name })).expect("a spec")
        };
        AlertRule {
            id: 1,
            spec,
            builtin: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn one_interface_charts_in_and_out_in_bits_with_the_rules_that_watch_it() {
        let items = vec![
            series(
                "interface.in_octets_total",
                "Gi0/1",
                SeriesKind::Counter,
                1_000.0,
            ),
            series(
                "interface.out_octets_total",
                "Gi0/1",
                SeriesKind::Counter,
                500.0,
            ),
            series(
                "interface.in_octets_total",
                "Gi0/2",
                SeriesKind::Counter,
                9.0,
            ),
        ];
        let rules = vec![
            rule(
                "uplink busy",
                "interface.in_octets_total",
                RuleScope::Tag,
                "line-1",
                100.0,
            ),
            rule(
                "elsewhere",
                "interface.in_octets_total",
                RuleScope::Tag,
                "line-2",
                1.0,
            ),
        ];
        let pick = Pick::One {
            metric: "interface.in_octets_total".into(),
            tags: items[0].tags.clone(),
        };
        let plot = Plot::of(&pick, &items, &node(), &rules, (0, 60));
        assert_eq!(plot.unit, "b/s");
        assert_eq!(plot.title, "interface.in_octets_total Gi0/1");
        assert_eq!(
            plot.lines,
            vec![
                ("in".to_owned(), vec![(0, 4_000.0), (60, 8_000.0)]),
                ("out".to_owned(), vec![(0, 2_000.0), (60, 4_000.0)]),
            ]
        );
        assert_eq!(
            plot.thresholds,
            vec![("warning: uplink busy".to_owned(), 800.0)]
        );
        assert_eq!(plot.values_at(30)[0], ("in".to_owned(), Some(4_000.0)));
        assert_eq!(plot.steps(), vec![0, 60]);
    }

    #[test]
    fn top_keeps_the_highest_lines_in_natural_order_on_ties() {
        let items: Vec<MetricSeries> = (1..=12)
            .map(|i| {
                series(
                    "interface.in_octets_total",
                    &format!("Gi0/{i}"),
                    SeriesKind::Counter,
                    1.0,
                )
            })
            .collect();
        let plot = Plot::of(
            &Pick::Top {
                metric: "interface.in_octets_total".into(),
            },
            &items,
            &node(),
            &[],
            (0, 60),
        );
        assert_eq!(plot.lines.len(), TOP_N);
        assert_eq!(plot.of, 12);
        assert_eq!(plot.lines[1].0, "Gi0/2");
        assert_eq!(plot.lines[7].0, "Gi0/8");
        assert!(plot.title.ends_with("top 8 of 12"), "{}", plot.title);
    }

    #[test]
    fn names_sort_naturally_and_values_carry_units() {
        let mut names = vec!["Gi0/10", "Gi0/2", "gi0/1", "Te1/0/1", "Gi0/02"];
        names.sort_by(|a, b| natural(a, b));
        assert_eq!(names, ["gi0/1", "Gi0/2", "Gi0/02", "Gi0/10", "Te1/0/1"]);
        assert_eq!(with_unit(9_600_000.0, "b/s"), "9.60 Mb/s");
        assert_eq!(with_unit(42.0, "%"), "42.0 %");
        assert_eq!(with_unit(230.4, "V"), "230 V");
        assert_eq!(with_unit(12_000.0, ""), "12.0k");
        assert_eq!(sparkline(&[(0, 0.0), (1, 5.0), (2, 10.0)], 8), "▁▅█");
        assert_eq!(tick(3_600, 3_600), "01:00");
        assert_eq!(tick(86_400 * 3, 86_400 * 30), "01-04");
    }
}
