//! The SNMP trap receiver: v1 traps (converted to the v2 shape as RFC 3584 says), v2c traps,
//! and informs, acknowledged with a response. The PDU is read by snmp2's parser. The community
//! is not checked (a trap receiver that drops what it cannot place loses the one message that
//! mattered) and never kept: it is a secret.

use std::net::IpAddr;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use plantwatch_shared::api::{
    CollectedEvent, CollectorConfig, CredentialKind, EventKind, EventSeverity, TargetCredential,
    TrapInfo, Varbind, trap_by_oid,
};
use snmp2::v3::Security;
use snmp2::{AsnReader, MessageType, Pdu, asn1};
use time::OffsetDateTime;
use tokio::net::UdpSocket;

use super::{Sink, bounded};
use crate::sources::snmp::decode::{Value, format_oid};
use crate::sources::snmp::session::Auth;

/// sysUpTime.0, snmpTrapOID.0, and what RFC 3584 adds to a converted v1 trap.
const SYS_UPTIME: &str = "1.3.6.1.2.1.1.3.0";
const SNMP_TRAP_OID: &str = "1.3.6.1.6.3.1.1.4.1.0";
const SNMP_TRAP_ADDRESS: &str = "1.3.6.1.6.3.18.1.3.0";
const SNMP_TRAP_ENTERPRISE: &str = "1.3.6.1.6.3.1.1.4.3.0";
/// The generic traps' OIDs: snmpTraps.(generic + 1).
const SNMP_TRAPS: &str = "1.3.6.1.6.3.1.1.5";
/// Most varbinds kept of one trap.
const MAX_VARBINDS: usize = 128;

/// Receives on `socket` until aborted.
pub async fn receive(socket: UdpSocket, sink: Sink, usm: Usm) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(error) => {
                tracing::debug!(%error, "Trap socket error.");
                continue;
            }
        };
        if !sink.admit(from.ip().to_canonical()) {
            continue;
        }
        match read(
            &mut buf[..len],
            from.ip().to_canonical(),
            &sink,
            &usm,
            OffsetDateTime::now_utc(),
        ) {
            Ok((event, ack)) => {
                if let Some(ack) = ack
                    && socket.send_to(&ack, from).await.is_ok()
                {
                    sink.counts
                        .acknowledged
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                sink.send(&event).await;
            }
            Err(problem) => {
                sink.counts
                    .malformed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(%from, %problem, "Not a trap.");
            }
        }
    }
}

/// The event a datagram from `from` holds, and the answer an inform wants.
pub fn read(
    bytes: &mut [u8],
    from: IpAddr,
    sink: &Sink,
    usm: &Usm,
    now: OffsetDateTime,
) -> Result<(CollectedEvent, Option<Vec<u8>>), String> {
    let mut security = None;
    if let Some((engine, user)) = v3_header(bytes) {
        match usm.security(&engine, &user) {
            Ok(found) => security = Some(found),
            Err(problem) => return Ok((unreadable_v3(from, &problem, sink.uid(), now), None)),
        }
    }
    let v3 = security.is_some();
    let bytes: &[u8] = bytes;
    let pdu = match security.as_mut() {
        Some(security) => Pdu::from_bytes_with_security(bytes, Some(security))
            .map_err(|e| format!("an SNMPv3 trap that does not authenticate or decrypt: {e:?}")),
        None => Pdu::from_bytes(bytes).map_err(|e| format!("unreadable SNMP message: {e:?}")),
    };
    let pdu = match pdu {
        Ok(pdu) => pdu,
        Err(problem) if v3 => return Ok((unreadable_v3(from, &problem, sink.uid(), now), None)),
        Err(problem) => return Err(problem),
    };
    let varbinds: Vec<Varbind> = pdu
        .varbinds
        .clone()
        .take(MAX_VARBINDS)
        .map(|(oid, value)| varbind(&oid_text(&oid), &Value::from_snmp(&value)))
        .collect();
    let (trap, ack) = match pdu.message_type {
        MessageType::TrapV1 => {
            let info = pdu
                .v1_trap_info
                .as_ref()
                .ok_or("a v1 trap without its header")?;
            (v1(info, varbinds), None)
        }
        MessageType::InformRequest if v3 => {
            return Err("an SNMPv3 inform (not supported: send v3 traps)".into());
        }
        MessageType::Trap | MessageType::InformRequest => {
            let inform = pdu.message_type == MessageType::InformRequest;
            let oid = varbinds
                .iter()
                .find(|v| v.oid == SNMP_TRAP_OID)
                .map(|v| v.value.clone())
                .ok_or("a trap without snmpTrapOID.0")?;
            let uptime = varbinds
                .iter()
                .find(|v| v.oid == SYS_UPTIME)
                .and_then(|v| v.value.parse().ok());
            let ack = if inform {
                let mut response = pdu.clone();
                response.message_type = MessageType::Response;
                Some(response.to_bytes().map_err(|e| format!("{e:?}"))?)
            } else {
                None
            };
            let trap = TrapInfo {
                version: if v3 { "v3" } else { "v2c" }.into(),
                inform,
                oid,
                name: None,
                uptime,
                agent_address: None,
                varbinds,
            };
            (trap, ack)
        }
        other => return Err(format!("a {other:?}, not a trap")),
    };
    Ok((event(trap, from, sink.uid(), now), ack))
}

/// The SNMPv3 users a collector knows: those of the v3 credentials in its configuration
/// (the credentials of its own nodes), their keys localized once per sending engine.
#[derive(Clone, Default)]
pub struct Usm(Arc<Mutex<UsmState>>);

#[derive(Default)]
struct UsmState {
    /// What the users were made from (the credentials, as JSON): unchanged, nothing to do.
    made_of: String,
    users: Vec<Security>,
    /// (user, engine id) → the user's security with its keys localized to that engine.
    localized: HashMap<(Vec<u8>, Vec<u8>), Security>,
}

/// Most (user, engine) pairs whose keys are kept.
const MAX_LOCALIZED: usize = 4_096;

impl Usm {
    /// Takes the v3 users of `config`'s credentials.
    pub fn set(&self, config: &CollectorConfig) {
        let v3: Vec<&TargetCredential> = config
            .credentials
            .iter()
            .filter(|c| c.kind == CredentialKind::SnmpV3)
            .collect();
        let made_of = serde_json::to_string(&v3).unwrap_or_default();
        let Ok(mut state) = self.0.lock() else {
            return;
        };
        if state.made_of == made_of {
            return;
        }
        state.users = v3
            .into_iter()
            .filter_map(|c| match Auth::from_credential(c) {
                Ok(Auth::V3(security)) => Some(*security),
                _ => None,
            })
            .collect();
        state.localized.clear();
        state.made_of = made_of;
    }

    /// User `user`'s security for a trap from engine `engine`; why not, when there is none.
    fn security(&self, engine: &[u8], user: &[u8]) -> Result<Security, String> {
        let mut state = self.0.lock().map_err(|_| "the user table is unusable")?;
        let key = (user.to_vec(), engine.to_vec());
        if let Some(found) = state.localized.get(&key) {
            return Ok(found.clone());
        }
        let name = String::from_utf8_lossy(user).into_owned();
        let base = state
            .users
            .iter()
            .find(|s| s.username() == user)
            .ok_or_else(|| {
                format!(
                    "unknown SNMPv3 user '{name}' (give a node of this collector a v3 credential \
                     with that user)"
                )
            })?;
        if engine.is_empty() {
            return Err(format!(
                "an SNMPv3 trap of user '{name}' without an engine id"
            ));
        }
        // Traps come from the sender's own engine: its id localizes the keys; its boots and
        // time are taken as they come (a trap is not checked against a time window).
        let security = base
            .clone()
            .with_engine_id(engine)
            .map_err(|e| format!("the keys of user '{name}' cannot be made: {e:?}"))?
            .with_engine_boots_and_time(1, 0);
        if state.localized.len() >= MAX_LOCALIZED {
            state.localized.clear();
        }
        state.localized.insert(key, security.clone());
        Ok(security)
    }
}

/// The engine id and user name of an SNMPv3 message; `None` for other versions.
fn v3_header(bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let message = AsnReader::from_bytes(bytes)
        .read_raw(asn1::TYPE_SEQUENCE)
        .ok()?;
    let mut reader = AsnReader::from_bytes(message);
    if reader.read_asn_integer().ok()? != 3 {
        return None;
    }
    reader.read_raw(asn1::TYPE_SEQUENCE).ok()?;
    let params = reader.read_asn_octetstring().ok()?;
    let params = AsnReader::from_bytes(params)
        .read_raw(asn1::TYPE_SEQUENCE)
        .ok()?;
    let mut params = AsnReader::from_bytes(params);
    let engine = params.read_asn_octetstring().ok()?.to_vec();
    params.read_asn_integer().ok()?;
    params.read_asn_integer().ok()?;
    let user = params.read_asn_octetstring().ok()?.to_vec();
    Some((engine, user))
}

/// An SNMPv3 trap that could not be read (unknown user, wrong keys): kept as an event, so a
/// device configured with the wrong credential is seen rather than ignored.
fn unreadable_v3(from: IpAddr, problem: &str, uid: String, now: OffsetDateTime) -> CollectedEvent {
    CollectedEvent {
        uid,
        kind: EventKind::Trap,
        source: from.to_string(),
        severity: EventSeverity::Warning,
        message: format!("unreadable SNMPv3 trap: {problem}"),
        received_at: now,
        trap: Some(TrapInfo {
            version: "v3".into(),
            inform: false,
            oid: String::new(),
            name: None,
            uptime: None,
            agent_address: None,
            varbinds: Vec::new(),
        }),
        syslog: None,
    }
}

/// A v1 trap in the v2 shape (RFC 3584 §3.1): its OID from the generic and specific codes,
/// sysUpTime and snmpTrapOID first, the agent address and enterprise appended.
fn v1(info: &snmp2::pdu::V1TrapInfo<'_>, varbinds: Vec<Varbind>) -> TrapInfo {
    let enterprise = oid_text(&info.enterprise);
    let oid = if (0..6).contains(&info.generic_trap) {
        format!("{SNMP_TRAPS}.{}", info.generic_trap + 1)
    } else {
        format!("{enterprise}.0.{}", info.specific_trap)
    };
    let agent = info.agent_addr.to_string();
    let mut all = vec![
        varbind(SYS_UPTIME, &Value::Timeticks(info.timestamp)),
        varbind(SNMP_TRAP_OID, &Value::Oid(parse(&oid))),
    ];
    all.extend(varbinds);
    all.push(Varbind {
        oid: SNMP_TRAP_ADDRESS.into(),
        value_type: "ip-address".into(),
        value: agent.clone(),
    });
    all.push(varbind(
        SNMP_TRAP_ENTERPRISE,
        &Value::Oid(parse(&enterprise)),
    ));
    TrapInfo {
        version: "v1".into(),
        inform: false,
        oid,
        name: None,
        uptime: Some(u64::from(info.timestamp)),
        agent_address: Some(agent),
        varbinds: all,
    }
}

fn parse(oid: &str) -> Vec<u64> {
    crate::sources::snmp::decode::parse_oid(oid).unwrap_or_default()
}

/// The event of `trap`: named and rated when it is a known one, its varbinds in the message.
fn event(mut trap: TrapInfo, source: IpAddr, uid: String, now: OffsetDateTime) -> CollectedEvent {
    let known = trap_by_oid(&trap.oid);
    trap.name = known.map(|(name, _)| name.to_owned());
    let severity = known.map_or(EventSeverity::Notice, |(_, severity)| severity);
    let mut message = trap.name.clone().unwrap_or_else(|| trap.oid.clone());
    for varbind in trap
        .varbinds
        .iter()
        .filter(|v| {
            ![
                SYS_UPTIME,
                SNMP_TRAP_OID,
                SNMP_TRAP_ADDRESS,
                SNMP_TRAP_ENTERPRISE,
            ]
            .contains(&v.oid.as_str())
        })
        .take(8)
    {
        message.push_str(&format!(
            " {}={}",
            varbind.oid,
            bounded(&varbind.value, 120)
        ));
    }
    CollectedEvent {
        uid,
        kind: EventKind::Trap,
        source: source.to_string(),
        severity,
        message,
        received_at: now,
        trap: Some(trap),
        syslog: None,
    }
}

fn oid_text(oid: &snmp2::Oid<'_>) -> String {
    oid.iter()
        .map(|parts| format_oid(&parts.collect::<Vec<u64>>()))
        .unwrap_or_default()
}

fn varbind(oid: &str, value: &Value) -> Varbind {
    let value_type = match value {
        Value::Integer(_) => "integer",
        Value::Unsigned(_) => "gauge32",
        Value::Counter32(_) => "counter32",
        Value::Counter64(_) => "counter64",
        Value::Timeticks(_) => "timeticks",
        Value::Octets(_) => "octet-string",
        Value::Oid(_) => "oid",
        Value::Ip(_) => "ip-address",
        Value::Null => "null",
        Value::Missing => "no-such-object",
        Value::EndOfMibView => "end-of-mib-view",
    };
    let text = match value {
        // Bytes that are no text (a MAC, a binary status) as hex, so nothing is lost.
        Value::Octets(bytes) if std::str::from_utf8(bytes).is_err() => hex::encode(bytes),
        Value::Octets(bytes) => bounded(&String::from_utf8_lossy(bytes), 1_024),
        other => other.as_text().unwrap_or_default(),
    };
    Varbind {
        oid: oid.to_owned(),
        value_type: value_type.into(),
        value: text,
    }
}
