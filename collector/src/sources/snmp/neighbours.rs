//! The neighbour tables of a device: LLDP-MIB (its own chassis id, system name and ports; the
//! remote table and the remotes' management addresses) and CISCO-CDP-MIB's cache, read into
//! one [`NeighbourReport`].

use std::collections::BTreeMap;

use plantwatch_shared::api::{
    MAX_NEIGHBOUR_ROWS, NeighbourProtocol, NeighbourReport, NeighbourRow,
};

use super::decode::{Oid, Value, parse_oid};
use super::session::{Session, SnmpError};
use super::walk;

/// lldpLocalSystemData: chassis id subtype, chassis id, system name.
const LLDP_LOC: &str = "1.0.8802.1.1.2.1.3";
/// lldpLocPortTable columns: port id, port description (index: local port number).
const LLDP_LOC_PORT_ID: &str = "1.0.8802.1.1.2.1.3.7.1.3";
const LLDP_LOC_PORT_DESC: &str = "1.0.8802.1.1.2.1.3.7.1.4";
/// lldpRemTable (index: time mark, local port number, remote index).
const LLDP_REM: &str = "1.0.8802.1.1.2.1.4.1.1";
/// lldpRemManAddrIfSubtype (index: the remote's index, then subtype, length and address).
const LLDP_REM_MAN_ADDR: &str = "1.0.8802.1.1.2.1.4.2.1.3";
/// cdpCacheTable (index: ifIndex, device index).
const CDP_CACHE: &str = "1.3.6.1.4.1.9.9.23.1.2.1.1";
/// ifName, then ifDescr: the names of the ports CDP names by ifIndex.
const IF_NAME: &str = "1.3.6.1.2.1.31.1.1.1.1";
const IF_DESCR: &str = "1.3.6.1.2.1.2.2.1.2";

/// Chassis and port id subtypes that are MAC addresses (LLDP-MIB: chassis 4, port 3).
const CHASSIS_MAC: i64 = 4;
const PORT_MAC: i64 = 3;

fn oid(text: &str) -> Oid {
    parse_oid(text).unwrap_or_default()
}

fn column(table: &str, n: u64) -> Oid {
    let mut oid = oid(table);
    oid.push(n);
    oid
}

/// `aa:bb:cc:dd:ee:ff`.
fn mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An id as text: a MAC when its subtype says so (or it is six bytes that are no text),
/// printable text as it is, anything else in hex.
fn id_text(value: Option<&Value>, subtype: Option<i64>, mac_subtype: i64) -> Option<String> {
    let Value::Octets(bytes) = value? else {
        return value?.as_text();
    };
    let printable = !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    if subtype == Some(mac_subtype) && bytes.len() == 6 || (!printable && bytes.len() == 6) {
        return Some(mac(bytes));
    }
    if printable {
        return Value::Octets(bytes.clone()).as_text();
    }
    // Some agents pad text with NULs (ProCurve's "17\0\0…").
    let trimmed: Vec<u8> = bytes.iter().copied().take_while(|b| *b != 0).collect();
    if !trimmed.is_empty() && trimmed.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Value::Octets(trimmed).as_text();
    }
    (!bytes.is_empty()).then(|| mac(bytes))
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_text)
}

fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Integer(v) => Some(*v),
        other => other.as_f64().map(|v| v as i64),
    }
}

/// Reads the neighbour tables `protocols` names on the device behind `session`.
pub async fn read(
    session: &mut Session,
    node_id: i64,
    protocols: &[NeighbourProtocol],
) -> Result<NeighbourReport, SnmpError> {
    let mut report = NeighbourReport {
        node_id,
        chassis_id: None,
        sys_name: None,
        rows: Vec::new(),
    };
    if protocols.contains(&NeighbourProtocol::Lldp) {
        lldp(session, &mut report).await?;
    }
    if protocols.contains(&NeighbourProtocol::Cdp) {
        cdp(session, &mut report).await?;
    }
    report.rows.truncate(MAX_NEIGHBOUR_ROWS);
    Ok(report)
}

async fn lldp(session: &mut Session, report: &mut NeighbourReport) -> Result<(), SnmpError> {
    let local = [1, 2, 3].map(|n| {
        let mut o = column(LLDP_LOC, n);
        o.push(0);
        o
    });
    let values = walk::get(session, &local).await?;
    report.chassis_id = id_text(
        values.get(&local[1]),
        integer(values.get(&local[0])),
        CHASSIS_MAC,
    );
    report.sys_name = text(values.get(&local[2]));
    // A local port number is the port's ifIndex on the agents seen (Junos, NX-OS, ProCurve):
    // its ifName is the name people know; else the port's description, else its id.
    let ports = walk::walk_columns(
        session,
        &[oid(LLDP_LOC_PORT_ID), oid(LLDP_LOC_PORT_DESC), oid(IF_NAME)],
    )
    .await?;
    let port_name = |local_port: u64| {
        let key = vec![local_port];
        text(ports[2].get(&key))
            .or_else(|| text(ports[1].get(&key)))
            .or_else(|| id_text(ports[0].get(&key), None, PORT_MAC))
            .unwrap_or_else(|| local_port.to_string())
    };
    // Subtype, chassis id, port id subtype, port id, port description, system name.
    let columns: Vec<Oid> = (4..=9).map(|n| column(LLDP_REM, n)).collect();
    let rem = walk::walk_columns(session, &columns).await?;
    let addresses = walk::walk_columns(session, &[oid(LLDP_REM_MAN_ADDR)]).await?;
    // The first IPv4 management address of each remote (time mark, port, index).
    let mut address_of: BTreeMap<Oid, String> = BTreeMap::new();
    for index in addresses[0].keys() {
        if index.len() == 9 && index[3] == 1 && index[4] == 4 {
            let ip = format!("{}.{}.{}.{}", index[5], index[6], index[7], index[8]);
            address_of.entry(index[..3].to_vec()).or_insert(ip);
        }
    }
    let keys: Vec<Oid> = rem
        .iter()
        .flat_map(|c| c.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| k.len() == 3)
        .collect();
    for key in keys {
        let get = |c: usize| rem[c].get(&key);
        report.rows.push(NeighbourRow {
            protocol: NeighbourProtocol::Lldp,
            local_port: port_name(key[1]),
            chassis_id: id_text(get(1), integer(get(0)), CHASSIS_MAC),
            port: id_text(get(3), integer(get(2)), PORT_MAC),
            port_descr: text(get(4)),
            sys_name: text(get(5)),
            address: address_of.get(&key).cloned(),
            platform: None,
        });
    }
    Ok(())
}

async fn cdp(session: &mut Session, report: &mut NeighbourReport) -> Result<(), SnmpError> {
    // Address type, address, version, device id, device port, platform.
    let columns: Vec<Oid> = [3, 4, 6, 7, 8].map(|n| column(CDP_CACHE, n)).to_vec();
    let cache = walk::walk_columns(session, &columns).await?;
    let keys: Vec<Oid> = cache
        .iter()
        .flat_map(|c| c.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| k.len() == 2)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let names = walk::walk_columns(session, &[oid(IF_NAME), oid(IF_DESCR)]).await?;
    for key in keys {
        let get = |c: usize| cache[c].get(&key);
        let if_index = vec![key[0]];
        let address = match (integer(get(0)), get(1)) {
            (Some(1), Some(Value::Octets(ip))) if ip.len() == 4 => {
                Some(format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]))
            }
            _ => None,
        };
        report.rows.push(NeighbourRow {
            protocol: NeighbourProtocol::Cdp,
            local_port: text(names[0].get(&if_index))
                .or_else(|| text(names[1].get(&if_index)))
                .unwrap_or_else(|| key[0].to_string()),
            chassis_id: None,
            port: text(get(3)),
            port_descr: None,
            sys_name: text(get(2)),
            address,
            platform: text(get(4)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_as_macs_or_text() {
        let octets = |b: &[u8]| Value::Octets(b.to_vec());
        let mac_bytes = [0xa8, 0xd0, 0xe5, 0xf6, 0x17, 0xc0];
        assert_eq!(
            id_text(Some(&octets(&mac_bytes)), Some(4), CHASSIS_MAC).as_deref(),
            Some("a8:d0:e5:f6:17:c0")
        );
        assert_eq!(
            id_text(Some(&octets(b"Eth1/19")), Some(7), PORT_MAC).as_deref(),
            Some("Eth1/19")
        );
        // A printable six-byte id stays text unless its subtype says MAC.
        assert_eq!(
            id_text(Some(&octets(b"ge-0/0")), Some(5), PORT_MAC).as_deref(),
            Some("ge-0/0")
        );
        assert_eq!(
            id_text(Some(&octets(b"17\0\0\0\0\0\0\0")), Some(7), PORT_MAC).as_deref(),
            Some("17")
        );
    }
}

/// Against snmpsim serving recordings of real devices (snmpsim-data).
#[cfg(test)]
mod real {
    use std::sync::Arc;
    use std::time::Duration;

    use plantwatch_testkit::snmp;

    use super::*;
    use crate::sources::snmp::session::{Auth, Limits};

    async fn report_of(recording: &str, protocols: &[NeighbourProtocol]) -> NeighbourReport {
        let data = tempfile::tempdir().unwrap();
        snmp::stage_recording(recording, data.path(), "device");
        let agent = tokio::task::spawn_blocking({
            let path = data.path().to_owned();
            move || snmp::snmpsim(&path, "device")
        })
        .await
        .unwrap();
        let limits = Limits {
            timeout: Duration::from_secs(5),
            retries: 1,
            in_flight: Arc::new(tokio::sync::Semaphore::new(16)),
        };
        let mut session = Session::new(
            agent.address.parse().unwrap(),
            Auth::V2c(b"device".to_vec()),
            limits,
        );
        read(&mut session, 7, protocols).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_juniper_reads_its_lldp_neighbours_by_port_name() {
        let report = report_of(
            "network/router/juniper-mx960-12-3r6-6",
            &[NeighbourProtocol::Lldp],
        )
        .await;
        assert_eq!(
            (report.chassis_id.as_deref(), report.sys_name.as_deref()),
            (Some("a8:d0:e5:f6:17:c0"), Some("re0-SNNU-YT-CORE-1"))
        );
        assert_eq!(report.rows.len(), 13, "{:#?}", report.rows);
        let ca = report
            .rows
            .iter()
            .find(|r| r.sys_name.as_deref() == Some("re0-SNNU-CA-CORE-1"))
            .unwrap();
        assert_eq!(ca.local_port, "xe-1/2/0");
        assert_eq!(ca.chassis_id.as_deref(), Some("a8:d0:e5:f5:af:c0"));
        assert_eq!(
            ca.port_descr.as_deref(),
            Some("Connect to SNNU-YT-CORE-1::xe-1/2/0")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_procurve_names_its_nexus_and_a_catalyst_its_cdp_cache() {
        let procurve = report_of(
            "network/switch/hpe-procurve-516733-b21",
            &[NeighbourProtocol::Lldp],
        )
        .await;
        assert_eq!(procurve.chassis_id.as_deref(), Some("ac:16:2d:92:7d:21"));
        let nexus: Vec<_> = procurve
            .rows
            .iter()
            .filter(|r| r.local_port == "17")
            .collect();
        assert_eq!(nexus.len(), 2, "{nexus:#?}");
        assert_eq!(nexus[0].sys_name.as_deref(), Some("NWPU-CA-5548-01"));
        assert_eq!(nexus[0].port.as_deref(), Some("Eth1/19"));
        assert_eq!(nexus[0].address.as_deref(), Some("10.40.1.19"));

        let catalyst = report_of("network/switch/cisco-c3750", &[NeighbourProtocol::Cdp]).await;
        assert_eq!(catalyst.rows.len(), 125);
        // The first cache row: an access point on port Gi1/0/1.
        assert_eq!(
            catalyst.rows[0],
            NeighbourRow {
                protocol: NeighbourProtocol::Cdp,
                local_port: "Gi1/0/1".into(),
                chassis_id: None,
                port: Some("GigabitEthernet0".into()),
                port_descr: None,
                sys_name: Some("E-DJ-1F-101indoor".into()),
                address: Some("172.28.2.68".into()),
                platform: Some("cisco AIR-CAP1602I-C-K9".into()),
            }
        );
        assert!(
            catalyst
                .rows
                .iter()
                .all(|r| r.protocol == NeighbourProtocol::Cdp && r.sys_name.is_some())
        );
    }
}
