//! Events a collector receives — SNMP traps and syslog messages — and how they are listed
//! (`GET /api/v1/events`), and the receivers a collector runs (`PUT
//! /api/v1/collectors/{id}/receivers`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::named_enum;

named_enum! {
    /// What an event came as.
    pub enum EventKind ("event kind") {
        /// An SNMP trap or inform.
        Trap = "trap",
        /// A syslog message.
        Syslog = "syslog",
    }
}

named_enum! {
    /// An event's severity: syslog's eight levels (RFC 5424), most severe first.
    pub enum EventSeverity ("event severity") {
        Emergency = "emergency",
        Alert = "alert",
        Critical = "critical",
        Error = "error",
        Warning = "warning",
        Notice = "notice",
        Info = "info",
        Debug = "debug",
    }
}

impl EventSeverity {
    /// The syslog severity number (0 emergency … 7 debug).
    pub fn code(self) -> u8 {
        EventSeverity::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or(7) as u8
    }

    /// The severity of syslog number `code` (0 – 7; higher is debug).
    pub fn of_code(code: u8) -> EventSeverity {
        EventSeverity::ALL[usize::from(code.min(7))]
    }

    /// Whether this is at least as severe as `other`.
    pub fn at_least(self, other: EventSeverity) -> bool {
        self.code() <= other.code()
    }
}

named_enum! {
    /// The transport a receiver listens on.
    pub enum ListenProtocol ("protocol") {
        Udp = "udp",
        Tcp = "tcp",
    }
}

/// One listening socket of a receiver: `udp:162`, `tcp:601`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Listen {
    pub protocol: ListenProtocol,
    pub port: u16,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.protocol, self.port)
    }
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Listen, String> {
        let text = text.trim();
        let (protocol, port) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?}: expected udp:PORT or tcp:PORT"))?;
        let protocol = protocol
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: the protocol is udp or tcp"))?;
        let port: u16 = port
            .trim()
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{text:?}: {port:?} is not a port (1-65535)"))?;
        Ok(Listen { protocol, port })
    }
}

impl Serialize for Listen {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Listen, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The lists a command line takes (`udp:514,tcp:601`; `none` or empty for none).
pub fn parse_listens(text: &str) -> Result<Vec<Listen>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut listens: Vec<Listen> = text.split(',').map(str::parse).collect::<Result<_, _>>()?;
    listens.sort();
    listens.dedup();
    Ok(listens)
}

/// The receivers a collector runs: off (empty) by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Receivers {
    /// SNMP traps and informs (UDP; v1, v2c).
    pub traps: Vec<Listen>,
    /// Syslog (RFC 3164 and 5424; UDP, and TCP with octet counting or newline framing).
    pub syslog: Vec<Listen>,
}

/// Most sockets one collector's receivers open.
pub const MAX_LISTENS: usize = 8;

impl Receivers {
    pub fn is_empty(&self) -> bool {
        self.traps.is_empty() && self.syslog.is_empty()
    }

    /// What is wrong with these receivers, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.traps.len() + self.syslog.len() > MAX_LISTENS {
            return Some(format!("at most {MAX_LISTENS} listening sockets"));
        }
        if self.traps.iter().any(|l| l.protocol != ListenProtocol::Udp) {
            return Some("traps are received over UDP only (udp:162)".into());
        }
        let mut all: Vec<&Listen> = self.traps.iter().chain(&self.syslog).collect();
        let count = all.len();
        all.sort();
        all.dedup();
        (all.len() != count).then(|| "a port is listed twice".into())
    }
}

/// One varbind of a trap, as received: its OID, its type and its value as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Varbind {
    pub oid: String,
    /// `integer`, `octet-string`, `oid`, `ip-address`, `counter32`, `gauge32`, `timeticks`,
    /// `counter64`, `opaque`, `null`, …
    #[serde(rename = "type")]
    pub value_type: String,
    pub value: String,
}

/// What a trap said, in one shape for every version (a v1 trap converted as RFC 3584 says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapInfo {
    /// `v1`, `v2c`.
    pub version: String,
    /// Whether it was an inform (acknowledged).
    #[serde(default)]
    pub inform: bool,
    /// snmpTrapOID.
    pub oid: String,
    /// The trap's name when known (`linkDown`, `coldStart`, `upsTrapOnBattery`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// sysUpTime of the sender, hundredths of a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<u64>,
    /// A v1 trap's agent address (its own field, which may differ from the sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_address: Option<String>,
    /// Every varbind, raw (sysUpTime and snmpTrapOID included).
    pub varbinds: Vec<Varbind>,
}

/// What a syslog message said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyslogInfo {
    /// `rfc5424`, `rfc3164`, or `raw` when it follows neither.
    pub format: String,
    pub facility: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// APP-NAME (5424) or TAG (3164): the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msgid: Option<String>,
    /// The time the sender wrote, when it wrote one that reads.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub sent_at: Option<OffsetDateTime>,
}

/// An event as a collector sends it (one `event` line of its outbox, field `doc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectedEvent {
    /// Unique per collector: the server stores an event once, however often it is sent.
    pub uid: String,
    pub kind: EventKind,
    /// The sender's address.
    pub source: String,
    pub severity: EventSeverity,
    /// One line: the message, or the trap's name and varbinds.
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trap: Option<TrapInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogInfo>,
}

impl CollectedEvent {
    /// What sent it, in a word: the trap's name (or OID), the syslog program (or facility).
    pub fn what(&self) -> String {
        match (&self.trap, &self.syslog) {
            (Some(trap), _) if trap.oid.is_empty() => format!("{} (unreadable)", trap.version),
            (Some(trap), _) => trap.name.clone().unwrap_or_else(|| trap.oid.clone()),
            (_, Some(syslog)) => syslog
                .program
                .clone()
                .unwrap_or_else(|| syslog.facility.clone()),
            _ => "-".into(),
        }
    }
}

/// An event as `GET /api/v1/events` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    /// The node whose address sent it; `None`: an unknown sender.
    #[serde(default)]
    pub node_id: Option<i64>,
    #[serde(default)]
    pub node: Option<String>,
    pub collector_id: i64,
    pub collector: String,
    #[serde(flatten)]
    pub event: CollectedEvent,
}

impl Event {
    /// Its node's name, or `unknown ADDRESS` for a sender no node has.
    pub fn sender(&self) -> String {
        self.node
            .clone()
            .unwrap_or_else(|| format!("unknown {}", self.event.source))
    }
}

/// Query of `GET /api/v1/events`: newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
    /// Only events from unknown senders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<bool>,
    /// This severity or worse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<EventSeverity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EventKind>,
    /// Text in the message, the trap's name or OID, the program or the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Received at or after, RFC 3339.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub from: Option<OffsetDateTime>,
    /// Received before, RFC 3339.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub to: Option<OffsetDateTime>,
    /// Only events stored after this id (following: `tail -f`), oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The most events one page lists.
pub const MAX_EVENT_PAGE: u32 = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_read_and_write_back() {
        assert_eq!(
            parse_listens("tcp:601, udp:514,udp:514").unwrap(),
            [
                Listen {
                    protocol: ListenProtocol::Udp,
                    port: 514
                },
                Listen {
                    protocol: ListenProtocol::Tcp,
                    port: 601
                }
            ]
        );
        assert_eq!(parse_listens("none").unwrap(), []);
        for bad in ["514", "sctp:514", "udp:0", "udp:70000"] {
            assert!(parse_listens(bad).is_err(), "{bad}");
        }
        let receivers = Receivers {
            traps: parse_listens("tcp:162").unwrap(),
            syslog: Vec::new(),
        };
        assert!(receivers.problem().unwrap().contains("UDP only"));
        let both = Receivers {
            traps: parse_listens("udp:1162").unwrap(),
            syslog: parse_listens("udp:1162").unwrap(),
        };
        assert!(both.problem().unwrap().contains("twice"));
        let json = serde_json::to_string(&both).unwrap();
        assert_eq!(json, r#"{"traps":["udp:1162"],"syslog":["udp:1162"]}"#);
    }

    #[test]
    fn severities_order_as_syslog_numbers_them() {
        assert_eq!(EventSeverity::of_code(3), EventSeverity::Error);
        assert_eq!(EventSeverity::Warning.code(), 4);
        assert!(EventSeverity::Critical.at_least(EventSeverity::Warning));
        assert!(!EventSeverity::Info.at_least(EventSeverity::Warning));
        assert_eq!(EventSeverity::of_code(99), EventSeverity::Debug);
    }
}
