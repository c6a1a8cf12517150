//! `plantwatch metrics list|query|export`: every series a node has, one metric of a node over
//! time for scripts (table, JSON or CSV), and a chart of it as an SVG or PNG picture.

use clap::Subcommand;
use plantwatch_shared::api::{Aggregation, MetricQuery, SeriesQuery};

use super::Session;
use super::nodes::find;
use crate::cells::{parse_duration, parse_time, time_cell};
use crate::widgets::picture::{self, Format, file_name};
use crate::widgets::plot::{Pick, Plot};

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Every series a node has: metric, tags, kind and its latest value.
    List {
        /// The node (name or id).
        node: String,
        /// Only this measurement's (`meter`, `interface`).
        #[arg(long)]
        measurement: Option<String>,
    },
    /// One metric of a node over time, a row per step and series (counters as rates).
    Query {
        /// The node (name or id).
        node: String,
        /// `measurement.field`, or a prefix ending in `*` (`interface.*`).
        metric: String,
        #[command(flatten)]
        window: Window,
    },
    /// A chart of one metric as an SVG or PNG picture, for shift reports and tickets: one
    /// series (an interface's in and out together) or the 8 highest of every series.
    Export {
        /// The node (name or id).
        node: String,
        /// `measurement.field` (`interface.in_octets_total`, `meter.voltage`).
        metric: String,
        /// Pick the series with this tag (`ifName=Gi0/1`); repeat for several tags.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Chart every series of the metric (the 8 highest), even when one would do.
        #[arg(long)]
        top: bool,
        /// The file to write [default: NODE_METRIC_TIME.svg in the working directory].
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// svg or png [default: the file's extension, else svg].
        #[arg(long)]
        format: Option<String>,
        #[command(flatten)]
        window: Window,
    },
}

/// The time window of a query or a chart.
#[derive(Debug, clap::Args)]
pub struct Window {
    /// Start: a duration ago (`6h`, `7d`) or an RFC 3339 time.
    #[arg(long, default_value = "1h")]
    from: String,
    /// End: a duration ago or an RFC 3339 time [default: now].
    #[arg(long)]
    to: Option<String>,
    /// Seconds per step (`60`, `5m`) [default: about 300 steps over the range].
    #[arg(long)]
    step: Option<String>,
    /// avg, min, max, last or sum within each step.
    #[arg(long, default_value = "avg")]
    agg: String,
}

impl Window {
    /// The query of `metric` over this window, checked.
    fn query(&self, metric: String) -> anyhow::Result<MetricQuery> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let from = instant("from", &self.from, now)?;
        let to = match &self.to {
            Some(text) => instant("to", text, now)?,
            None => now,
        };
        if from >= to {
            super::usage!("--from must be before --to");
        }
        let step = match &self.step {
            Some(text) => match parse_duration(text) {
                Ok(secs) => Some(i64::try_from(secs).unwrap_or(i64::MAX)),
                Err(problem) => super::usage!("--step: {problem}"),
            },
            None => None,
        };
        Ok(MetricQuery {
            metric: Some(metric),
            from: Some(from),
            to: Some(to),
            step,
            agg: Some(aggregation(&self.agg)?),
        })
    }
}

/// Most series one listing shows (the API's page limit).
const SERIES_LIMIT: i64 = 1_000;

/// A point in time from a duration ago or an RFC 3339 time, as UNIX seconds.
fn instant(option: &str, text: &str, now: i64) -> anyhow::Result<i64> {
    if let Ok(ago) = parse_duration(text) {
        return Ok(now - i64::try_from(ago).unwrap_or(i64::MAX));
    }
    match parse_time(text) {
        Ok(at) => Ok(at.unix_timestamp()),
        Err(_) => super::usage!(
            "--{option} {text:?}: give a duration ago (6h) or a time (2026-12-04T08:00:00Z)"
        ),
    }
}

fn aggregation(text: &str) -> anyhow::Result<Aggregation> {
    match text.trim().to_ascii_lowercase().as_str() {
        "avg" => Ok(Aggregation::Avg),
        "min" => Ok(Aggregation::Min),
        "max" => Ok(Aggregation::Max),
        "last" => Ok(Aggregation::Last),
        "sum" => Ok(Aggregation::Sum),
        _ => super::usage!("--agg {text:?}: use avg, min, max, last or sum"),
    }
}

/// `key=value,…` of a series' tags.
fn tags_cell(tags: &std::collections::BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn run(session: &Session, command: MetricsCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        MetricsCommand::List { node, measurement } => {
            let node = find(&client, &node).await?;
            let mut list = client
                .series(&SeriesQuery {
                    node_id: Some(node.id),
                    q: measurement.as_ref().map(|m| format!("{m}.")),
                    limit: Some(SERIES_LIMIT),
                })
                .await?;
            if list.total > list.items.len() as u64 {
                eprintln!(
                    "Showing {} of {} series; narrow with --measurement.",
                    list.items.len(),
                    list.total
                );
            }
            if let Some(measurement) = &measurement {
                let prefix = format!("{measurement}.");
                list.items.retain(|s| s.metric.starts_with(&prefix));
                list.total = list.items.len() as u64;
            }
            list.items
                .sort_by(|a, b| (&a.metric, &a.tags).cmp(&(&b.metric, &b.tags)));
            let rows = list
                .items
                .iter()
                .map(|s| {
                    vec![
                        s.metric.clone(),
                        tags_cell(&s.tags),
                        format!("{:?}", s.kind).to_lowercase(),
                        s.latest
                            .map_or("-".into(), |(_, v)| super::alerts::value_cell(Some(v))),
                        s.latest.map_or("-".into(), |(at, _)| {
                            time_cell(time::OffsetDateTime::from_unix_timestamp(at).ok())
                        }),
                    ]
                })
                .collect();
            if list.items.is_empty() {
                eprintln!(
                    "{} has no stored series{}.",
                    node.name,
                    measurement.map_or(String::new(), |m| format!(" of {m}"))
                );
            }
            session.print(&list, &["METRIC", "TAGS", "KIND", "LATEST", "AT"], rows)
        }
        MetricsCommand::Query {
            node,
            metric,
            window,
        } => {
            let query = window.query(metric.clone())?;
            let node = find(&client, &node).await?;
            let answer = client.node_metrics(node.id, &query).await?;
            if answer.items.is_empty() {
                eprintln!("{} has no {metric} in that range.", node.name);
            }
            let rows = answer
                .items
                .iter()
                .flat_map(|s| {
                    s.points.iter().map(|(at, value)| {
                        vec![
                            time_cell(time::OffsetDateTime::from_unix_timestamp(*at).ok()),
                            s.metric.clone(),
                            tags_cell(&s.tags),
                            super::alerts::value_cell(Some(*value)),
                        ]
                    })
                })
                .collect();
            session.print(&answer, &["TIME", "METRIC", "TAGS", "VALUE"], rows)
        }
        MetricsCommand::Export {
            node,
            metric,
            tags,
            top,
            file,
            format,
            window,
        } => {
            let format = match (format.as_deref(), file.as_deref().and_then(Format::of_path)) {
                (Some("svg"), _) => Format::Svg,
                (Some("png"), _) => Format::Png,
                (Some(other), _) => super::usage!("--format {other:?}: use svg or png"),
                (None, Some(format)) => format,
                (None, None) => Format::Svg,
            };
            let mut wanted = std::collections::BTreeMap::new();
            for tag in &tags {
                match tag.split_once('=') {
                    Some((key, value)) if !key.is_empty() => {
                        wanted.insert(key.to_owned(), value.to_owned());
                    }
                    _ => super::usage!("--tag {tag:?}: give KEY=VALUE (ifName=Gi0/1)"),
                }
            }
            let Some((measurement, _)) = metric.split_once('.') else {
                super::usage!("{metric:?}: give measurement.field (interface.in_octets_total)");
            };
            // The whole measurement: an interface's in comes with its out.
            let query = window.query(format!("{measurement}.*"))?;
            let node = find(&client, &node).await?;
            let answer = client.node_metrics(node.id, &query).await?;
            let matching: Vec<_> = answer
                .items
                .iter()
                .filter(|s| {
                    s.metric == metric && wanted.iter().all(|(k, v)| s.tags.get(k) == Some(v))
                })
                .collect();
            let pick = match matching.as_slice() {
                [] => anyhow::bail!(
                    "{} has no {metric}{} between {} and {}; `plantwatch metrics list {}` shows its series",
                    node.name,
                    if tags.is_empty() {
                        String::new()
                    } else {
                        format!(" with {}", tags.join(","))
                    },
                    time_cell(time::OffsetDateTime::from_unix_timestamp(answer.from).ok()),
                    time_cell(time::OffsetDateTime::from_unix_timestamp(answer.to).ok()),
                    node.name
                ),
                [one] if !top => Pick::One {
                    metric: metric.clone(),
                    tags: one.tags.clone(),
                },
                _ if !top && !wanted.is_empty() => super::usage!(
                    "{} series of {metric} have {}: add --tag to pick one, or --top for all",
                    matching.len(),
                    tags.join(",")
                ),
                _ => Pick::Top {
                    metric: metric.clone(),
                },
            };
            // The thresholds of the rules that watch it (a viewer may read them too).
            let rules = client
                .list_rules()
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let plot = Plot::of(
                &pick,
                &answer.items,
                &node,
                &rules,
                (answer.from, answer.to),
            );
            let path = file.unwrap_or_else(|| file_name(&node.name, &plot, format));
            let bytes = picture::render(&plot, &node.name, format)?;
            picture::write(&path, &bytes)?;
            eprintln!(
                "Wrote {} ({} line{}, {} bytes).",
                path.display(),
                plot.lines.len(),
                if plot.lines.len() == 1 { "" } else { "s" },
                bytes.len()
            );
            Ok(())
        }
    }
}
