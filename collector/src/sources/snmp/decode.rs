//! Pure pieces of SNMP polling: OIDs as numbers, owned values, how a value becomes a sample,
//! and 32-bit counters extended across their wraps (resets on a device reboot).

use std::collections::HashMap;

/// A numeric OID.
pub type Oid = Vec<u64>;

/// Parses `1.3.6.1.2.1.1.3.0` (a leading dot is allowed).
pub fn parse_oid(text: &str) -> Option<Oid> {
    let text = text.trim().trim_start_matches('.');
    if text.is_empty() {
        return None;
    }
    text.split('.').map(|part| part.parse().ok()).collect()
}

/// `1.3.6.1…` text of an OID.
pub fn format_oid(oid: &[u64]) -> String {
    oid.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// `oid` lies strictly below `prefix`.
pub fn is_below(oid: &[u64], prefix: &[u64]) -> bool {
    oid.len() > prefix.len() && oid.starts_with(prefix)
}

/// An SNMP value copied out of the session's buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    /// Gauge32 / Unsigned32.
    Unsigned(u32),
    Counter32(u32),
    Counter64(u64),
    Timeticks(u32),
    Octets(Vec<u8>),
    Oid(Oid),
    Ip([u8; 4]),
    Null,
    /// noSuchObject / noSuchInstance: the agent has no such value.
    Missing,
    EndOfMibView,
}

impl Value {
    /// Converts a value borrowed from a reply.
    pub fn from_snmp(value: &snmp2::Value<'_>) -> Value {
        use snmp2::Value as V;
        match value {
            V::Integer(v) => Value::Integer(*v),
            V::Unsigned32(v) => Value::Unsigned(*v),
            V::Counter32(v) => Value::Counter32(*v),
            V::Counter64(v) => Value::Counter64(*v),
            V::Timeticks(v) => Value::Timeticks(*v),
            V::OctetString(bytes) | V::Opaque(bytes) => Value::Octets(bytes.to_vec()),
            V::ObjectIdentifier(oid) => {
                Value::Oid(oid.iter().map(Iterator::collect).unwrap_or_default())
            }
            V::IpAddress(ip) => Value::Ip(*ip),
            V::Boolean(b) => Value::Integer(i64::from(*b)),
            V::NoSuchObject | V::NoSuchInstance => Value::Missing,
            V::EndOfMibView => Value::EndOfMibView,
            _ => Value::Null,
        }
    }

    /// Whether the agent had a value.
    pub fn is_present(&self) -> bool {
        !matches!(self, Value::Missing | Value::EndOfMibView | Value::Null)
    }

    /// The value as a number; strings that hold a number (`"0.15"`, some agents' loads) too.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(v) => Some(*v as f64),
            Value::Unsigned(v) | Value::Counter32(v) | Value::Timeticks(v) => Some(f64::from(*v)),
            Value::Counter64(v) => Some(*v as f64),
            Value::Octets(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.trim().trim_end_matches('%').trim().parse().ok())
                .filter(|v: &f64| v.is_finite()),
            _ => None,
        }
    }

    /// The value as tag text: strings as they are (control characters dropped), numbers,
    /// addresses and OIDs as text.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Octets(bytes) => {
                let text: String = String::from_utf8_lossy(bytes)
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
                let text = text.trim().to_owned();
                (!text.is_empty()).then_some(text)
            }
            Value::Integer(v) => Some(v.to_string()),
            Value::Unsigned(v) | Value::Counter32(v) | Value::Timeticks(v) => Some(v.to_string()),
            Value::Counter64(v) => Some(v.to_string()),
            Value::Ip(ip) => Some(format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])),
            Value::Oid(oid) => Some(format_oid(oid)),
            _ => None,
        }
    }
}

/// Keeps 32-bit counters monotonic across wraps: each Counter32 series is extended into 64
/// bits by counting its wraps. A device reboot (its uptime went back) starts over, so the
/// stored counter drops and the server's rate treats the drop as a reset, not a wrap.
#[derive(Debug, Default)]
pub struct Counters {
    last: HashMap<String, (u32, u64)>,
    uptime_ticks: Option<u32>,
}

impl Counters {
    /// Records the device's uptime; returns true (and forgets every counter) when it went back.
    pub fn observe_uptime(&mut self, ticks: u32) -> bool {
        let rebooted = self.uptime_ticks.is_some_and(|last| ticks < last);
        self.uptime_ticks = Some(ticks);
        if rebooted {
            self.last.clear();
        }
        rebooted
    }

    /// The extended value of a Counter32 series named `key`.
    pub fn extend32(&mut self, key: &str, raw: u32) -> u64 {
        let (last_raw, wraps) = self.last.get(key).copied().unwrap_or((raw, 0));
        let wraps = if raw < last_raw { wraps + 1 } else { wraps };
        self.last.insert(key.to_owned(), (raw, wraps));
        (wraps << 32) + u64::from(raw)
    }

    /// Forgets counters not seen in this poll (removed interfaces).
    pub fn retain(&mut self, seen: &std::collections::HashSet<String>) {
        self.last.retain(|key, _| seen.contains(key));
    }
}

/// How a polled value becomes a field value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    Gauge(f64),
    Counter(u64),
}

/// Turns a raw value into a sample per the metric's definition. Counters stay whole numbers
/// (Counter32 extended by `counters` under `key`); `equals`, `percent_of`, `times` and
/// `scale` apply to gauges.
pub fn sample(
    def: &plantwatch_shared::api::MetricDef,
    value: &Value,
    other: Option<&Value>,
    counters: &mut Counters,
    key: &str,
) -> Option<Sample> {
    use plantwatch_shared::api::MetricKind;
    if def.kind == MetricKind::Counter {
        return match value {
            Value::Counter32(raw) => Some(Sample::Counter(counters.extend32(key, *raw))),
            Value::Counter64(raw) => Some(Sample::Counter(*raw)),
            Value::Unsigned(raw) | Value::Timeticks(raw) => Some(Sample::Counter(u64::from(*raw))),
            Value::Integer(raw) if *raw >= 0 => Some(Sample::Counter(*raw as u64)),
            _ => None,
        };
    }
    let raw = value.as_f64()?;
    let mut out = match def.equals {
        Some(expected) => f64::from(u8::from(raw == expected as f64)),
        None => raw,
    };
    if def.percent_of.is_some() {
        let whole = other?.as_f64()?;
        if whole <= 0.0 {
            return None;
        }
        out = out * 100.0 / whole;
    } else if def.times.is_some() {
        out *= other?.as_f64()?;
    }
    if let Some(scale) = def.scale {
        out *= scale;
    }
    out.is_finite().then_some(Sample::Gauge(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantwatch_shared::api::{MetricDef, MetricKind};

    fn def(kind: MetricKind) -> MetricDef {
        MetricDef {
            name: "x".into(),
            oid: "1.3".into(),
            fallback: None,
            kind,
            unit: None,
            scale: None,
            equals: None,
            percent_of: None,
            times: None,
        }
    }

    #[test]
    fn oids_parse_and_format() {
        assert_eq!(parse_oid(".1.3.6.1"), Some(vec![1, 3, 6, 1]));
        assert_eq!(parse_oid("1.3.x"), None);
        assert_eq!(parse_oid(""), None);
        assert_eq!(format_oid(&[1, 3, 6]), "1.3.6");
        assert!(is_below(&[1, 3, 6, 1], &[1, 3, 6]));
        assert!(!is_below(&[1, 3, 6], &[1, 3, 6]));
        assert!(!is_below(&[1, 3, 7, 1], &[1, 3, 6]));
    }

    #[test]
    fn counter32_wraps_are_extended_and_a_reboot_resets_them() {
        let mut counters = Counters::default();
        assert!(!counters.observe_uptime(100));
        assert_eq!(
            counters.extend32("in", u32::MAX - 10),
            u64::from(u32::MAX - 10)
        );
        // Wrapped past 2^32: the extended value keeps counting up.
        assert_eq!(counters.extend32("in", 5), (1u64 << 32) + 5);
        assert_eq!(counters.extend32("in", 50), (1u64 << 32) + 50);
        // Reboot: uptime went back, the counter starts over from its raw value.
        assert!(counters.observe_uptime(20));
        assert_eq!(counters.extend32("in", 7), 7);
    }

    #[test]
    fn samples_apply_the_definition() {
        let mut counters = Counters::default();
        let mut d = def(MetricKind::Counter);
        assert_eq!(
            sample(&d, &Value::Counter64(u64::MAX), None, &mut counters, "k"),
            Some(Sample::Counter(u64::MAX))
        );
        assert_eq!(
            sample(&d, &Value::Octets(b"x".to_vec()), None, &mut counters, "k"),
            None
        );
        d = def(MetricKind::Gauge);
        d.scale = Some(0.01);
        assert_eq!(
            sample(&d, &Value::Timeticks(12_345), None, &mut counters, "k"),
            Some(Sample::Gauge(123.45))
        );
        d = def(MetricKind::Gauge);
        d.equals = Some(3);
        assert_eq!(
            sample(&d, &Value::Integer(3), None, &mut counters, "k"),
            Some(Sample::Gauge(1.0))
        );
        assert_eq!(
            sample(&d, &Value::Integer(2), None, &mut counters, "k"),
            Some(Sample::Gauge(0.0))
        );
        d = def(MetricKind::Gauge);
        d.percent_of = Some("1.3.2".into());
        assert_eq!(
            sample(
                &d,
                &Value::Integer(25),
                Some(&Value::Integer(200)),
                &mut counters,
                "k"
            ),
            Some(Sample::Gauge(12.5))
        );
        assert_eq!(
            sample(
                &d,
                &Value::Integer(25),
                Some(&Value::Integer(0)),
                &mut counters,
                "k"
            ),
            None
        );
        assert_eq!(
            sample(&d, &Value::Integer(25), None, &mut counters, "k"),
            None
        );
        d = def(MetricKind::Gauge);
        d.times = Some("1.3.4".into());
        assert_eq!(
            sample(
                &d,
                &Value::Integer(10),
                Some(&Value::Integer(4096)),
                &mut counters,
                "k"
            ),
            Some(Sample::Gauge(40_960.0))
        );
        assert_eq!(
            sample(
                &def(MetricKind::Gauge),
                &Value::Octets(b" 0.15 ".to_vec()),
                None,
                &mut counters,
                "k"
            ),
            Some(Sample::Gauge(0.15))
        );
    }
}
