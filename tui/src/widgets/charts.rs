//! What a node's panels show, picked from whatever the node reports: ping RTT and loss, CPU,
//! memory, traffic in/out (braille line charts), file systems' use, and one row per interface
//! with rates and operational status, from an agent's series (`cpu_total.usage_pct`, `net.*`)
//! or a template's over SNMP (`cpu.load_pct`, `interface.*`). The screen around them is
//! `node_charts`.

use std::collections::BTreeMap;

use plantwatch_shared::api::MetricSeries;
use plantwatch_shared::metric_names as m;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType};

use crate::theme::Theme;
use crate::widgets::plot::natural;

/// The ranges offered, with their keys 1–6 (30 days and a year read the rollups).
pub const RANGES: [(&str, i64); 6] = [
    ("1h", 3_600),
    ("6h", 21_600),
    ("24h", 86_400),
    ("7d", 604_800),
    ("30d", 2_592_000),
    ("1y", 31_536_000),
];

/// A row of the interface table.
#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceRow {
    pub name: String,
    /// Bytes per second, latest step.
    pub in_rate: Option<f64>,
    pub out_rate: Option<f64>,
    /// 1 up, 2 down, … (IF-MIB ifOperStatus), when known.
    pub oper_status: Option<f64>,
}

fn points_of<'a>(
    items: &'a [MetricSeries],
    metric: &str,
) -> impl Iterator<Item = &'a MetricSeries> {
    items.iter().filter(move |s| s.metric == metric)
}

/// Sums (or averages) several series step by step.
fn combine<'a>(series: impl Iterator<Item = &'a MetricSeries>, average: bool) -> Vec<(i64, f64)> {
    let mut steps: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
    for s in series {
        for (ts, v) in &s.points {
            let entry = steps.entry(*ts).or_default();
            entry.0 += v;
            entry.1 += 1;
        }
    }
    steps
        .into_iter()
        .map(|(ts, (sum, n))| (ts, if average { sum / n as f64 } else { sum }))
        .collect()
}

fn first(items: &[MetricSeries], metric: &str) -> Vec<(i64, f64)> {
    points_of(items, metric)
        .next()
        .map(|s| s.points.clone())
        .unwrap_or_default()
}

/// Measurements the fixed panels show, or that describe the polling rather than the device.
const PANEL_MEASUREMENTS: [&str; 12] = [
    m::PING,
    m::SNMP,
    m::CHECK,
    m::MODBUS_UP.measurement,
    "modbus_info",
    m::CPU_LOAD_PCT.measurement,
    m::CPU_TOTAL_USAGE_PCT.measurement,
    m::MEMORY_USED_PCT.measurement,
    "memory_storage",
    m::INTERFACE_OPER_STATUS.measurement,
    m::STORAGE_USED_PCT.measurement,
    "agent",
];

/// A series' name with its tags: `meter.voltage phase=L1`.
pub fn series_label(series: &MetricSeries) -> String {
    let mut label = series.metric.clone();
    for (key, value) in &series.tags {
        label.push_str(&format!(" {key}={value}"));
    }
    label
}

/// The device's own values that no panel shows (Modbus points, a template's scalars such as a
/// UPS's battery), by name and tags.
pub fn other_series(items: &[MetricSeries]) -> Vec<&MetricSeries> {
    let mut others: Vec<&MetricSeries> = items
        .iter()
        .filter(|s| {
            let measurement = s.metric.split('.').next().unwrap_or_default();
            !PANEL_MEASUREMENTS.contains(&measurement)
        })
        .collect();
    others.sort_by_key(|s| series_label(s));
    others
}

/// Ping round-trip time (ms).
pub fn rtt(items: &[MetricSeries]) -> Vec<(i64, f64)> {
    first(items, "ping.rtt_avg_ms")
}

/// Latest ping loss (%).
pub fn loss(items: &[MetricSeries]) -> Option<f64> {
    first(items, "ping.loss_pct").last().map(|(_, v)| *v)
}

/// CPU use (%): an agent's total, else the average of the processors a template polls, else
/// 100 − net-snmp's idle.
pub fn cpu(items: &[MetricSeries]) -> Vec<(i64, f64)> {
    let agent = first(items, "cpu_total.usage_pct");
    if !agent.is_empty() {
        return agent;
    }
    let per_cpu = combine(points_of(items, "cpu.load_pct"), true);
    if !per_cpu.is_empty() {
        return per_cpu;
    }
    first(items, "cpu_total.idle_pct")
        .into_iter()
        .map(|(ts, idle)| (ts, 100.0 - idle))
        .collect()
}

/// Memory in use (%): an agent's, else 100 − net-snmp's available share, else host
/// resources' "Physical memory".
pub fn memory(items: &[MetricSeries]) -> Vec<(i64, f64)> {
    let agent = first(items, "memory.used_pct");
    if !agent.is_empty() {
        return agent;
    }
    let available = first(items, "memory.available_pct");
    if !available.is_empty() {
        return available
            .into_iter()
            .map(|(ts, a)| (ts, 100.0 - a))
            .collect();
    }
    points_of(items, "memory_storage.used_pct")
        .chain(points_of(items, "storage.used_pct"))
        .find(|s| {
            s.tags
                .get("descr")
                .is_some_and(|d| d.to_lowercase().contains("physical memory"))
        })
        .map(|s| s.points.clone())
        .unwrap_or_default()
}

/// Latest use (%) of each file system: an agent's mounts or host resources' fixed disks.
pub fn disks(items: &[MetricSeries]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = points_of(items, "disk.used_pct")
        .filter_map(|s| Some((s.tags.get("mount")?.clone(), s.points.last()?.1)))
        .collect();
    out.extend(points_of(items, "storage.used_pct").filter_map(|s| {
        let descr = s.tags.get("descr")?;
        let lower = descr.to_lowercase();
        let memory = lower.contains("memory") || lower.contains("swap") || lower.contains("ram");
        (!memory).then(|| Some((descr.clone(), s.points.last()?.1)))?
    }));
    out
}

/// Points of a chart: (UNIX seconds, value).
pub type Points = Vec<(i64, f64)>;

/// Traffic of all interfaces together (bytes/s): (in, out).
pub fn traffic(items: &[MetricSeries]) -> (Points, Points) {
    let pick = |agent: &str, snmp: &str| {
        let agent = combine(points_of(items, agent), false);
        if agent.is_empty() {
            combine(points_of(items, snmp), false)
        } else {
            agent
        }
    };
    (
        pick("net.rx_bytes_total", "interface.in_octets_total"),
        pick("net.tx_bytes_total", "interface.out_octets_total"),
    )
}

/// One row per interface, in natural order of their names (Gi0/2 before Gi0/10).
pub fn interfaces(items: &[MetricSeries]) -> Vec<InterfaceRow> {
    let mut rows: BTreeMap<String, InterfaceRow> = BTreeMap::new();
    for s in items {
        let (name, field) = match s.metric.as_str() {
            "net.rx_bytes_total" | "net.tx_bytes_total" => {
                (s.tags.get("interface"), &s.metric[4..6])
            }
            "interface.in_octets_total" => (s.tags.get("ifName").or(s.tags.get("ifIndex")), "rx"),
            "interface.out_octets_total" => (s.tags.get("ifName").or(s.tags.get("ifIndex")), "tx"),
            "interface.oper_status" => (s.tags.get("ifName").or(s.tags.get("ifIndex")), "op"),
            _ => continue,
        };
        let Some(name) = name else { continue };
        let row = rows.entry(name.clone()).or_insert_with(|| InterfaceRow {
            name: name.clone(),
            in_rate: None,
            out_rate: None,
            oper_status: None,
        });
        let latest = s.points.last().map(|(_, v)| *v);
        match field {
            "rx" => row.in_rate = latest,
            "tx" => row.out_rate = latest,
            _ => row.oper_status = latest,
        }
    }
    let mut rows: Vec<_> = rows.into_values().collect();
    rows.sort_by(|a, b| natural(&a.name, &b.name));
    rows
}

/// `1.2 Mb/s` (bits) from bytes per second.
pub fn bits(bytes_per_second: f64) -> String {
    let bits = bytes_per_second * 8.0;
    let (value, unit) = if bits >= 1e9 {
        (bits / 1e9, "Gb/s")
    } else if bits >= 1e6 {
        (bits / 1e6, "Mb/s")
    } else if bits >= 1e3 {
        (bits / 1e3, "kb/s")
    } else {
        (bits, "b/s")
    };
    format!("{value:.1} {unit}")
}

pub fn oper(status: Option<f64>) -> &'static str {
    match status.map(|s| s as i64) {
        Some(1) => "up",
        Some(2) => "down",
        Some(3) => "testing",
        Some(5) => "dormant",
        Some(7) => "lower",
        Some(_) => "other",
        None => "-",
    }
}

pub fn halves(area: Rect) -> [Rect; 2] {
    Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area)
}

pub fn short(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A braille line chart of `series` over `[from, to]`; the y axis from 0 to `max` or the data's
/// top.
pub fn line_chart(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    series: &[(&str, &Vec<(i64, f64)>)],
    from: i64,
    to: i64,
    max: Option<f64>,
    theme: Theme,
) {
    let data: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, points)| {
            points
                .iter()
                .map(|(ts, v)| ((ts - from) as f64, *v))
                .collect()
        })
        .collect();
    let top = max.unwrap_or_else(|| {
        data.iter()
            .flatten()
            .map(|(_, v)| *v)
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.1
    });
    let latest = series
        .first()
        .and_then(|(_, p)| p.last())
        .map_or("-".to_owned(), |(_, v)| short(*v));
    let styles = [theme.title(), theme.ok()];
    let datasets: Vec<Dataset> = data
        .iter()
        .zip(series)
        .enumerate()
        .map(|(index, (points, (name, _)))| {
            Dataset::default()
                .name(*name)
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(styles.get(index).copied().unwrap_or_else(Style::default))
                .data(points)
        })
        .collect();
    let span = (to - from).max(1) as f64;
    let chart = Chart::new(datasets)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {title}: {latest} ")),
        )
        .x_axis(Axis::default().bounds([0.0, span]))
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels([Span::raw("0"), Span::raw(short(top))]),
        )
        .hidden_legend_constraints((Constraint::Ratio(0, 1), Constraint::Ratio(0, 1)));
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantwatch_shared::api::SeriesKind;

    fn series(metric: &str, tags: &[(&str, &str)], points: &[(i64, f64)]) -> MetricSeries {
        MetricSeries {
            metric: metric.into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            kind: SeriesKind::Gauge,
            points: points.to_vec(),
        }
    }

    #[test]
    fn snmp_series_become_cpu_memory_disks_and_interfaces() {
        let items = vec![
            series("cpu.load_pct", &[("cpu", "1")], &[(0, 10.0), (60, 30.0)]),
            series("cpu.load_pct", &[("cpu", "2")], &[(0, 30.0), (60, 50.0)]),
            series("memory.available_pct", &[], &[(0, 75.0)]),
            series("storage.used_pct", &[("descr", "/")], &[(0, 42.0)]),
            series(
                "storage.used_pct",
                &[("descr", "Physical memory")],
                &[(0, 60.0)],
            ),
            series(
                "interface.in_octets_total",
                &[("ifName", "eth0")],
                &[(0, 1_000.0)],
            ),
            series(
                "interface.out_octets_total",
                &[("ifName", "eth0")],
                &[(0, 500.0)],
            ),
            series("interface.oper_status", &[("ifName", "eth0")], &[(0, 1.0)]),
            series(
                "interface.in_octets_total",
                &[("ifName", "lo")],
                &[(0, 10.0)],
            ),
        ];
        assert_eq!(cpu(&items), vec![(0, 20.0), (60, 40.0)]);
        assert_eq!(memory(&items), vec![(0, 25.0)]);
        assert_eq!(disks(&items), vec![("/".to_owned(), 42.0)]);
        let rows = interfaces(&items);
        assert_eq!(rows[0].name, "eth0");
        assert_eq!(rows[0].oper_status, Some(1.0));
        assert_eq!(rows[1].name, "lo");
        let named = |names: &[&str]| -> Vec<MetricSeries> {
            names
                .iter()
                .map(|n| series("interface.in_octets_total", &[("ifName", n)], &[(0, 1.0)]))
                .collect()
        };
        let order: Vec<String> = interfaces(&named(&["Gi0/10", "Gi0/2", "Gi0/1"]))
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(order, ["Gi0/1", "Gi0/2", "Gi0/10"]);
        assert_eq!(traffic(&items).0, vec![(0, 1_010.0)]);
        assert_eq!(bits(1_500_000.0), "12.0 Mb/s");
    }

    #[test]
    fn agent_series_are_preferred() {
        let items = vec![
            series("cpu_total.usage_pct", &[], &[(0, 5.0)]),
            series("cpu_total.idle_pct", &[], &[(0, 99.0)]),
            series("memory.used_pct", &[], &[(0, 33.0)]),
            series("disk.used_pct", &[("mount", "/data")], &[(0, 80.0)]),
            series(
                "net.rx_bytes_total",
                &[("interface", "eth0")],
                &[(0, 100.0)],
            ),
            series("ping.loss_pct", &[], &[(0, 0.0), (10, 33.3)]),
        ];
        assert_eq!(cpu(&items), vec![(0, 5.0)]);
        assert_eq!(memory(&items), vec![(0, 33.0)]);
        assert_eq!(disks(&items), vec![("/data".to_owned(), 80.0)]);
        assert_eq!(interfaces(&items)[0].in_rate, Some(100.0));
        assert_eq!(loss(&items), Some(33.3));
    }
}
