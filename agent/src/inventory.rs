//! What the machine is, for the node's details: the operating system and hardware. Everywhere
//! from sysinfo (OS name and version, kernel, host name, cores, memory); on Windows also from
//! WMI (caption, version, build, manufacturer, model, serial, installed hotfixes), queried on
//! its own thread with a time limit because WMI can hang. The WMI answers are turned into an
//! inventory here, on every platform, so the parsing is tested on recorded answers.

use std::collections::BTreeMap;

use plantwatch_shared::api::{HostInventory, MAX_INVENTORY_TEXT};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One WMI object: property name → value.
pub type WmiRow = BTreeMap<String, Value>;

/// The WMI answers an inventory is made of.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WmiAnswers {
    /// `SELECT Caption, Version, BuildNumber, CSName FROM Win32_OperatingSystem`.
    pub operating_system: Vec<WmiRow>,
    /// `SELECT Manufacturer, Model, TotalPhysicalMemory FROM Win32_ComputerSystem`.
    pub computer_system: Vec<WmiRow>,
    /// `SELECT SerialNumber FROM Win32_BIOS`.
    pub bios: Vec<WmiRow>,
    /// `SELECT HotFixID FROM Win32_QuickFixEngineering`, counted.
    pub hotfixes: Option<u32>,
}

/// What sysinfo says, on every platform.
pub fn from_system() -> HostInventory {
    use sysinfo::System;
    let os = System::long_os_version()
        .ok()
        .or_else(|| System::name().ok());
    let mut memory = System::new().ok();
    if let Some(system) = &mut memory {
        system.refresh_memory();
    }
    bounded(HostInventory {
        os,
        os_version: System::os_version().ok(),
        kernel: (!cfg!(windows))
            .then(System::kernel_version)
            .and_then(Result::ok),
        hostname: System::host_name().ok(),
        cpu_cores: System::physical_core_count()
            .ok()
            .and_then(|n| u32::try_from(n).ok()),
        memory_bytes: memory.map(|s| s.total_memory()).filter(|bytes| *bytes > 0),
        ..HostInventory::default()
    })
}

/// The text of a property, trimmed; `None` when absent, empty or a placeholder some firmware
/// fills in (`To be filled by O.E.M.`, `Default string`, `None`).
fn text(row: Option<&WmiRow>, property: &str) -> Option<String> {
    let value = row?.get(property)?;
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    const PLACEHOLDERS: [&str; 6] = [
        "to be filled by o.e.m.",
        "default string",
        "system serial number",
        "none",
        "not applicable",
        "0",
    ];
    (!text.is_empty() && !PLACEHOLDERS.contains(&text.to_lowercase().as_str())).then_some(text)
}

/// The inventory in WMI's answers.
pub fn from_wmi(answers: &WmiAnswers) -> HostInventory {
    let os = answers.operating_system.first();
    let computer = answers.computer_system.first();
    let bios = answers.bios.first();
    bounded(HostInventory {
        os: text(os, "Caption"),
        os_version: text(os, "Version"),
        os_build: text(os, "BuildNumber"),
        hostname: text(os, "CSName"),
        manufacturer: text(computer, "Manufacturer"),
        model: text(computer, "Model"),
        serial: text(bios, "SerialNumber"),
        hotfixes: answers.hotfixes,
        // A uint64 property: WMI hands it over as text.
        memory_bytes: text(computer, "TotalPhysicalMemory").and_then(|t| t.parse().ok()),
        ..HostInventory::default()
    })
}

/// Fills what `base` lacks from `more` (WMI's words win over sysinfo's where both have one).
pub fn merged(base: HostInventory, wmi: HostInventory) -> HostInventory {
    HostInventory {
        os: wmi.os.or(base.os),
        os_version: wmi.os_version.or(base.os_version),
        os_build: wmi.os_build.or(base.os_build),
        kernel: wmi.kernel.or(base.kernel),
        hostname: wmi.hostname.or(base.hostname),
        manufacturer: wmi.manufacturer.or(base.manufacturer),
        model: wmi.model.or(base.model),
        serial: wmi.serial.or(base.serial),
        hotfixes: wmi.hotfixes.or(base.hotfixes),
        cpu_cores: wmi.cpu_cores.or(base.cpu_cores),
        memory_bytes: wmi.memory_bytes.or(base.memory_bytes),
        problem: wmi.problem.or(base.problem),
    }
}

/// Texts cut to what the server keeps (on a character boundary), without control characters.
fn bounded(mut inventory: HostInventory) -> HostInventory {
    for field in [
        &mut inventory.os,
        &mut inventory.os_version,
        &mut inventory.os_build,
        &mut inventory.kernel,
        &mut inventory.hostname,
        &mut inventory.manufacturer,
        &mut inventory.model,
        &mut inventory.serial,
        &mut inventory.problem,
    ]
    .into_iter()
    .flatten()
    {
        if field.len() > MAX_INVENTORY_TEXT {
            let mut end = MAX_INVENTORY_TEXT;
            while !field.is_char_boundary(end) {
                end -= 1;
            }
            field.truncate(end);
        }
        if field.chars().any(char::is_control) {
            *field = field.chars().filter(|c| !c.is_control()).collect();
        }
    }
    inventory
}

/// Everything this machine says about itself, within `timeout` for WMI.
pub fn read(timeout: std::time::Duration) -> HostInventory {
    let base = from_system();
    #[cfg(windows)]
    {
        match crate::windows::wmi::query(timeout) {
            Ok(answers) => merged(base, from_wmi(&answers)),
            Err(problem) => bounded(HostInventory {
                problem: Some(format!("WMI: {problem}")),
                ..base
            }),
        }
    }
    #[cfg(not(windows))]
    {
        let _ = timeout;
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(name: &str) -> WmiAnswers {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_windows_server_reads_from_its_wmi_answers() {
        let inventory = from_wmi(&recorded("wmi-windows-server-2019.json"));
        assert_eq!(
            inventory.os.as_deref(),
            Some("Microsoft Windows Server 2019 Standard")
        );
        assert_eq!(inventory.os_version.as_deref(), Some("10.0.17763"));
        assert_eq!(inventory.os_build.as_deref(), Some("17763"));
        assert_eq!(inventory.manufacturer.as_deref(), Some("Dell Inc."));
        assert_eq!(inventory.model.as_deref(), Some("PowerEdge R640"));
        assert_eq!(inventory.serial.as_deref(), Some("7XJ2KQ2"));
        assert_eq!(inventory.hotfixes, Some(14));
        assert_eq!(inventory.hostname.as_deref(), Some("HIST-01"));
        assert_eq!(inventory.memory_bytes, Some(137_071_816_704));
    }

    #[test]
    fn placeholders_and_missing_classes_leave_fields_empty() {
        // What Wine 8 answers: an OS, a computer system without a serial number.
        let inventory = from_wmi(&recorded("wmi-wine-8.json"));
        assert!(inventory.os.as_deref().unwrap().contains("Windows"));
        assert_eq!(inventory.serial, None);
        // Wine answers the uint64 as a number, Windows as text: both read.
        assert_eq!(inventory.memory_bytes, Some(25_276_198_912));
        let mut answers = WmiAnswers::default();
        answers.bios.push(
            [(
                "SerialNumber".to_owned(),
                Value::String("To be filled by O.E.M.".into()),
            )]
            .into(),
        );
        assert_eq!(from_wmi(&answers), HostInventory::default());
    }

    #[test]
    fn wmi_fills_in_over_sysinfo_and_texts_are_bounded() {
        let base = HostInventory {
            os: Some("Windows".into()),
            cpu_cores: Some(8),
            ..HostInventory::default()
        };
        let wmi = bounded(HostInventory {
            os: Some("Microsoft Windows 10 Enterprise LTSC".into()),
            model: Some("x".repeat(1_000) + "é"),
            ..HostInventory::default()
        });
        let both = merged(base, wmi);
        assert_eq!(
            both.os.as_deref(),
            Some("Microsoft Windows 10 Enterprise LTSC")
        );
        assert_eq!(both.cpu_cores, Some(8));
        assert_eq!(both.model.unwrap().len(), MAX_INVENTORY_TEXT);
    }

    #[test]
    fn this_machine_has_an_os_and_memory() {
        let inventory = read(std::time::Duration::from_secs(20));
        assert!(inventory.os.is_some(), "{inventory:?}");
        assert!(inventory.memory_bytes.unwrap() > 0);
        assert!(inventory.hostname.is_some());
    }
}
