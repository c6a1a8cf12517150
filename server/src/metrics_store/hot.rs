//! The hot window: the latest value and the last minutes of every series, in memory, filled
//! by the writer after each commit. Live views and the alert evaluator read it instead of
//! scanning stored samples.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

use super::{Sample, SeriesIds, SeriesKey};

/// How much of each series is kept.
pub const HOT_WINDOW_MS: i64 = 15 * 60 * 1_000;
/// At most this many points per series (a 1 s interval over 15 minutes).
const MAX_POINTS: usize = 900;

/// Recent points of one series, oldest first.
#[derive(Debug, Clone, Default)]
pub struct HotSeries {
    pub series_id: i64,
    pub points: VecDeque<(i64, f64)>,
}

/// A node's series by their key (looked up without copying the key's strings).
type NodeSeries = FxHashMap<Arc<SeriesKey>, HotSeries>;

#[derive(Debug, Default)]
pub struct HotWindow {
    /// node id → its series.
    nodes: RwLock<FxHashMap<i64, NodeSeries>>,
}

impl HotWindow {
    /// Takes in committed samples; those older than `since_ms` (a backlog replayed after an
    /// outage) would fall out at once and are passed over.
    pub(crate) fn record(&self, samples: &[Sample], ids: &SeriesIds, since_ms: i64) {
        let Ok(mut nodes) = self.nodes.write() else {
            return;
        };
        for sample in samples.iter().filter(|s| s.ts_ms >= since_ms) {
            let key = &sample.key;
            let node = nodes.entry(key.node_id).or_default();
            if !node.contains_key(key.as_ref()) {
                let series = HotSeries {
                    series_id: ids.get(key).copied().unwrap_or_default(),
                    points: VecDeque::new(),
                };
                node.insert(key.clone(), series);
            }
            let Some(series) = node.get_mut(key.as_ref()) else {
                continue;
            };
            // Replayed samples arrive late: keep the points in time order.
            let at = series
                .points
                .iter()
                .rposition(|(ts, _)| *ts <= sample.ts_ms)
                .map_or(0, |p| p + 1);
            if at > 0 && series.points[at - 1].0 == sample.ts_ms {
                series.points[at - 1].1 = sample.value;
            } else {
                series.points.insert(at, (sample.ts_ms, sample.value));
            }
            let newest = series.points.back().map_or(0, |(ts, _)| *ts);
            while series
                .points
                .front()
                .is_some_and(|(ts, _)| newest - ts > HOT_WINDOW_MS)
                || series.points.len() > MAX_POINTS
            {
                series.points.pop_front();
            }
        }
    }

    /// Latest (timestamp ms, value) of the series `series_id` of `node_id`, if it has a point in
    /// the window.
    pub fn latest_of_series(&self, node_id: i64, series_id: i64) -> Option<(i64, f64)> {
        let nodes = self.nodes.read().ok()?;
        nodes
            .get(&node_id)?
            .values()
            .find(|s| s.series_id == series_id)?
            .points
            .back()
            .copied()
    }

    /// Latest (timestamp ms, value) of `metric` on `node_id`, over all its tag sets the newest.
    pub fn latest(&self, node_id: i64, metric: &str) -> Option<(i64, f64)> {
        let nodes = self.nodes.read().ok()?;
        nodes
            .get(&node_id)?
            .iter()
            .filter(|(key, _)| &*key.metric == metric)
            .filter_map(|(_, s)| s.points.back().copied())
            .max_by_key(|(ts, _)| *ts)
    }

    /// When the node's newest sample was taken (ms), whatever its metric.
    pub fn last_sample_at(&self, node_id: i64) -> Option<i64> {
        let nodes = self.nodes.read().ok()?;
        nodes
            .get(&node_id)?
            .values()
            .filter_map(|s| s.points.back().map(|(ts, _)| *ts))
            .max()
    }

    /// Every series of a node: (metric, tags, recent points).
    pub fn node(&self, node_id: i64) -> Vec<(String, String, HotSeries)> {
        let Ok(nodes) = self.nodes.read() else {
            return Vec::new();
        };
        let mut out: Vec<_> = nodes
            .get(&node_id)
            .map(|series| {
                series
                    .iter()
                    .map(|(key, s)| (key.metric.to_string(), key.tags.to_string(), s.clone()))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    /// Calls `visit` with every series (node id, key, points oldest first) under one read lock:
    /// the alert evaluator's single pass over everything recent.
    pub fn scan(&self, mut visit: impl FnMut(&SeriesKey, &VecDeque<(i64, f64)>)) {
        let Ok(nodes) = self.nodes.read() else {
            return;
        };
        for series in nodes.values() {
            for (key, hot) in series {
                visit(key, &hot.points);
            }
        }
    }

    /// Latest (timestamp ms, value) of one series.
    pub fn latest_of(&self, node_id: i64, metric: &str, tags: &str) -> Option<(i64, f64)> {
        let nodes = self.nodes.read().ok()?;
        let key = SeriesKey {
            node_id,
            metric: metric.into(),
            tags: tags.into(),
        };
        nodes.get(&node_id)?.get(&key)?.points.back().copied()
    }

    /// Whether any series of the node is held.
    pub fn has_node(&self, node_id: i64) -> bool {
        self.nodes
            .read()
            .map(|nodes| nodes.get(&node_id).is_some_and(|s| !s.is_empty()))
            .unwrap_or(false)
    }

    /// Forgets a deleted node.
    pub fn forget(&self, node_id: i64) {
        if let Ok(mut nodes) = self.nodes.write() {
            nodes.remove(&node_id);
        }
    }

    /// Releases the series that stopped arriving: those whose newest point is older than the
    /// window at `now_ms` (and nodes left without series). Returns how many were released.
    pub fn evict(&self, now_ms: i64) -> usize {
        let Ok(mut nodes) = self.nodes.write() else {
            return 0;
        };
        let mut released = 0;
        nodes.retain(|_, series| {
            let before = series.len();
            series.retain(|_, hot| {
                hot.points
                    .back()
                    .is_some_and(|(ts, _)| now_ms - ts <= HOT_WINDOW_MS)
            });
            released += before - series.len();
            if series.capacity() > 2 * series.len() + 16 {
                series.shrink_to_fit();
            }
            !series.is_empty()
        });
        nodes.shrink_to_fit();
        released
    }

    /// Whether no series is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Series held.
    pub fn len(&self) -> usize {
        self.nodes
            .read()
            .map(|nodes| nodes.values().map(|series| series.len()).sum())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_that_stopped_arriving_are_released() {
        let hot = HotWindow::default();
        let samples: Vec<Sample> = (0..1_000)
            .map(|i| Sample {
                key: Arc::new(SeriesKey {
                    node_id: i % 3,
                    metric: format!("junk.v{i}").into(),
                    tags: "".into(),
                }),
                ts_ms: 1_000,
                value: 1.0,
            })
            .collect();
        hot.record(&samples, &SeriesIds::default(), i64::MIN);
        let fresh = Sample {
            key: Arc::new(SeriesKey {
                node_id: 7,
                metric: "ping.up".into(),
                tags: "".into(),
            }),
            ts_ms: 1_000 + HOT_WINDOW_MS,
            value: 1.0,
        };
        hot.record(
            std::slice::from_ref(&fresh),
            &SeriesIds::default(),
            i64::MIN,
        );
        assert_eq!(hot.len(), 1_001);
        assert_eq!(hot.evict(1_000 + HOT_WINDOW_MS), 0, "all within the window");
        assert_eq!(hot.evict(1_001 + HOT_WINDOW_MS), 1_000);
        assert_eq!(hot.len(), 1);
        assert!(hot.has_node(7) && !hot.has_node(0));
    }

    #[test]
    fn late_samples_are_kept_in_order_and_old_ones_fall_out() {
        let hot = HotWindow::default();
        let key = Arc::new(SeriesKey {
            node_id: 1,
            metric: "ping.rtt_avg".into(),
            tags: "".into(),
        });
        let at = |ts_ms, value| Sample {
            key: key.clone(),
            ts_ms,
            value,
        };
        let ids = SeriesIds::default();
        hot.record(&[at(10_000, 1.0), at(30_000, 3.0)], &ids, i64::MIN);
        hot.record(&[at(20_000, 2.0), at(30_000, 4.0)], &ids, 15_000);
        // A replayed backlog older than the window is passed over.
        hot.record(&[at(5_000, 9.0)], &ids, 15_000);
        let series = &hot.node(1)[0].2;
        assert_eq!(
            series.points.iter().copied().collect::<Vec<_>>(),
            vec![(10_000, 1.0), (20_000, 2.0), (30_000, 4.0)]
        );
        hot.record(&[at(30_000 + HOT_WINDOW_MS, 5.0)], &ids, i64::MIN);
        assert_eq!(hot.node(1)[0].2.points.len(), 2);
        assert_eq!(
            hot.latest(1, "ping.rtt_avg"),
            Some((30_000 + HOT_WINDOW_MS, 5.0))
        );
        assert_eq!(hot.last_sample_at(1), Some(30_000 + HOT_WINDOW_MS));
        hot.forget(1);
        assert!(hot.node(1).is_empty());
    }
}
