//! The agent's system metrics, read with sysinfo: CPU, load, memory and swap, every mounted
//! file system, every network interface's counters, uptime. Counters are the kernel's totals
//! (`…_total`); the server turns them into rates.

use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::metric_names::{CPU_TOTAL_USAGE_PCT, DISK_USED_PCT, MEMORY_USED_PCT};
use sysinfo::{Disks, Networks, System};

/// File systems that hold no data of their own.
const PSEUDO_FILESYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "overlay",
    "squashfs",
    "tmpfs",
    "nsfs",
    "autofs",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "fusectl",
    "configfs",
    "hugetlbfs",
    "ramfs",
    "binfmt_misc",
];

/// Readers kept between collections (CPU usage is measured between two refreshes).
pub struct SystemMetrics {
    system: System,
    /// On Windows, CPU busy from the processor time totals, not PDH counters.
    #[cfg(windows)]
    cpu: crate::windows::cpu::CpuBusy,
    disks: Disks,
    networks: Networks,
}

impl std::fmt::Debug for SystemMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemMetrics").finish_non_exhaustive()
    }
}

impl SystemMetrics {
    pub fn new() -> Result<SystemMetrics, String> {
        #[allow(unused_mut)] // Only Unix measures CPU through sysinfo.
        let mut system = System::new().map_err(|e| format!("reading system information: {e}"))?;
        #[cfg(not(windows))]
        system.refresh_cpu_usage();
        #[cfg(windows)]
        let mut cpu = crate::windows::cpu::CpuBusy::default();
        #[cfg(windows)]
        cpu.sample();
        Ok(SystemMetrics {
            system,
            #[cfg(windows)]
            cpu,
            disks: Disks::new_with_refreshed_list().map_err(|e| format!("listing disks: {e}"))?,
            networks: Networks::new_with_refreshed_list()
                .map_err(|e| format!("listing network interfaces: {e}"))?,
        })
    }

    /// Reads everything once; lines stamped `now_ms`.
    pub fn collect(&mut self, now_ms: i64, out: &mut Writer) {
        self.system.refresh_memory();
        self.disks.refresh(true);
        self.networks.refresh(true);

        #[cfg(not(windows))]
        let (busy, cores) = {
            self.system.refresh_cpu_usage();
            (
                Some(f64::from(self.system.global_cpu_usage())),
                self.system.cpus().len(),
            )
        };
        #[cfg(windows)]
        let (busy, cores) = (
            self.cpu.sample(),
            std::thread::available_parallelism().map_or(0, usize::from),
        );
        if let Some(busy) = busy {
            out.line(CPU_TOTAL_USAGE_PCT.measurement, &[])
                .float(CPU_TOTAL_USAGE_PCT.field, busy)
                .float("cores", cores as f64)
                .finish(now_ms);
        }
        // Windows has no load average (sysinfo's emulation samples PDH counters, which Wine
        // lacks): CPU busy stands for it there.
        #[cfg(not(windows))]
        if let Ok(load) = System::load_average() {
            out.line("load", &[])
                .float("load1", load.one)
                .float("load5", load.five)
                .float("load15", load.fifteen)
                .finish(now_ms);
        }
        let total = self.system.total_memory();
        let available = self.system.available_memory();
        let mut memory = out
            .line(MEMORY_USED_PCT.measurement, &[])
            .float("total_bytes", total as f64)
            .float("available_bytes", available as f64)
            .float("used_bytes", total.saturating_sub(available) as f64)
            .float("swap_total_bytes", self.system.total_swap() as f64)
            .float("swap_used_bytes", self.system.used_swap() as f64);
        if total > 0 {
            memory = memory.float(
                MEMORY_USED_PCT.field,
                100.0 * total.saturating_sub(available) as f64 / total as f64,
            );
        }
        memory.finish(now_ms);
        for disk in self.disks.iter() {
            let fs = disk.file_system().to_string_lossy().to_string();
            let total = disk.total_space();
            if total == 0 || PSEUDO_FILESYSTEMS.contains(&fs.as_str()) {
                continue;
            }
            let used = total.saturating_sub(disk.available_space());
            let mount = disk.mount_point().to_string_lossy().to_string();
            out.line(DISK_USED_PCT.measurement, &[("mount", &mount), ("fs", &fs)])
                .float("total_bytes", total as f64)
                .float("used_bytes", used as f64)
                .float(DISK_USED_PCT.field, 100.0 * used as f64 / total as f64)
                .finish(now_ms);
        }
        for (name, data) in self.networks.iter() {
            let name = name.to_string_lossy();
            out.line("net", &[("interface", &name)])
                .uint("rx_bytes_total", data.total_received())
                .uint("tx_bytes_total", data.total_transmitted())
                .uint("rx_packets_total", data.total_packets_received())
                .uint("tx_packets_total", data.total_packets_transmitted())
                .uint("rx_errors_total", data.total_errors_on_received())
                .uint("tx_errors_total", data.total_errors_on_transmitted())
                .finish(now_ms);
        }
        if let Ok(uptime) = System::uptime() {
            out.line("system", &[])
                .float("uptime_s", uptime as f64)
                .finish(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantwatch_shared::lineproto::parse_line;

    #[test]
    fn reads_this_machine() {
        let mut metrics = SystemMetrics::new().unwrap();
        // CPU busy is measured between two readings.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut out = Writer::new();
        metrics.collect(1_000, &mut out);
        let text = out.take();
        let lines: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        let find = |m: &str| lines.iter().find(|l| l.measurement == m);
        let memory = find("memory").expect("memory line");
        let total = memory
            .fields
            .iter()
            .find(|(k, _)| k == "total_bytes")
            .unwrap();
        assert!(total.1.as_f64().unwrap() > 0.0);
        let cpu = find("cpu_total").expect("cpu line");
        let usage = cpu.fields[0].1.as_f64().unwrap();
        assert!((0.0..=100.0).contains(&usage), "{usage}");
        assert!(find("system").is_some());
        assert_eq!(
            find("load").is_some(),
            cfg!(unix),
            "load average only on Unix"
        );
        // An interface always exists (Linux: loopback), and its counters are unsigned totals.
        // Wine lists no interfaces or volumes to sysinfo.
        #[cfg(windows)]
        if plantwatch_shared::private::windows::under_wine() {
            return;
        }
        let lo = lines
            .iter()
            .find(|l| l.measurement == "net" && (cfg!(windows) || l.tag("interface") == Some("lo")))
            .expect("an interface");
        assert!(matches!(
            lo.fields[0].1,
            plantwatch_shared::lineproto::FieldValue::UInt(_)
        ));
        assert!(lines.iter().any(|l| l.measurement == "disk"), "{text}");
    }
}
