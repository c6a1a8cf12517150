//! Discovery: scan jobs (what to scan, with which credentials and limits), the work a collector
//! claims and the results it streams back, the discovery inbox, and import. [`AddressSet`] is
//! the one parser of targets: the server counts with it, the collector scans with it, and the
//! console validates a target list as it is typed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{TargetCredential, TemplateDef};

crate::named_enum! {
    /// Where a scan job stands.
    pub enum JobState ("job state") {
        Queued = "queued",
        Running = "running",
        Done = "done",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl JobState {
    /// Whether the job will not change any more.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

crate::named_enum! {
    /// What an operator decided about a found device.
    pub enum DeviceStatus ("device status") {
        /// In the inbox, waiting for a decision.
        New = "new",
        /// Taken into monitoring as a node.
        Imported = "imported",
        /// Not wanted; stays dismissed in later scans of the same collector.
        Dismissed = "dismissed",
    }
}

crate::named_enum! {
    /// How a host showed it is alive.
    pub enum FoundBy ("detection") {
        /// It answered an ICMP echo.
        Icmp = "icmp",
        /// It accepted or refused a TCP connection (a refusal proves a host as well).
        Tcp = "tcp",
        /// Only its SNMP agent answered.
        Snmp = "snmp",
    }
}

/// Scans larger than this many addresses need `force`.
pub const MAX_UNFORCED_ADDRESSES: u64 = 65_536;
/// No scan is larger than this many addresses (a /8).
pub const MAX_ADDRESSES: u64 = 16_777_216;
/// Most target and exclusion entries of one job.
pub const MAX_TARGET_ENTRIES: usize = 1_024;
/// Most credentials a job tries per device.
pub const MAX_JOB_CREDENTIALS: usize = 16;
/// Most devices in one result batch, and most devices imported or dismissed at once.
pub const MAX_BATCH_DEVICES: usize = 1_000;
/// Ports tried by TCP connect when a host does not answer ICMP: SSH, HTTP, HTTPS, Modbus/TCP,
/// Siemens S7 (ISO-TSAP), SNMP over TCP.
pub const DEFAULT_TCP_PORTS: [u16; 7] = [22, 80, 443, 502, 102, 161, 8443];

/// How a job scans. The defaults are gentle on fragile OT gear: every device is asked one
/// thing at a time, and the whole scan sends at most [`ScanOptions::packets_per_second`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanOptions {
    /// Phase 1: ICMP echo.
    pub icmp: bool,
    /// TCP connect to these ports (empty: none): phase 1's fallback for hosts that drop ICMP,
    /// and the services of every host found (a TLS port gets a certificate check proposed).
    pub tcp_ports: Vec<u16>,
    /// Phase 2: SNMP probe of the system group with each credential.
    pub snmp: bool,
    /// Phase 4: reverse DNS of every host found.
    pub reverse_dns: bool,
    /// Addresses worked on at once.
    pub concurrency: u32,
    /// Packets per second at most, over the whole scan (ICMP echoes, TCP SYNs, SNMP requests).
    pub packets_per_second: u32,
    /// Wait for one answer, in milliseconds.
    pub timeout_ms: u32,
    /// Further attempts after a timeout (ICMP and SNMP).
    pub retries: u32,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            icmp: true,
            tcp_ports: DEFAULT_TCP_PORTS.to_vec(),
            snmp: true,
            reverse_dns: true,
            concurrency: 256,
            packets_per_second: 1_000,
            timeout_ms: 1_000,
            retries: 1,
        }
    }
}

/// A comma-separated list of TCP ports (`22,502`); empty or `none`: no port.
pub fn parse_tcp_ports(text: &str) -> Result<Vec<u16>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{p:?} is not a TCP port (1 to 65535)"))
        })
        .collect()
}

impl ScanOptions {
    /// What is wrong with these options, if anything.
    pub fn problem(&self) -> Option<String> {
        if !self.icmp && self.tcp_ports.is_empty() && !self.snmp {
            return Some("nothing to probe: enable icmp, tcp_ports or snmp".into());
        }
        if !(1..=1_024).contains(&self.concurrency) {
            return Some("concurrency must be between 1 and 1024".into());
        }
        if !(1..=100_000).contains(&self.packets_per_second) {
            return Some("packets_per_second must be between 1 and 100000".into());
        }
        if !(50..=30_000).contains(&self.timeout_ms) {
            return Some("timeout_ms must be between 50 and 30000".into());
        }
        if self.retries > 5 {
            return Some("retries must be at most 5".into());
        }
        if self.tcp_ports.len() > 32 {
            return Some("at most 32 tcp_ports".into());
        }
        if self.tcp_ports.contains(&0) {
            return Some("tcp_ports must be between 1 and 65535".into());
        }
        None
    }
}

/// `POST /discovery/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Defaults to the first target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// CIDRs (`10.0.0.0/24`), ranges (`10.0.0.5-10.0.0.80`), single addresses; IPv4 or IPv6.
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusions: Vec<String>,
    /// Name of the collector that runs the scan; the server's local collector when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<String>,
    /// SNMP credential names, tried in this order on every host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
    #[serde(default)]
    pub options: ScanOptions,
    /// Allow more than [`MAX_UNFORCED_ADDRESSES`] addresses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// Scan again this many seconds after each run finishes (e.g. 86400: daily).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_s: Option<u32>,
}

impl JobSpec {
    /// A job scanning `targets` with the default options.
    pub fn new(targets: Vec<String>) -> JobSpec {
        JobSpec {
            name: None,
            targets,
            exclusions: vec![],
            collector: None,
            credentials: vec![],
            options: ScanOptions::default(),
            force: false,
            every_s: None,
        }
    }
}

/// A scan job as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    pub name: String,
    pub collector_id: i64,
    pub collector: String,
    pub targets: Vec<String>,
    pub exclusions: Vec<String>,
    pub credentials: Vec<String>,
    pub options: ScanOptions,
    pub every_s: Option<u32>,
    /// The scheduled job this run repeats.
    pub repeat_of: Option<i64>,
    pub state: JobState,
    /// Addresses to scan, after exclusions.
    pub total: u64,
    /// Addresses scanned so far.
    pub done: u64,
    pub hosts_found: u64,
    pub snmp_identified: u64,
    /// Addresses per second since the job started.
    pub rate: Option<f64>,
    /// Seconds left at the current rate.
    pub eta_s: Option<u64>,
    pub error: Option<String>,
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// When a scheduled job runs again.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run_at: Option<OffsetDateTime>,
}

impl Job {
    /// Share of the addresses scanned, 0.0 to 1.0.
    pub fn progress(&self) -> f64 {
        if self.total == 0 {
            return if self.state.is_finished() { 1.0 } else { 0.0 };
        }
        (self.done as f64 / self.total as f64).clamp(0.0, 1.0)
    }
}

/// `GET /discovery/jobs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// One device a scan found, as the inbox shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: i64,
    pub job_id: i64,
    pub address: String,
    pub dns_name: Option<String>,
    pub sys_name: Option<String>,
    pub sys_descr: Option<String>,
    pub sys_object_id: Option<String>,
    pub sys_location: Option<String>,
    pub sys_contact: Option<String>,
    /// sysUpTime in seconds.
    pub sys_uptime_s: Option<u64>,
    pub vendor: Option<String>,
    /// The template whose fingerprint matched.
    pub template: Option<String>,
    /// The credential that answered SNMP.
    pub credential: Option<String>,
    pub rtt_ms: Option<f64>,
    pub open_ports: Vec<u16>,
    pub found_by: FoundBy,
    /// The node already monitoring this device (same address or sysName).
    pub node_id: Option<i64>,
    pub node: Option<String>,
    /// Seen by an earlier scan of the same collector.
    pub seen_before: bool,
    /// Fields that differ from the earlier scan's answer.
    pub changes: Vec<String>,
    pub status: DeviceStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
}

/// Ports whose answer suggests a TLS service worth a certificate check.
pub const TLS_PORTS: [u16; 4] = [443, 4443, 8443, 9443];

impl Device {
    /// The checks an import adds to the node: a `tls` check for every open TLS port (443,
    /// 4443, 8443, 9443), so its certificate is watched from the start.
    pub fn suggested_checks(&self) -> Vec<super::CheckSpec> {
        self.open_ports
            .iter()
            .filter(|port| TLS_PORTS.contains(port))
            .map(|port| super::CheckSpec {
                port: Some(*port),
                ..super::CheckSpec::new(super::CheckKind::Tls)
            })
            .collect()
    }

    /// Answers Modbus TCP's port (502): a PLC, meter or gateway to read with a Modbus
    /// profile (docs/modbus.md).
    pub fn modbus_candidate(&self) -> bool {
        self.open_ports.contains(&super::modbus::MODBUS_PORT)
    }

    /// The inbox's template column: the template that matched, else `modbus?` for a Modbus
    /// candidate.
    pub fn template_hint(&self) -> String {
        match &self.template {
            Some(template) => template.clone(),
            None if self.modbus_candidate() => "modbus?".into(),
            None => String::new(),
        }
    }

    /// The name an import gives the node: sysName, else the DNS name's host part, else the
    /// address.
    pub fn suggested_name(&self) -> String {
        let clean = |s: &str| s.trim().trim_end_matches('.').to_owned();
        self.sys_name
            .as_deref()
            .map(clean)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                self.dns_name
                    .as_deref()
                    .map(clean)
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| self.address.clone())
    }
}

/// `GET /discovery/jobs/{id}/devices`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeviceStatus>,
    /// Only devices not monitored yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmonitored: Option<bool>,
    /// Substring of address, names, vendor or template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// `address` (numeric order), `name`, `vendor`, `template`, `rtt`; `-` for descending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// `POST /discovery/jobs/{id}/import` and `…/dismiss`: the devices to act on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSelection {
    /// Device ids; with `all`, ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<i64>,
    /// Every device of the job still in the inbox (status new).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// Tags for the imported nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Import without the suggested checks ([`Device::suggested_checks`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_checks: bool,
}

/// What an import did, device by device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceImport {
    /// (device id, node id, node name) of each node created.
    pub created: Vec<ImportedNode>,
    /// Devices left alone, with the reason.
    pub skipped: Vec<SkippedDevice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedNode {
    pub device_id: i64,
    pub node_id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedDevice {
    pub device_id: i64,
    pub address: String,
    pub reason: String,
}

/// `POST …/dismiss`: how many devices were dismissed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dismissed {
    pub dismissed: u64,
}

/// `POST /remote-collectors/{id}/discovery/claim`: the job the collector is to run, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub job: Option<ClaimedJob>,
}

/// Everything a collector needs to run a job, secrets included (sent only to that collector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedJob {
    pub id: i64,
    pub targets: Vec<String>,
    pub exclusions: Vec<String>,
    pub options: ScanOptions,
    /// In the order they are tried.
    pub credentials: Vec<TargetCredential>,
    /// The templates, with their fingerprints only (no metrics).
    pub templates: Vec<TemplateDef>,
    /// Addresses (in scan order) already scanned by an earlier run of this job that stopped,
    /// so a resumed job goes on from there.
    pub resume_at: u64,
}

/// What a collector learned about one live host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_descr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_object_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_uptime_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_ports: Vec<u16>,
    pub found_by: Option<FoundBy>,
}

/// `POST /discovery/jobs/{id}/results`: a batch of results and the progress so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultBatch {
    /// Addresses scanned so far (in total, not in this batch).
    pub done: u64,
    /// Every address before this one (in scan order) is scanned: where a resumed run starts.
    pub resume_at: u64,
    pub devices: Vec<Found>,
    /// The last batch: the scan is over (done, or failed with `error`).
    #[serde(default)]
    pub finished: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to a result batch: whether to go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchAck {
    /// The job was cancelled (or is gone): stop scanning.
    pub stop: bool,
}

/// A set of addresses to scan: targets minus exclusions, as sorted disjoint ranges, walked in
/// order (IPv4 first). Parsing is strict and says which entry is wrong and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressSet {
    /// Inclusive ranges of IPv4 addresses (as u32, widened), then of IPv6 (as u128).
    v4: Vec<(u128, u128)>,
    v6: Vec<(u128, u128)>,
}

/// One entry of a target list that is not an address, range or CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?}: {reason}")]
pub struct TargetError {
    pub entry: String,
    pub reason: String,
}

fn parse_entry(entry: &str, target: bool) -> Result<(bool, u128, u128), TargetError> {
    let err = |reason: &str| TargetError {
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    };
    let text = entry.trim();
    if text.is_empty() {
        return Err(err("empty entry"));
    }
    if let Some((from, to)) = text.split_once('-') {
        let from: IpAddr = from
            .trim()
            .parse()
            .map_err(|_| err("the start of the range is not an IP address"))?;
        let to: IpAddr = to
            .trim()
            .parse()
            .map_err(|_| err("the end of the range is not an IP address"))?;
        let (v4, a) = number(from);
        let (v4_to, b) = number(to);
        if v4 != v4_to {
            return Err(err("a range must not mix IPv4 and IPv6"));
        }
        if a > b {
            return Err(err("the range ends before it starts"));
        }
        return Ok((v4, a, b));
    }
    if text.contains('/') {
        let net: IpNet = text
            .parse()
            .map_err(|_| err("not a CIDR (address/prefix length)"))?;
        if net.network() != net.addr() {
            return Err(err(&format!(
                "host bits are set; the network is {}",
                net.trunc()
            )));
        }
        let (v4, a) = number(net.network());
        let (_, b) = number(net.broadcast());
        // A /31 or /32 (and IPv6 /127, /128) scans every address; larger IPv4 networks skip
        // their network and broadcast addresses (an excluded network excludes all of it).
        if target && v4 && net.prefix_len() < 31 {
            return Ok((v4, a + 1, b - 1));
        }
        return Ok((v4, a, b));
    }
    let ip: IpAddr = text
        .parse()
        .map_err(|_| err("not an IP address, range (a-b) or CIDR (a/n)"))?;
    let (v4, n) = number(ip);
    Ok((v4, n, n))
}

fn number(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(ip) => (true, u128::from(u32::from(ip))),
        IpAddr::V6(ip) => (false, u128::from(ip)),
    }
}

/// Sorts and merges inclusive ranges.
fn normalise(mut ranges: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    ranges.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// `ranges` minus `minus` (both normalised).
fn subtract(ranges: &[(u128, u128)], minus: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    for &(a, b) in ranges {
        // The first address of (a, b) not yet taken or excluded; None past the end.
        let mut start = Some(a);
        for &(x, y) in minus {
            let Some(from) = start else { break };
            if y < from || x > b {
                continue;
            }
            if x > from {
                out.push((from, x - 1));
            }
            start = if y >= b { None } else { Some(y + 1) };
        }
        if let Some(from) = start {
            out.push((from, b));
        }
    }
    out
}

/// Inclusive ranges of addresses as numbers.
type Ranges = Vec<(u128, u128)>;

/// Parses entries into normalised IPv4 and IPv6 ranges. A list pasted with commas or spaces
/// in one entry is accepted as well.
fn split<'a>(
    entries: impl Iterator<Item = &'a str>,
    target: bool,
) -> Result<(Ranges, Ranges), TargetError> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for entry in entries {
        for part in entry
            .split([',', ' ', '\n', '\t'])
            .filter(|p| !p.is_empty())
        {
            let (is_v4, a, b) = parse_entry(part, target)?;
            if is_v4 {
                v4.push((a, b));
            } else {
                v6.push((a, b));
            }
        }
    }
    Ok((normalise(v4), normalise(v6)))
}

fn size(ranges: &[(u128, u128)]) -> u128 {
    ranges
        .iter()
        .map(|(a, b)| (b - a).saturating_add(1))
        .fold(0u128, u128::saturating_add)
}

impl AddressSet {
    /// Parses `targets` minus `exclusions`.
    pub fn parse(
        targets: &[impl AsRef<str>],
        exclusions: &[impl AsRef<str>],
    ) -> Result<AddressSet, TargetError> {
        let (t4, t6) = split(targets.iter().map(AsRef::as_ref), true)?;
        let (x4, x6) = split(exclusions.iter().map(AsRef::as_ref), false)?;
        Ok(AddressSet {
            v4: subtract(&t4, &x4),
            v6: subtract(&t6, &x6),
        })
    }

    /// How many addresses (saturating at `u64::MAX`).
    pub fn len(&self) -> u64 {
        u64::try_from(size(&self.v4).saturating_add(size(&self.v6))).unwrap_or(u64::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Why this set may not be scanned, if it may not: empty, or too large.
    pub fn size_problem(&self, force: bool) -> Option<String> {
        let len = self.len();
        if len == 0 {
            return Some("no address to scan (the exclusions cover every target)".into());
        }
        if len > MAX_ADDRESSES {
            return Some(format!(
                "{len} addresses is more than the {MAX_ADDRESSES} (a /8) a scan may cover"
            ));
        }
        if len > MAX_UNFORCED_ADDRESSES && !force {
            return Some(format!(
                "{len} addresses is more than {MAX_UNFORCED_ADDRESSES} (a /16); split the scan or force it"
            ));
        }
        None
    }

    /// The addresses from position `skip` on, in order.
    pub fn iter_from(&self, skip: u64) -> impl Iterator<Item = IpAddr> + '_ {
        let v4 = self.v4.iter().flat_map(|&(a, b)| {
            (a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX))))
        });
        let v6 = self
            .v6
            .iter()
            .flat_map(|&(a, b)| (a..=b).map(|n| IpAddr::V6(Ipv6Addr::from(n))));
        v4.chain(v6)
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(targets: &[&str], exclusions: &[&str]) -> AddressSet {
        AddressSet::parse(targets, exclusions).unwrap()
    }

    fn addrs(s: &AddressSet) -> Vec<String> {
        s.iter_from(0).map(|a| a.to_string()).collect()
    }

    #[test]
    fn cidrs_ranges_and_addresses_merge_and_exclusions_subtract() {
        let s = set(
            &["10.0.0.0/30", "10.0.0.2-10.0.0.5", "10.0.0.9"],
            &["10.0.0.4"],
        );
        assert_eq!(
            addrs(&s),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.9"]
        );
        assert_eq!(s.len(), 5);
        assert_eq!(set(&["10.0.0.0/24"], &[]).len(), 254);
        assert_eq!(set(&["10.0.0.7/32"], &[]).len(), 1);
        assert_eq!(set(&["10.0.0.0/16"], &["10.0.1.0/24"]).len(), 65_534 - 256);
        assert_eq!(set(&["10.0.0.0/24"], &["10.0.0.0/25"]).len(), 127);
        let s = set(&["fd00::1", "fd00::10-fd00::12", "10.1.1.1"], &["fd00::11"]);
        assert_eq!(addrs(&s), ["10.1.1.1", "fd00::1", "fd00::10", "fd00::12"]);
        assert_eq!(s.iter_from(2).next().unwrap().to_string(), "fd00::10");
        // A comma- or space-separated list in one entry.
        assert_eq!(set(&["10.0.0.1, 10.0.0.2 10.0.0.3"], &[]).len(), 3);
    }

    #[test]
    fn sizes_are_checked_against_the_limits() {
        assert!(set(&["10.0.0.0/16"], &[]).size_problem(false).is_none());
        let big = set(&["10.0.0.0/15"], &[]);
        assert!(big.size_problem(false).unwrap().contains("force"));
        assert!(big.size_problem(true).is_none());
        let huge = set(&["10.0.0.0/7"], &[]);
        assert!(huge.size_problem(true).unwrap().contains("a /8"));
        assert_eq!(set(&["fd00::/64"], &[]).len(), u64::MAX);
        assert!(set(&["fd00::/64"], &[]).size_problem(true).is_some());
        assert!(
            set(&["10.0.0.0/24"], &["10.0.0.0/16"])
                .size_problem(false)
                .unwrap()
                .contains("no address")
        );
    }

    #[test]
    fn tcp_port_lists_parse_or_say_which_port_is_wrong() {
        assert_eq!(parse_tcp_ports("22, 502,102"), Ok(vec![22, 502, 102]));
        assert_eq!(parse_tcp_ports("none"), Ok(vec![]));
        assert_eq!(parse_tcp_ports(""), Ok(vec![]));
        assert!(parse_tcp_ports("22,0").unwrap_err().contains("\"0\""));
        assert!(parse_tcp_ports("22,http").unwrap_err().contains("http"));
        assert!(parse_tcp_ports("70000").is_err());
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let problem = |t: &str| AddressSet::parse(&[t], &[] as &[&str]).unwrap_err().reason;
        assert!(problem("10.0.0.300").contains("not an IP address"));
        assert!(problem("10.0.0.9-10.0.0.1").contains("ends before"));
        assert!(problem("10.0.0.1/24").contains("10.0.0.0/24"));
        assert!(problem("10.0.0.0/33").contains("CIDR"));
        assert!(problem("10.0.0.1-fd00::1").contains("mix"));
    }
}
