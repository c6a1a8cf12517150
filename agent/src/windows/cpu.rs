//! CPU busy from `GetSystemTimes`: the idle, kernel and user time of every processor since
//! boot. sysinfo reads it through PDH performance counters, whose names a localized or
//! damaged counter registry can lose (and which Wine lacks); these totals are always there.
#![allow(unsafe_code)] // One Win32 call; its block says why it is sound.

use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::System::Threading::GetSystemTimes;

/// Processor time totals, 100 ns units: (idle, busy + idle).
fn times() -> Option<(u64, u64)> {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut idle, mut kernel, mut user) = (zero, zero, zero);
    // SAFETY: three valid out-pointers.
    if unsafe { GetSystemTimes(&mut idle, &mut kernel, &mut user) } == 0 {
        return None;
    }
    let value = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    // Kernel time includes idle time.
    Some((value(idle), value(kernel) + value(user)))
}

/// CPU busy between two readings.
#[derive(Debug, Default)]
pub struct CpuBusy {
    last: Option<(u64, u64)>,
}

impl CpuBusy {
    /// Percent busy since the last call (`None` at the first, or when nothing elapsed).
    pub fn sample(&mut self) -> Option<f64> {
        let now = times()?;
        let before = self.last.replace(now)?;
        let total = now.1.saturating_sub(before.1);
        let idle = now.0.saturating_sub(before.0);
        (total > 0).then(|| 100.0 * (total.saturating_sub(idle)) as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_a_percentage_once_time_has_passed() {
        let mut cpu = CpuBusy::default();
        assert_eq!(cpu.sample(), None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let mut spin = 0u64;
        while std::time::Instant::now() < deadline {
            spin = spin.wrapping_add(1);
        }
        let busy = cpu.sample().expect("a reading");
        assert!((0.0..=100.0).contains(&busy), "{busy} after {spin} turns");
    }
}
