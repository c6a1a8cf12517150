//! The inventory's WMI queries, on a thread of their own: WMI can take seconds or hang
//! outright, and must never hold up the heartbeat. A query still running when the next is
//! due is not started twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::inventory::{WmiAnswers, WmiRow};

static RUNNING: AtomicBool = AtomicBool::new(false);

/// Runs the inventory's queries; gives up waiting after `timeout` (the thread finishes, or
/// hangs, on its own).
pub fn query(timeout: Duration) -> Result<WmiAnswers, String> {
    if RUNNING.swap(true, Ordering::SeqCst) {
        return Err("an earlier query has not finished".into());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("wmi".into())
        .spawn(move || {
            let result = run();
            RUNNING.store(false, Ordering::SeqCst);
            let _ = tx.send(result);
        });
    if let Err(error) = spawned {
        RUNNING.store(false, Ordering::SeqCst);
        return Err(format!("starting its thread: {error}"));
    }
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

fn run() -> Result<WmiAnswers, String> {
    let connection = wmi::WMIConnection::new().map_err(|e| format!("connecting: {e}"))?;
    let rows = |query: &str| -> Result<Vec<WmiRow>, String> {
        connection
            .raw_query::<WmiRow>(query)
            .map_err(|e| format!("{query}: {e}"))
    };
    let operating_system =
        rows("SELECT Caption, Version, BuildNumber, CSName FROM Win32_OperatingSystem")?;
    // The rest is extra: a class Wine (or a stripped image) lacks leaves its fields empty.
    let computer_system =
        rows("SELECT Manufacturer, Model, TotalPhysicalMemory FROM Win32_ComputerSystem")
            .unwrap_or_default();
    let bios = rows("SELECT SerialNumber FROM Win32_BIOS").unwrap_or_default();
    let hotfixes = rows("SELECT HotFixID FROM Win32_QuickFixEngineering")
        .ok()
        .map(|rows| rows.len() as u32);
    Ok(WmiAnswers {
        operating_system,
        computer_system,
        bios,
        hotfixes,
    })
}
