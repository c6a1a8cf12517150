//! plantwatch's metric names and tags as Prometheus names and labels (`docs/metrics.md`):
//! `interface.in_octets_total` with tags `ifName=Gi0/1` on node 12 "core-sw" becomes
//! `plantwatch_interface_in_octets_total{ifName="Gi0/1",node="core-sw",node_id="12"}`.

use crate::metrics_store::SeriesKey;
use plantwatch_shared::api::tags_from_canonical;

use super::proto::Label;

/// Prefix of every metric name plantwatch writes.
pub const PREFIX: &str = "plantwatch_";
/// Label holding the node's name (changes when the node is renamed).
pub const NODE: &str = "node";
/// Label holding the node's id (stable; queries select by it).
pub const NODE_ID: &str = "node_id";

/// `measurement.field` as a Prometheus metric name: the prefix, then `.` and every character
/// outside `[a-zA-Z0-9_:]` as `_`.
pub fn metric_name(metric: &str) -> String {
    let mut out = String::with_capacity(PREFIX.len() + metric.len());
    out.push_str(PREFIX);
    out.extend(metric.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// A tag key as a label name: characters outside `[a-zA-Z0-9_]` as `_`, a leading digit
/// behind `_`; names Prometheus reserves (`__…`) and plantwatch's own (`node`, `node_id`)
/// behind `tag_`.
pub fn label_name(tag: &str) -> String {
    let mut out: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.starts_with("__") || out == NODE || out == NODE_ID {
        out.insert_str(0, "tag_");
    }
    out
}

/// The labels of a series, `__name__` first, the rest sorted by name (as remote write asks).
/// Two tags that map to one label name keep the first value.
pub fn labels(key: &SeriesKey, node_name: &str) -> Vec<Label> {
    let mut labels: Vec<Label> = tags_from_canonical(&key.tags)
        .into_iter()
        .map(|(name, value)| Label {
            name: label_name(&name),
            value,
        })
        .collect();
    labels.push(Label {
        name: NODE.into(),
        value: node_name.into(),
    });
    labels.push(Label {
        name: NODE_ID.into(),
        value: key.node_id.to_string(),
    });
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels.dedup_by(|later, first| later.name == first.name);
    labels.insert(
        0,
        Label {
            name: "__name__".into(),
            value: metric_name(&key.metric),
        },
    );
    labels
}

/// The identity of a series the engine answers with: its name and labels but `node` (which
/// follows renames), sorted, as `name{a="b",…}`.
pub fn identity<'a>(name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = labels
        .filter(|(k, _)| *k != NODE && *k != "__name__")
        .collect();
    pairs.sort_unstable();
    let mut out = String::from(name);
    out.push('{');
    for (k, v) in pairs {
        out.push_str(k);
        out.push_str("=\"");
        out.push_str(v);
        out.push_str("\",");
    }
    out.push('}');
    out
}

/// A PromQL selector of a node's series: all of them, one metric, or a prefix ending in `*`.
pub fn selector(node_id: i64, metric: Option<&str>) -> String {
    let name = match metric {
        None => format!("__name__=~\"{PREFIX}.*\""),
        Some(m) => match m.strip_suffix('*') {
            Some(prefix) => format!("__name__=~\"{}.*\"", metric_name(prefix)),
            None => format!("__name__=\"{}\"", metric_name(m)),
        },
    };
    format!("{{{NODE_ID}=\"{node_id}\",{name}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        assert_eq!(
            metric_name("interface.in_octets_total"),
            "plantwatch_interface_in_octets_total"
        );
        assert_eq!(
            metric_name("ups.battery-temp.c"),
            "plantwatch_ups_battery_temp_c"
        );
        assert_eq!(label_name("ifName"), "ifName");
        assert_eq!(label_name("if-descr"), "if_descr");
        assert_eq!(label_name("1st"), "_1st");
        assert_eq!(label_name("__name__"), "tag___name__");
        assert_eq!(label_name("node"), "tag_node");
        assert_eq!(label_name(""), "_");
    }

    #[test]
    fn a_series_gets_sorted_labels_with_its_node() {
        let key = SeriesKey {
            node_id: 12,
            metric: "interface.in_octets_total".into(),
            tags: "ifName=Gi0/1,node=x".into(),
        };
        let labels = labels(&key, "core-sw");
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("__name__", "plantwatch_interface_in_octets_total"),
                ("ifName", "Gi0/1"),
                ("node", "core-sw"),
                ("node_id", "12"),
                ("tag_node", "x"),
            ]
        );
        let id = identity(
            &labels[0].value,
            labels[1..]
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str())),
        );
        assert_eq!(
            id,
            "plantwatch_interface_in_octets_total{ifName=\"Gi0/1\",node_id=\"12\",tag_node=\"x\",}"
        );
    }

    #[test]
    fn docs_metrics_md_lists_every_template_field_under_its_prometheus_name() {
        let docs = include_str!("../../../docs/metrics.md");
        let mut checked = 0;
        for (file, text) in crate::templates::BUILT_IN {
            let template: plantwatch_shared::api::TemplateDef =
                toml::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            let groups = template
                .scalars
                .iter()
                .map(|g| (&g.measurement, &g.fields))
                .chain(template.tables.iter().map(|t| (&t.measurement, &t.fields)));
            for (measurement, fields) in groups {
                for field in fields {
                    let metric = format!("{measurement}.{}", field.name);
                    let row = format!("| `{}` | `{metric}` |", metric_name(&metric));
                    assert!(docs.contains(&row), "docs/metrics.md lacks {row}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 50, "{checked}");
    }

    #[test]
    fn selectors_pick_a_nodes_series() {
        assert_eq!(
            selector(3, Some("interface.*")),
            "{node_id=\"3\",__name__=~\"plantwatch_interface_.*\"}"
        );
        assert_eq!(
            selector(3, Some("ping.rtt_avg")),
            "{node_id=\"3\",__name__=\"plantwatch_ping_rtt_avg\"}"
        );
        assert_eq!(
            selector(3, None),
            "{node_id=\"3\",__name__=~\"plantwatch_.*\"}"
        );
    }
}
