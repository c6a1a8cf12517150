//! Maintenance windows: when an occurrence is under way, and which nodes it covers.
//!
//! A recurring window repeats its first occurrence weekly or monthly on the wall clock of the
//! server's time zone, so "Sunday 02:00–04:00" stays at 02:00 across a change of daylight
//! saving time.

use std::collections::{HashMap, HashSet};

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};
use plantwatch_shared::api::{MaintenanceScope, Recurrence};

use super::rules::NodeFacts;

/// A window as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    pub id: i64,
    pub name: String,
    pub scope: MaintenanceScope,
    pub target: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub recurrence: Recurrence,
    pub ended_at: Option<i64>,
    pub created_by: Option<String>,
}

/// The time zone named in the configuration (`""`: the system's).
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() {
        return Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC));
    }
    TimeZone::get(name).map_err(|e| format!("unknown time zone '{name}': {e}"))
}

/// The occurrence of `window` under way at `now`, else the next one: (start, end) in UNIX
/// seconds; `None` once the window is over.
pub fn occurrence(window: &WindowRow, now: i64, tz: &TimeZone) -> Option<(i64, i64)> {
    let duration = window.ends_at - window.starts_at;
    if let Some(ended) = window.ended_at
        && ended <= now
    {
        return None;
    }
    let clip = |(start, end): (i64, i64)| {
        let end = window.ended_at.map_or(end, |ended| end.min(ended));
        (end > start).then_some((start, end))
    };
    if window.recurrence == Recurrence::None || now < window.ends_at {
        return (now < window.ends_at)
            .then_some((window.starts_at, window.ends_at))
            .and_then(clip);
    }
    let first = Timestamp::from_second(window.starts_at)
        .ok()?
        .to_zoned(tz.clone());
    // Start the search near now instead of stepping from the first occurrence.
    let elapsed = now - window.starts_at;
    let estimate = match window.recurrence {
        Recurrence::Weekly => elapsed / (7 * 86_400),
        _ => elapsed / (31 * 86_400),
    };
    let mut k = (estimate - 1).max(0);
    loop {
        let start = nth(&first, window.recurrence, k)?;
        let end = start + duration;
        if now < end {
            return clip((start, end));
        }
        k += 1;
        if k > estimate + 64 {
            return None;
        }
    }
}

/// Start of the `k`-th occurrence after `first` (UNIX seconds).
fn nth(first: &Zoned, recurrence: Recurrence, k: i64) -> Option<i64> {
    let span = match recurrence {
        Recurrence::Weekly => Span::new().try_weeks(k).ok()?,
        Recurrence::Monthly => Span::new().try_months(k).ok()?,
        Recurrence::None => Span::new(),
    };
    first
        .checked_add(span)
        .ok()
        .map(|z| z.timestamp().as_second())
}

/// Whether an occurrence of `window` is under way at `now`.
pub fn is_active(window: &WindowRow, now: i64, tz: &TimeZone) -> bool {
    occurrence(window, now, tz).is_some_and(|(start, _)| start <= now)
}

/// Nodes and collectors in maintenance now, each with the name of a window covering it.
#[derive(Debug, Default)]
pub struct InMaintenance {
    pub nodes: HashMap<i64, String>,
    pub collectors: HashMap<i64, String>,
}

/// Resolves the active windows to the nodes and collectors they cover.
pub fn covered(
    windows: &[WindowRow],
    nodes: &[NodeFacts],
    collectors_by_name: &HashMap<String, i64>,
    now: i64,
    tz: &TimeZone,
) -> InMaintenance {
    let mut out = InMaintenance::default();
    for window in windows.iter().filter(|w| is_active(w, now, tz)) {
        let collector = (window.scope == MaintenanceScope::Collector)
            .then(|| {
                collectors_by_name
                    .get(&window.target.to_lowercase())
                    .copied()
            })
            .flatten();
        if let Some(id) = collector {
            out.collectors
                .entry(id)
                .or_insert_with(|| window.name.clone());
        }
        let targets: HashSet<i64> = nodes
            .iter()
            .filter(|node| match window.scope {
                MaintenanceScope::Node => node.name.eq_ignore_ascii_case(&window.target),
                MaintenanceScope::Tag => node.tags.iter().any(|t| t == &window.target),
                MaintenanceScope::Collector => {
                    collector.is_some() && node.collector_id == collector
                }
            })
            .map(|node| node.id)
            .collect();
        for id in targets {
            out.nodes.entry(id).or_insert_with(|| window.name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, tz: &TimeZone) -> i64 {
        let civil: jiff::civil::DateTime = text.parse().unwrap();
        civil.to_zoned(tz.clone()).unwrap().timestamp().as_second()
    }

    fn window(starts: i64, ends: i64, recurrence: Recurrence) -> WindowRow {
        WindowRow {
            id: 1,
            name: "patching".into(),
            scope: MaintenanceScope::Tag,
            target: "line-1".into(),
            starts_at: starts,
            ends_at: ends,
            recurrence,
            ended_at: None,
            created_by: None,
        }
    }

    #[test]
    fn a_one_off_window_is_active_only_between_its_times() {
        let w = window(1_000, 2_000, Recurrence::None);
        let tz = TimeZone::UTC;
        assert!(!is_active(&w, 999, &tz));
        assert!(is_active(&w, 1_000, &tz));
        assert!(is_active(&w, 1_999, &tz));
        assert!(!is_active(&w, 2_000, &tz));
        assert_eq!(occurrence(&w, 500, &tz), Some((1_000, 2_000)));
        assert_eq!(occurrence(&w, 2_000, &tz), None);
    }

    #[test]
    fn a_weekly_window_keeps_its_wall_clock_time_across_daylight_saving() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        // Sundays 02:30-03:30 local, first on 2026-03-22 (CET); DST starts 2026-03-29.
        let w = window(
            at("2026-03-22T01:30", &tz),
            at("2026-03-22T02:30", &tz),
            Recurrence::Weekly,
        );
        let april = at("2026-04-05T01:45", &tz);
        assert!(is_active(&w, april, &tz));
        assert!(!is_active(&w, at("2026-04-05T02:45", &tz), &tz));
        assert!(!is_active(&w, at("2026-04-06T01:45", &tz), &tz));
        let (start, _) = occurrence(&w, at("2026-04-07T00:00", &tz), &tz).unwrap();
        assert_eq!(start, at("2026-04-12T01:30", &tz));
    }

    #[test]
    fn a_monthly_window_repeats_on_its_day_and_ending_it_stops_it() {
        let tz = TimeZone::UTC;
        let mut w = window(
            at("2026-01-15T22:00", &tz),
            at("2026-01-16T02:00", &tz),
            Recurrence::Monthly,
        );
        assert!(is_active(&w, at("2026-06-15T23:00", &tz), &tz));
        assert!(is_active(&w, at("2026-06-16T01:59", &tz), &tz));
        assert!(!is_active(&w, at("2026-06-14T23:00", &tz), &tz));
        w.ended_at = Some(at("2026-06-15T23:30", &tz));
        assert!(!is_active(&w, at("2026-06-15T23:45", &tz), &tz));
        assert!(!is_active(&w, at("2026-07-15T23:00", &tz), &tz));
    }

    #[test]
    fn windows_cover_nodes_by_name_tag_and_collector() {
        let node = |id, name: &str, tag: &str, collector| NodeFacts {
            id,
            name: name.into(),
            tags: vec![tag.into()],
            collector_id: collector,
            ..NodeFacts::default()
        };
        let nodes = vec![
            node(1, "plc-1", "line-1", Some(7)),
            node(2, "plc-2", "line-2", Some(7)),
            node(3, "hmi-1", "line-2", None),
        ];
        let tz = TimeZone::UTC;
        let mut windows = vec![window(0, 100, Recurrence::None)];
        windows.push(WindowRow {
            id: 2,
            scope: MaintenanceScope::Node,
            target: "HMI-1".into(),
            ..windows[0].clone()
        });
        let collectors = HashMap::from([("site-a".to_owned(), 7)]);
        let covered_now = covered(&windows, &nodes, &collectors, 50, &tz);
        let mut ids: Vec<_> = covered_now.nodes.keys().copied().collect();
        ids.sort();
        assert_eq!(ids, vec![1, 3]);
        windows.push(WindowRow {
            id: 3,
            scope: MaintenanceScope::Collector,
            target: "Site-A".into(),
            ..windows[0].clone()
        });
        let covered_now = covered(&windows, &nodes, &collectors, 50, &tz);
        assert_eq!(covered_now.nodes.len(), 3);
        assert!(covered_now.collectors.contains_key(&7));
        assert!(
            covered(&windows, &nodes, &collectors, 100, &tz)
                .nodes
                .is_empty()
        );
    }
}
