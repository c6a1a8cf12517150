//! Device templates: what to poll on a kind of device and how to recognise it. The same
//! structures are read from the TOML files in `server/templates/` (see `docs/templates.md`)
//! and delivered, resolved, to collectors in their configuration.

use serde::{Deserialize, Serialize};

/// Polling interval of a template that names none.
pub const DEFAULT_TEMPLATE_INTERVAL_S: u32 = 10;

/// One template as written (with `extends`) or as delivered (resolved: `extends` empty and the
/// parents' metrics included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The node type an import from discovery gives a device of this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<super::NodeType>,
    /// Templates whose metrics this one includes (resolved at load).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extends: Vec<String>,
    /// Seconds between polls; the parents' when absent, else 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
    #[serde(default, rename = "fingerprint", skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<FingerprintDef>,
    /// Single-instance values, grouped by measurement.
    #[serde(default, rename = "scalars", skip_serializing_if = "Vec::is_empty")]
    pub scalars: Vec<ScalarGroup>,
    /// Tables walked with GETBULK; each row is a series tagged by its index.
    #[serde(default, rename = "tables", skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableDef>,
    /// The traps devices of this template send, by name (from their MIB): events get the
    /// name and severity, event rules may name them.
    #[serde(default, rename = "traps", skip_serializing_if = "Vec::is_empty")]
    pub traps: Vec<TrapDef>,
    /// The neighbour tables its devices keep (LLDP-MIB, CISCO-CDP-MIB): walked at the
    /// collector's topology interval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<super::NeighbourProtocol>,
    /// A Modbus profile: the points its devices are read for over Modbus TCP (read only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modbus: Option<super::modbus::ModbusDef>,
}

/// A trap a template knows by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrapDef {
    /// snmpTrapOID, numeric (a v1 trap's `enterprise.0.specific`).
    pub oid: String,
    /// Its name in the MIB (`upsOnBattery`).
    pub name: String,
    /// The severity its events get.
    #[serde(default = "notice")]
    pub severity: super::EventSeverity,
}

fn notice() -> super::EventSeverity {
    super::EventSeverity::Notice
}

/// How discovery recognises a device this template fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintDef {
    /// sysObjectID prefix, numeric (`1.3.6.1.4.1.9.1`).
    pub sys_object_id: String,
    /// Text sysDescr must contain (case-insensitive), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_descr: Option<String>,
    /// Higher wins among matches of equal prefix length.
    #[serde(default)]
    pub priority: i32,
}

/// Scalars of one measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalarGroup {
    pub measurement: String,
    pub fields: Vec<MetricDef>,
}

/// A table: columns walked under one index; `tags` name the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    pub measurement: String,
    /// Tag that carries the row's index (`index` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagDef>,
    /// Only the rows whose column `oid` holds one of `any_of` (hrStorageType: fixed disks
    /// into `storage`, memory areas elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<RowFilter>,
    pub fields: Vec<MetricDef>,
}

/// Which rows of a table are polled: those whose column `oid` holds one of `any_of`, as text
/// (an OID value in dotted form without a leading dot, a number, a string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowFilter {
    pub oid: String,
    pub any_of: Vec<String>,
}

impl RowFilter {
    /// Whether a row whose filter column reads `value` is kept.
    pub fn keeps(&self, value: Option<&str>) -> bool {
        value.is_some_and(|v| {
            let v = v.trim_start_matches('.');
            self.any_of.iter().any(|a| a.trim_start_matches('.') == v)
        })
    }
}

/// A tag taken from a table column (e.g. `ifName`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagDef {
    pub name: String,
    pub oid: String,
    /// Column used where `oid` has no value (ifName → ifDescr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Gauge (a level) or counter (counts up; named `…_total`, answered as a rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Gauge,
    Counter,
}

/// One polled value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    /// Field name; a counter's ends in `_total`. Units go in the name (`_pct`, `_bytes`, `_s`).
    pub name: String,
    /// Numeric OID: the scalar's instance (`….0`), or a table's column.
    pub oid: String,
    /// OID used when `oid` has no value (64-bit `ifHCInOctets` → 32-bit `ifInOctets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    pub kind: MetricKind,
    /// Unit, for people (`bytes`, `%`, `s`, `°C`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Multiplier applied to the raw value (timeticks → seconds: 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Store 1 when the raw value equals this, else 0 (`upsOutputSource` = battery(5)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<i64>,
    /// Store the value as a percentage of this OID's value (same row for tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_of: Option<String>,
    /// Multiply by this OID's value (same row): hrStorageUsed × hrStorageAllocationUnits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<String>,
}

/// Summary of a loaded template (`GET /templates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub vendor: Option<String>,
    pub description: Option<String>,
    pub interval_s: u32,
    pub fingerprints: Vec<FingerprintDef>,
    /// Scalars, table columns and Modbus points read (after `extends`).
    pub metric_count: usize,
    /// Built into the server, or the file it came from.
    pub source: String,
    /// Nodes that use it.
    pub node_count: i64,
    /// The resolved definition (only in `GET /templates/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<TemplateDef>,
}

/// A template file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateProblem {
    pub source: String,
    pub message: String,
}

/// Answer of `POST /templates/reload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateReload {
    pub loaded: usize,
    /// Templates added or whose definition changed.
    pub changed: Vec<String>,
    /// Collectors whose configuration will be regenerated.
    pub collectors_marked: usize,
}

impl TemplateDef {
    /// Number of values polled: scalars, table columns and Modbus points.
    pub fn metric_count(&self) -> usize {
        self.scalars.iter().map(|g| g.fields.len()).sum::<usize>()
            + self.tables.iter().map(|t| t.fields.len()).sum::<usize>()
            + self.modbus.as_ref().map_or(0, |m| m.points.len())
    }

    /// Whether this template's fingerprint fits a device; the length of the matching prefix
    /// and the priority rank candidates (longest prefix first, then priority).
    pub fn matches(&self, sys_object_id: &str, sys_descr: &str) -> Option<(usize, i32)> {
        let descr = sys_descr.to_lowercase();
        self.fingerprints
            .iter()
            .filter(|f| oid_has_prefix(sys_object_id, &f.sys_object_id))
            .filter(|f| {
                f.sys_descr
                    .as_ref()
                    .is_none_or(|needle| descr.contains(&needle.to_lowercase()))
            })
            .map(|f| (f.sys_object_id.len(), f.priority))
            .max()
    }
}

/// `oid` equals `prefix` or lies below it (`1.3.6.1.4.1.9.1.516` under `1.3.6.1.4.1.9.1`, but
/// not `1.3.6.1.4.1.9.12` under `1.3.6.1.4.1.9.1`).
pub fn oid_has_prefix(oid: &str, prefix: &str) -> bool {
    let oid = oid.trim_start_matches('.');
    let prefix = prefix.trim_start_matches('.');
    oid == prefix || (oid.starts_with(prefix) && oid.as_bytes().get(prefix.len()) == Some(&b'.'))
}

/// The best-fitting template for a device, by fingerprint.
pub fn best_template<'a>(
    templates: impl IntoIterator<Item = &'a TemplateDef>,
    sys_object_id: &str,
    sys_descr: &str,
) -> Option<&'a TemplateDef> {
    templates
        .into_iter()
        .filter_map(|t| t.matches(sys_object_id, sys_descr).map(|rank| (rank, t)))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.name.cmp(&a.1.name)))
        .map(|(_, t)| t)
}

/// What is wrong with a template as written (names, OIDs, counters named `_total`, Modbus
/// points): the server refuses a file with any, and `plantwatch templates validate` says the
/// same before the file is copied to the server.
pub fn template_problems(def: &TemplateDef) -> Vec<String> {
    let mut out = Vec::new();
    if !identifier(&def.name) {
        out.push(format!(
            "name {:?} must be letters, digits, _ or -",
            def.name
        ));
    }
    if def.interval_s.is_some_and(|s| s == 0 || s > 86_400) {
        out.push("interval_s must be between 1 and 86400".to_owned());
    }
    for fingerprint in &def.fingerprints {
        if !numeric_oid(&fingerprint.sys_object_id) {
            out.push(format!(
                "fingerprint sys_object_id {:?} is not a numeric OID",
                fingerprint.sys_object_id
            ));
        }
    }
    if let Some(problem) = def.modbus.as_ref().and_then(super::modbus::problem) {
        out.push(format!("modbus: {problem}"));
    }
    for trap in &def.traps {
        if !numeric_oid(&trap.oid) || !identifier(&trap.name) {
            out.push(format!(
                "trap {:?}: needs a name (letters, digits, _ or -) and a numeric OID",
                trap.name
            ));
        }
    }
    for group in &def.scalars {
        if !identifier(&group.measurement) || group.fields.is_empty() {
            out.push(format!(
                "scalars {:?}: needs a measurement name and fields",
                group.measurement
            ));
        }
        group.fields.iter().for_each(|f| check_metric(f, &mut out));
    }
    for table in &def.tables {
        if !identifier(&table.measurement) || table.fields.is_empty() {
            out.push(format!(
                "tables {:?}: needs a measurement name and fields",
                table.measurement
            ));
        }
        for tag in &table.tags {
            if !identifier(&tag.name) || !numeric_oid(&tag.oid) {
                out.push(format!(
                    "tag {:?}: needs a name and a numeric OID",
                    tag.name
                ));
            }
        }
        if let Some(rows) = &table.rows
            && (!numeric_oid(&rows.oid) || rows.any_of.is_empty())
        {
            out.push(format!(
                "tables {:?}: rows needs a numeric OID and at least one value in any_of",
                table.measurement
            ));
        }
        table.fields.iter().for_each(|f| check_metric(f, &mut out));
    }
    out
}

fn numeric_oid(oid: &str) -> bool {
    let oid = oid.trim_start_matches('.');
    !oid.is_empty()
        && oid.split('.').all(|part| {
            !part.is_empty() && part.len() <= 10 && part.bytes().all(|b| b.is_ascii_digit())
        })
}

fn identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn check_metric(field: &MetricDef, out: &mut Vec<String>) {
    if !identifier(&field.name) {
        out.push(format!(
            "field name {:?} must be letters, digits, _ or -",
            field.name
        ));
    }
    for (what, oid) in [
        ("oid", Some(&field.oid)),
        ("fallback", field.fallback.as_ref()),
        ("percent_of", field.percent_of.as_ref()),
        ("times", field.times.as_ref()),
    ] {
        if let Some(oid) = oid
            && !numeric_oid(oid)
        {
            out.push(format!(
                "{}: {what} {oid:?} is not a numeric OID",
                field.name
            ));
        }
    }
    let named_counter = field.name.ends_with("_total");
    match field.kind {
        MetricKind::Counter if !named_counter => out.push(format!(
            "{}: a counter's name must end in _total",
            field.name
        )),
        MetricKind::Gauge if named_counter => out.push(format!(
            "{}: a gauge's name must not end in _total (that marks counters)",
            field.name
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(name: &str, prefix: &str, descr: Option<&str>, priority: i32) -> TemplateDef {
        TemplateDef {
            name: name.into(),
            vendor: None,
            description: None,
            node_type: None,
            extends: vec![],
            interval_s: None,
            fingerprints: vec![FingerprintDef {
                sys_object_id: prefix.into(),
                sys_descr: descr.map(Into::into),
                priority,
            }],
            scalars: vec![],
            tables: vec![],
            traps: vec![],
            neighbours: vec![],
            modbus: None,
        }
    }

    #[test]
    fn the_longest_matching_prefix_wins_then_priority_then_descr() {
        let all = [
            template("generic", "1.3.6.1", None, -100),
            template("net-snmp", "1.3.6.1.4.1.8072.3.2.10", None, 0),
            template("linux", "1.3.6.1.4.1.8072.3.2.10", Some("linux"), 10),
            template("cisco", "1.3.6.1.4.1.9.1", None, 0),
        ];
        let best = |oid, descr| best_template(&all, oid, descr).map(|t| t.name.as_str());
        assert_eq!(best("1.3.6.1.4.1.9.1.516", "IOS"), Some("cisco"));
        assert_eq!(best("1.3.6.1.4.1.9.12.3", "NX-OS"), Some("generic"));
        assert_eq!(
            best("1.3.6.1.4.1.8072.3.2.10", "Linux host 5.10"),
            Some("linux")
        );
        assert_eq!(best("1.3.6.1.4.1.8072.3.2.10", "FreeBSD"), Some("net-snmp"));
        assert_eq!(best("2.1", ""), None);
        assert!(!oid_has_prefix("1.3.6.1.4.1.90", "1.3.6.1.4.1.9"));
    }
}
