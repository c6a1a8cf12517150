//! SNMP polling of one target with its template: sysUpTime (reboots), scalars, tables, each
//! value turned into line protocol. Credentials are tried in priority order until one answers,
//! and the working one is kept for the next polls.

pub mod decode;
pub mod neighbours;
pub mod session;
pub mod walk;

use plantwatch_shared::metric_names::{NEIGHBOURS, SNMP_UP};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use plantwatch_shared::api::{MetricDef, TableDef, TemplateDef};
use plantwatch_shared::lineproto::Writer;

use self::decode::{Counters, Oid, Sample, Value, format_oid, parse_oid};
use self::session::{Auth, Limits, Session, SnmpError};

/// sysUpTime.0: asked first on every poll; its answer says the credential works and whether
/// the device rebooted.
const SYS_UPTIME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];

/// What one poll did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub up: bool,
    /// Id of the credential that answered.
    pub credential_id: Option<i64>,
    pub requests: u64,
    pub values: usize,
    pub error: Option<String>,
}

/// SNMP state of one target between polls.
pub struct SnmpTarget {
    node_id: i64,
    addr: SocketAddr,
    template: TemplateDef,
    /// (credential id, how to authenticate), in priority order.
    candidates: Vec<(i64, Auth)>,
    working: Option<(i64, Session)>,
    limits: Limits,
    counters: Counters,
    /// Between walks of the neighbour tables the template names, and when the next is due.
    topology_every: Duration,
    topology_due: Option<Instant>,
}

impl std::fmt::Debug for SnmpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpTarget")
            .field("node_id", &self.node_id)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SnmpTarget {
    pub fn new(
        node_id: i64,
        addr: SocketAddr,
        template: TemplateDef,
        candidates: Vec<(i64, Auth)>,
        limits: Limits,
    ) -> SnmpTarget {
        SnmpTarget {
            node_id,
            addr,
            template,
            candidates,
            working: None,
            limits,
            counters: Counters::default(),
            topology_every: Duration::from_secs(u64::from(
                plantwatch_shared::api::DEFAULT_TOPOLOGY_INTERVAL_S,
            )),
            topology_due: None,
        }
    }

    /// Walks the neighbour tables every `every` (the first time at the first poll).
    pub fn with_topology_interval(mut self, every: Duration) -> SnmpTarget {
        self.topology_every = every;
        self
    }

    /// Reads the neighbour tables when due, into one `neighbours` line.
    async fn neighbours(&mut self, now_ms: i64, node: &str, out: &mut Writer) {
        if self.template.neighbours.is_empty()
            || self.topology_due.is_some_and(|due| Instant::now() < due)
        {
            return;
        }
        let Some((_, session)) = &mut self.working else {
            return;
        };
        self.topology_due = Some(Instant::now() + self.topology_every);
        match neighbours::read(session, self.node_id, &self.template.neighbours).await {
            Ok(report) => {
                let doc = serde_json::to_string(&report).unwrap_or_default();
                out.line(NEIGHBOURS, &[("node_id", node)])
                    .string("doc", &doc)
                    .finish(now_ms);
            }
            Err(error) => {
                tracing::debug!(node_id = self.node_id, %error, "Reading the neighbours failed.");
                // Try again at the next poll rather than in a quarter of an hour.
                self.topology_due = None;
            }
        }
    }

    /// Polls once; lines go to `out` stamped `now_ms`.
    pub async fn poll(&mut self, now_ms: i64, out: &mut Writer) -> Outcome {
        let started = Instant::now();
        let node = self.node_id.to_string();
        let mut outcome = Outcome::default();
        match self.connect(&mut outcome).await {
            Ok(uptime) => {
                outcome.up = true;
                let rebooted = match uptime {
                    Some(ticks) => self.counters.observe_uptime(ticks),
                    None => false,
                };
                if rebooted {
                    tracing::info!(
                        node_id = self.node_id,
                        "The device restarted (its uptime went back)."
                    );
                }
                match self.collect(now_ms, &node, out, &mut outcome).await {
                    Ok(()) => self.neighbours(now_ms, &node, out).await,
                    Err(error) => {
                        outcome.error = Some(error.to_string());
                        // A timeout mid-poll: next time, find the credential again.
                        if error == SnmpError::Timeout {
                            self.working = None;
                        }
                    }
                }
            }
            Err(error) => outcome.error = Some(error.to_string()),
        }
        if let Some((_, session)) = &mut self.working {
            outcome.requests += std::mem::take(&mut session.requests);
            session.release();
        }
        out.line(SNMP_UP.measurement, &[("node_id", &node)])
            .float(SNMP_UP.field, if outcome.up { 1.0 } else { 0.0 })
            .float(
                "poll_duration_ms",
                started.elapsed().as_secs_f64() * 1_000.0,
            )
            .float("requests", outcome.requests as f64)
            .float("values", outcome.values as f64)
            .finish(now_ms);
        outcome
    }

    /// Finds a credential that answers (the remembered one first) and reads sysUpTime.
    async fn connect(&mut self, outcome: &mut Outcome) -> Result<Option<u32>, SnmpError> {
        let uptime = [SYS_UPTIME.to_vec()];
        if let Some((id, session)) = &mut self.working {
            match walk::get(session, &uptime).await {
                Ok(values) => {
                    outcome.credential_id = Some(*id);
                    return Ok(ticks(&values));
                }
                Err(_) => {
                    outcome.requests += std::mem::take(&mut session.requests);
                    self.working = None;
                }
            }
        }
        let mut last = SnmpError::Credential("the node has no SNMP credential".into());
        for (id, auth) in &self.candidates {
            let mut session = Session::new(self.addr, auth.clone(), self.limits.clone());
            let result = walk::get(&mut session, &uptime).await;
            match result {
                Ok(values) => {
                    outcome.credential_id = Some(*id);
                    let answer = ticks(&values);
                    self.working = Some((*id, session));
                    return Ok(answer);
                }
                Err(error) => {
                    outcome.requests += session.requests;
                    last = error;
                }
            }
        }
        Err(last)
    }

    async fn collect(
        &mut self,
        now_ms: i64,
        node: &str,
        out: &mut Writer,
        outcome: &mut Outcome,
    ) -> Result<(), SnmpError> {
        let Some((_, session)) = &mut self.working else {
            return Ok(());
        };
        let mut seen_counters = HashSet::new();
        // Scalars: every OID (primary, and what percent_of / times refer to) in one pass,
        // then the fallbacks of those that had no value.
        let scalar_oids: Vec<Oid> = unique(self.template.scalars.iter().flat_map(|g| {
            g.fields.iter().flat_map(|f| {
                [Some(&f.oid), f.percent_of.as_ref(), f.times.as_ref()]
                    .into_iter()
                    .flatten()
                    .filter_map(|o| parse_oid(o))
            })
        }));
        let mut values = if scalar_oids.is_empty() {
            HashMap::new()
        } else {
            walk::get(session, &scalar_oids).await?
        };
        let fallbacks: Vec<Oid> = unique(self.template.scalars.iter().flat_map(|g| {
            g.fields.iter().filter_map(|f| {
                let primary = parse_oid(&f.oid)?;
                if values.contains_key(&primary) {
                    return None;
                }
                parse_oid(f.fallback.as_ref()?)
            })
        }));
        if !fallbacks.is_empty() {
            values.extend(walk::get(session, &fallbacks).await?);
        }
        for group in &self.template.scalars {
            let line = out.line(&group.measurement, &[("node_id", node)]);
            let mut fields = Fields {
                counters: &mut self.counters,
                seen: &mut seen_counters,
                values: &mut outcome.values,
            };
            fields
                .write(line, &group.fields, &values, &group.measurement)
                .finish(now_ms);
        }
        for table in &self.template.tables {
            let rows = read_table(session, table).await?;
            for (index, row) in rows {
                let index_text = format_oid(&index);
                let mut tags: Vec<(String, String)> = vec![(
                    table.index_tag.clone().unwrap_or_else(|| "index".into()),
                    index_text.clone(),
                )];
                for tag in &table.tags {
                    let value = parse_oid(&tag.oid).and_then(|o| row.get(&o)).or_else(|| {
                        tag.fallback
                            .as_ref()
                            .and_then(|f| parse_oid(f))
                            .and_then(|o| row.get(&o))
                    });
                    if let Some(text) = value.and_then(Value::as_text) {
                        tags.push((tag.name.clone(), text));
                    }
                }
                let mut all_tags: Vec<(&str, &str)> = vec![("node_id", node)];
                all_tags.extend(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let line = out.line(&table.measurement, &all_tags);
                let mut fields = Fields {
                    counters: &mut self.counters,
                    seen: &mut seen_counters,
                    values: &mut outcome.values,
                };
                let key = format!("{}.{index_text}", table.measurement);
                fields.write(line, &table.fields, &row, &key).finish(now_ms);
            }
        }
        self.counters.retain(&seen_counters);
        Ok(())
    }
}

/// Writes fields from polled values, keeping counters extended across wraps.
struct Fields<'a> {
    counters: &'a mut Counters,
    /// Counter series seen in this poll (the others are forgotten).
    seen: &'a mut HashSet<String>,
    values: &'a mut usize,
}

impl Fields<'_> {
    /// Adds each field that has a value to `line`; `key` names the group or row, so each
    /// counter series is tracked under its own name.
    fn write<'w>(
        &mut self,
        mut line: plantwatch_shared::lineproto::LineBuilder<'w>,
        fields: &[MetricDef],
        values: &HashMap<Oid, Value>,
        key: &str,
    ) -> plantwatch_shared::lineproto::LineBuilder<'w> {
        for field in fields {
            let Some((value, _)) = lookup(field, values) else {
                continue;
            };
            let other = field
                .percent_of
                .as_ref()
                .or(field.times.as_ref())
                .and_then(|o| parse_oid(o))
                .and_then(|o| values.get(&o));
            let series = format!("{key}.{}", field.name);
            if let Some(sample) = decode::sample(field, value, other, self.counters, &series) {
                self.seen.insert(series);
                *self.values += 1;
                line = write_sample(line, &field.name, sample);
            }
        }
        line
    }
}

fn ticks(values: &HashMap<Oid, Value>) -> Option<u32> {
    match values.get(SYS_UPTIME.as_slice()) {
        Some(Value::Timeticks(t)) => Some(*t),
        _ => None,
    }
}

fn unique(oids: impl Iterator<Item = Oid>) -> Vec<Oid> {
    let mut seen = HashSet::new();
    oids.filter(|o| seen.insert(o.clone())).collect()
}

/// The field's value: its OID's, else its fallback's.
fn lookup<'a>(field: &MetricDef, values: &'a HashMap<Oid, Value>) -> Option<(&'a Value, bool)> {
    if let Some(value) = parse_oid(&field.oid).and_then(|o| values.get(&o)) {
        return Some((value, false));
    }
    let fallback = parse_oid(field.fallback.as_ref()?)?;
    values.get(&fallback).map(|v| (v, true))
}

fn write_sample<'w>(
    line: plantwatch_shared::lineproto::LineBuilder<'w>,
    name: &str,
    sample: Sample,
) -> plantwatch_shared::lineproto::LineBuilder<'w> {
    match sample {
        Sample::Gauge(v) => line.float(name, v),
        Sample::Counter(v) => line.uint(name, v),
    }
}

/// Walks a table's columns; a column without rows is replaced by its fallback. Rows are keyed
/// by index and hold each column's value under the column's OID.
async fn read_table(
    session: &mut Session,
    table: &TableDef,
) -> Result<BTreeMap<Oid, HashMap<Oid, Value>>, SnmpError> {
    let primary: Vec<Oid> = unique(
        table
            .tags
            .iter()
            .map(|t| &t.oid)
            .chain(table.fields.iter().flat_map(|f| {
                [Some(&f.oid), f.percent_of.as_ref(), f.times.as_ref()]
                    .into_iter()
                    .flatten()
            }))
            .chain(table.rows.as_ref().map(|r| &r.oid))
            .filter_map(|o| parse_oid(o)),
    );
    let mut columns = walk::walk_columns(session, &primary).await?;
    let mut oids = primary.clone();
    let empty: HashSet<&Oid> = primary
        .iter()
        .zip(&columns)
        .filter(|(_, rows)| rows.is_empty())
        .map(|(oid, _)| oid)
        .collect();
    let fallbacks: Vec<Oid> = unique(
        table
            .tags
            .iter()
            .filter_map(|t| Some((parse_oid(&t.oid)?, t.fallback.as_ref()?)))
            .chain(
                table
                    .fields
                    .iter()
                    .filter_map(|f| Some((parse_oid(&f.oid)?, f.fallback.as_ref()?))),
            )
            .filter(|(oid, _)| empty.contains(oid))
            .filter_map(|(_, fallback)| parse_oid(fallback)),
    );
    if !fallbacks.is_empty() {
        columns.extend(walk::walk_columns(session, &fallbacks).await?);
        oids.extend(fallbacks);
    }
    // Rows are the indices of the value columns (tags alone do not make a row).
    let field_columns: HashSet<Oid> = table
        .fields
        .iter()
        .flat_map(|f| [Some(&f.oid), f.fallback.as_ref()].into_iter().flatten())
        .filter_map(|o| parse_oid(o))
        .collect();
    let mut rows: BTreeMap<Oid, HashMap<Oid, Value>> = BTreeMap::new();
    for (oid, column) in oids.iter().zip(&columns) {
        if field_columns.contains(oid) {
            for index in column.keys() {
                rows.entry(index.clone()).or_default();
            }
        }
    }
    for (oid, column) in oids.into_iter().zip(columns) {
        for (index, value) in column {
            if let Some(row) = rows.get_mut(&index) {
                row.insert(oid.clone(), value);
            }
        }
    }
    if let Some(filter) = &table.rows {
        let column = parse_oid(&filter.oid);
        rows.retain(|_, row| {
            let value = column
                .as_ref()
                .and_then(|c| row.get(c))
                .and_then(Value::as_text);
            filter.keeps(value.as_deref())
        });
    }
    Ok(rows)
}
