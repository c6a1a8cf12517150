//! Processes watched by name (a SCADA runtime that is not a service): how many run and their
//! CPU and memory together. The names come from the node's settings on the server, with each
//! heartbeat's answer; a name matches case-insensitively, with or without `.exe`.

use std::collections::BTreeMap;

use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::metric_names::{PROCESS_COUNT, PROCESS_CPU_PCT};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

/// Reads processes; keeps what CPU use needs between two readings.
pub struct Processes {
    system: System,
}

impl std::fmt::Debug for Processes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processes").finish_non_exhaustive()
    }
}

/// A process name as compared: lower case, without `.exe`.
pub fn normalize(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    lower.strip_suffix(".exe").unwrap_or(&lower).to_owned()
}

impl Processes {
    pub fn new() -> Result<Processes, String> {
        Ok(Processes {
            system: System::new().map_err(|e| format!("reading processes: {e}"))?,
        })
    }

    /// One `process` line per watched name (a name that runs nowhere reports `count=0`).
    pub fn collect(&mut self, watched: &[String], now_ms: i64, out: &mut Writer) {
        if watched.is_empty() {
            return;
        }
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let mut totals: BTreeMap<String, (u64, f64, u64)> = watched
            .iter()
            .map(|name| (normalize(name), (0, 0.0, 0)))
            .collect();
        for process in self.system.processes().values() {
            if process.thread_kind().is_some() {
                continue; // Linux threads are listed as tasks of their process.
            }
            let name = normalize(&process.name().to_string_lossy());
            if let Some((count, cpu, memory)) = totals.get_mut(&name) {
                *count += 1;
                *cpu += f64::from(process.cpu_usage());
                *memory += process.memory();
            }
        }
        for (name, (count, cpu, memory)) in totals {
            out.line(PROCESS_COUNT.measurement, &[("name", &name)])
                .float(PROCESS_COUNT.field, count as f64)
                .float(PROCESS_CPU_PCT.field, cpu)
                .float("memory_bytes", memory as f64)
                .finish(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantwatch_shared::lineproto::parse_line;

    #[test]
    fn names_compare_without_case_or_exe() {
        assert_eq!(normalize("WinCC.EXE"), "wincc");
        assert_eq!(normalize(" sshd "), "sshd");
    }

    #[test]
    fn counts_a_running_program_and_reports_absent_names_as_zero() {
        // A child of a known name: `sleep` on Unix; on Windows this test's own executable.
        #[cfg(unix)]
        let (mut child, name) = (
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap(),
            "sleep".to_owned(),
        );
        #[cfg(windows)]
        let name = std::env::current_exe()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let mut processes = Processes::new().unwrap();
        let mut out = Writer::new();
        let watched = vec![name.clone(), "no-such-process-here".to_owned()];
        processes.collect(&watched, 1_000, &mut out);
        #[cfg(unix)]
        child.kill().unwrap();
        let text = out.take();
        let lines: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        let of = |name: &str| {
            lines
                .iter()
                .find(|l| l.tag("name") == Some(name))
                .unwrap_or_else(|| panic!("{name} in {text}"))
        };
        let running = of(&normalize(&name));
        assert_eq!(running.fields[0].0, "count");
        assert!(running.fields[0].1.as_f64().unwrap() >= 1.0, "{text}");
        assert!(
            running.fields[2].1.as_f64().unwrap() > 0.0,
            "memory: {text}"
        );
        let absent = of("no-such-process-here");
        assert_eq!(absent.fields[0].1.as_f64(), Some(0.0));
    }
}
