//! Names of the measurements and fields that more than one binary spells: the collectors and
//! the agent write them, the evaluator's built-in rules read them, the templates collect them.
//! A measurement is a line protocol measurement (`ping`); a metric is `measurement.field`
//! (`ping.up`), the name a rule and a series use.

/// One field of one measurement, and the metric name they make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub measurement: &'static str,
    pub field: &'static str,
    /// `measurement.field`.
    pub name: &'static str,
}

macro_rules! metrics {
    ($($(#[$doc:meta])* $constant:ident = $measurement:literal . $field:literal;)*) => {
        $($(#[$doc])* pub const $constant: Metric = Metric {
            measurement: $measurement,
            field: $field,
            name: concat!($measurement, ".", $field),
        };)*
        /// Every metric named here.
        pub const ALL: &[Metric] = &[$($constant,)*];
    };
}

/// `windows_service.state` of a running service (`SERVICE_RUNNING`).
pub const WINDOWS_SERVICE_RUNNING: u32 = 4;

/// A `windows_service.state` in words: `stopped`, `starting`, … `paused`.
pub fn windows_service_state_name(state: u32) -> Option<&'static str> {
    Some(match state {
        1 => "stopped",
        2 => "starting",
        3 => "stopping",
        4 => "running",
        5 => "resuming",
        6 => "pausing",
        7 => "paused",
        _ => return None,
    })
}

/// Measurement of a collector's ping of a node.
pub const PING: &str = "ping";
/// Measurement of a collector's SNMP poll of a node.
pub const SNMP: &str = "snmp";
/// Measurement of a collector's service checks.
pub const CHECK: &str = "check";
/// Not a metric: a line of this measurement carries one event a collector received (a trap,
/// a syslog message) through its outbox, as the JSON of a `CollectedEvent` in the field `doc`.
pub const EVENT: &str = "event";
/// Not a metric: a line of this measurement carries one node's LLDP/CDP neighbour table, as
/// the JSON of a `NeighbourReport` in the field `doc`.
pub const NEIGHBOURS: &str = "neighbours";
/// Measurements only a collector writes: reachability is the poller's word, not an agent's.
pub const COLLECTOR_MEASUREMENTS: [&str; 3] = [PING, SNMP, CHECK];

metrics! {
    /// 1 when the node answered the ping, 0 when not.
    PING_UP = "ping"."up";
    /// Round-trip time of the answered pings, milliseconds.
    PING_RTT_AVG_MS = "ping"."rtt_avg_ms";
    /// 1 when the node answered the SNMP poll, 0 when not.
    SNMP_UP = "snmp"."up";
    /// 1 when a read of the node's Modbus profile was answered this poll, 0 when none was.
    MODBUS_UP = "modbus"."up";
    /// ifOperStatus of an interface (1 up).
    INTERFACE_OPER_STATUS = "interface"."oper_status";
    /// ifAdminStatus of an interface (1 up).
    INTERFACE_ADMIN_STATUS = "interface"."admin_status";
    /// An agent's CPU busy, percent.
    CPU_TOTAL_USAGE_PCT = "cpu_total"."usage_pct";
    /// A device's CPU load from its template, percent.
    CPU_LOAD_PCT = "cpu"."load_pct";
    /// Memory in use, percent.
    MEMORY_USED_PCT = "memory"."used_pct";
    /// An agent's file system in use, percent.
    DISK_USED_PCT = "disk"."used_pct";
    /// A device's storage area (hrStorage) in use, percent.
    STORAGE_USED_PCT = "storage"."used_pct";
    /// A Windows service's state as the Service Control Manager reports it: 1 stopped, 2 start
    /// pending, 3 stop pending, 4 running, 5 continue pending, 6 pause pending, 7 paused. Tags
    /// `service` (its name), `start` (`auto`, `auto-delayed`, `auto-trigger`, `manual`,
    /// `disabled`, `boot`, `system`).
    WINDOWS_SERVICE_STATE = "windows_service"."state";
    /// A Windows service's start type: 0 boot, 1 system, 2 automatic, 3 manual, 4 disabled.
    WINDOWS_SERVICE_START_TYPE = "windows_service"."start_type";
    /// How many processes of a watched name run (tag `name`).
    PROCESS_COUNT = "process"."count";
    /// Their CPU use together, percent of one core.
    PROCESS_CPU_PCT = "process"."cpu_pct";
    /// 1 while a UPS runs on battery.
    UPS_ON_BATTERY = "ups"."on_battery";
    /// 1 when a service check passed (port open; expected status and text; TLS handshake, or a
    /// server answering in TLS older than 1.2), 0 when not. Tags `node_id`, `check_id`, `kind`,
    /// `port`.
    CHECK_UP = "check"."up";
    /// How long a check took: connect (`tcp`), handshake (`tls`), answer (`http`), ms.
    CHECK_TIME_MS = "check"."time_ms";
    /// The HTTP status an `http`/`https` check got.
    CHECK_HTTP_STATUS = "check"."http_status";
    /// Whole days until a `tls` check's leaf certificate expires, rounded down (negative once
    /// it has).
    CHECK_CERT_DAYS_LEFT = "check"."cert_days_left";
    /// Days until the first certificate of the chain the server sent expires.
    CHECK_CERT_CHAIN_DAYS_LEFT = "check"."cert_chain_days_left";
    /// 1 when the certificate is within its dates and names the server name; 0 when not.
    CHECK_CERT_VALID = "check"."cert_valid";
    /// 1 when the certificate chains to a trusted root; 0 when not (self-signed, a private CA,
    /// an intermediate missing).
    CHECK_CERT_TRUSTED = "check"."cert_trusted";
    /// 1 when the server speaks nothing newer than TLS 1.1.
    CHECK_TLS_LEGACY = "check"."tls_legacy";
    /// 1 when a vCenter's poll logged in and read its inventory, 0 when not (on the vCenter node).
    VSPHERE_UP = "vsphere"."up";
    /// How long a vCenter's poll took, ms.
    VSPHERE_POLL_MS = "vsphere"."poll_ms";
    /// Hosts, VMs (powered on or not) and datastores in the vCenter's inventory.
    VSPHERE_HOSTS = "vsphere"."hosts";
    VSPHERE_VMS = "vsphere"."vms";
    VSPHERE_VMS_POWERED_ON = "vsphere"."vms_powered_on";
    VSPHERE_DATASTORES = "vsphere"."datastores";
    /// 1 while a host is connected to its vCenter (on the host's node).
    VSPHERE_HOST_CONNECTED = "vsphere_host"."connected";
    /// 1 while a host is powered on.
    VSPHERE_HOST_POWERED_ON = "vsphere_host"."powered_on";
    /// 1 while a host is in maintenance mode.
    VSPHERE_HOST_MAINTENANCE = "vsphere_host"."maintenance";
    /// A host's disk and network throughput (QueryPerf `disk.usage`, `net.usage`), bytes/s.
    VSPHERE_HOST_DISK_BYTES_PER_S = "vsphere_host"."disk_bytes_per_s";
    VSPHERE_HOST_NET_BYTES_PER_S = "vsphere_host"."net_bytes_per_s";
    /// 1 while a VM is powered on (on the VM's node).
    VSPHERE_VM_POWERED_ON = "vsphere_vm"."powered_on";
    VSPHERE_VM_DISK_BYTES_PER_S = "vsphere_vm"."disk_bytes_per_s";
    VSPHERE_VM_NET_BYTES_PER_S = "vsphere_vm"."net_bytes_per_s";
    /// A datastore's size, free space and fill (on the vCenter node, tag `datastore`).
    VSPHERE_DATASTORE_CAPACITY_BYTES = "vsphere_datastore"."capacity_bytes";
    VSPHERE_DATASTORE_FREE_BYTES = "vsphere_datastore"."free_bytes";
    VSPHERE_DATASTORE_USED_PCT = "vsphere_datastore"."used_pct";
    /// 1 while a datastore is accessible.
    VSPHERE_DATASTORE_ACCESSIBLE = "vsphere_datastore"."accessible";
}

/// `a|b|…`: the metrics a rule reading any of them names.
pub fn any_of(metrics: &[Metric]) -> String {
    metrics.iter().map(|m| m.name).collect::<Vec<_>>().join("|")
}

/// The unit of a metric for people, read from its field's name (units are in the name:
/// `_pct`, `_ms`, `_celsius`, `_bytes`; a meter's `voltage`, `current`): `%`, `ms`, `°C`, `B`,
/// `V`… A counter is read as a rate, so its unit is per second (`B/s`, `/s`); `""` when the
/// name says nothing.
pub fn unit_of(metric: &str, counter: bool) -> &'static str {
    let field = metric.rsplit('.').next().unwrap_or(metric);
    let base = field.strip_suffix("_total").unwrap_or(field);
    const SUFFIXES: [(&str, &str); 15] = [
        ("_bytes_per_s", "B/s"),
        ("_pct", "%"),
        ("_ms", "ms"),
        ("_seconds", "s"),
        ("_s", "s"),
        ("_celsius", "°C"),
        ("_bytes", "B"),
        ("octets", "B"),
        ("_bps", "b/s"),
        ("_w", "W"),
        ("_kwh", "kWh"),
        ("_hz", "Hz"),
        ("_rpm", "rpm"),
        ("voltage", "V"),
        ("current", "A"),
    ];
    let unit = SUFFIXES
        .iter()
        .find(|(suffix, _)| base.ends_with(suffix) || base == suffix.trim_start_matches('_'))
        .map_or("", |(_, unit)| *unit);
    match (counter, unit) {
        (false, unit) => unit,
        (true, "B") => "B/s",
        (true, "") => "/s",
        (true, unit) => unit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_the_field_name() {
        assert_eq!(unit_of("cpu.load_pct", false), "%");
        assert_eq!(unit_of("ping.rtt_avg_ms", false), "ms");
        assert_eq!(unit_of("environment.temperature_celsius", false), "°C");
        assert_eq!(unit_of("interface.in_octets_total", true), "B/s");
        assert_eq!(unit_of("net.rx_bytes_total", true), "B/s");
        assert_eq!(unit_of("disk.used_bytes", false), "B");
        assert_eq!(unit_of("meter.voltage", false), "V");
        assert_eq!(unit_of("meter.power_w", false), "W");
        assert_eq!(unit_of("interface.in_errors_total", true), "/s");
        assert_eq!(unit_of("snmp.up", false), "");
        assert_eq!(unit_of("agent.uptime_s", false), "s");
    }

    #[test]
    fn names_are_measurement_dot_field() {
        for metric in ALL {
            assert_eq!(
                metric.name,
                format!("{}.{}", metric.measurement, metric.field)
            );
        }
        assert_eq!(
            any_of(&[CPU_TOTAL_USAGE_PCT, CPU_LOAD_PCT]),
            "cpu_total.usage_pct|cpu.load_pct"
        );
    }
}
