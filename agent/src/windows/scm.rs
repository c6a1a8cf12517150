//! Every service the Service Control Manager knows, with its state and how it starts: one
//! `EnumServicesStatusExW` for names and states, then each service's configuration (start
//! type, delayed start, triggers). Not WMI's `Win32_Service`, which is slow and can hang.
#![allow(unsafe_code)] // Win32 calls; each block says why it is sound.

use std::io;
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, ERROR_MORE_DATA, GetLastError};
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, ENUM_SERVICE_STATUS_PROCESSW, EnumServicesStatusExW, OpenSCManagerW,
    OpenServiceW, QUERY_SERVICE_CONFIGW, QueryServiceConfig2W, QueryServiceConfigW,
    SC_ENUM_PROCESS_INFO, SC_HANDLE, SC_MANAGER_CONNECT, SC_MANAGER_ENUMERATE_SERVICE,
    SERVICE_CONFIG_DELAYED_AUTO_START_INFO, SERVICE_CONFIG_TRIGGER_INFO,
    SERVICE_DELAYED_AUTO_START_INFO, SERVICE_QUERY_CONFIG, SERVICE_STATE_ALL, SERVICE_TRIGGER_INFO,
    SERVICE_WIN32,
};

use crate::services::ServiceState;

/// `SERVICE_USER_SERVICE`: a per-user service, template or instance.
const SERVICE_USER_SERVICE: u32 = 0x40;

/// A handle closed when dropped.
struct Handle(SC_HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a handle opened by OpenSCManagerW/OpenServiceW, closed once.
        unsafe { CloseServiceHandle(self.0) };
    }
}

fn wide_to_string(text: *const u16) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: the SCM hands NUL-terminated strings inside the buffer we own.
    unsafe {
        let mut len = 0;
        while *text.add(len) != 0 {
            len += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(text, len))
    }
}

/// A buffer aligned for the structures the SCM writes into it.
fn buffer(bytes: u32) -> Vec<u64> {
    vec![0u64; (bytes as usize).div_ceil(8).max(1)]
}

/// Every Win32 service, sorted by name.
pub fn services() -> io::Result<Vec<ServiceState>> {
    // SAFETY: null machine and database name mean this machine's active database.
    let manager = unsafe {
        OpenSCManagerW(
            null(),
            null(),
            SC_MANAGER_CONNECT | SC_MANAGER_ENUMERATE_SERVICE,
        )
    };
    if manager.is_null() {
        return Err(io::Error::last_os_error());
    }
    let manager = Handle(manager);
    let mut found = Vec::new();
    let mut resume = 0u32;
    let mut size = 64 * 1024u32;
    loop {
        let mut buf = buffer(size);
        let (mut needed, mut returned) = (0u32, 0u32);
        // SAFETY: `buf` holds `size` bytes; the out-pointers are valid.
        let ok = unsafe {
            EnumServicesStatusExW(
                manager.0,
                SC_ENUM_PROCESS_INFO,
                SERVICE_WIN32,
                SERVICE_STATE_ALL,
                buf.as_mut_ptr().cast(),
                size,
                &mut needed,
                &mut returned,
                &mut resume,
                null(),
            )
        };
        // SAFETY: GetLastError has no preconditions.
        let error = if ok == 0 {
            unsafe { GetLastError() }
        } else {
            0
        };
        if ok == 0 && error != ERROR_MORE_DATA {
            return Err(io::Error::from_raw_os_error(error as i32));
        }
        // SAFETY: the SCM wrote `returned` entries at the start of `buf`.
        let entries = unsafe {
            std::slice::from_raw_parts(
                buf.as_ptr().cast::<ENUM_SERVICE_STATUS_PROCESSW>(),
                returned as usize,
            )
        };
        for entry in entries {
            // Per-user services (their templates and one instance per signed-in user, named
            // `…_1a2b3c`) come and go with sessions; a template is "automatic" and never runs.
            if entry.ServiceStatusProcess.dwServiceType & SERVICE_USER_SERVICE != 0 {
                continue;
            }
            let name = wide_to_string(entry.lpServiceName);
            let (start_type, delayed, trigger) =
                config(&manager, entry.lpServiceName).unwrap_or((u32::MAX, false, false));
            found.push(ServiceState {
                name,
                display_name: wide_to_string(entry.lpDisplayName),
                state: entry.ServiceStatusProcess.dwCurrentState,
                start_type,
                delayed,
                trigger,
            });
        }
        if ok != 0 {
            break;
        }
        size = size.max(needed);
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// A service's start type, whether it starts delayed, whether it has triggers.
fn config(manager: &Handle, name: *const u16) -> Option<(u32, bool, bool)> {
    // SAFETY: `name` is a NUL-terminated name from the enumeration buffer, alive here.
    let service = unsafe { OpenServiceW(manager.0, name, SERVICE_QUERY_CONFIG) };
    if service.is_null() {
        return None;
    }
    let service = Handle(service);
    let mut needed = 0u32;
    // SAFETY: a size query: null buffer of 0 bytes.
    unsafe { QueryServiceConfigW(service.0, null_mut(), 0, &mut needed) };
    let mut buf = buffer(needed);
    // SAFETY: `buf` holds at least `needed` bytes, aligned.
    let ok = unsafe {
        QueryServiceConfigW(
            service.0,
            buf.as_mut_ptr().cast::<QUERY_SERVICE_CONFIGW>(),
            needed,
            &mut needed,
        )
    };
    if ok == 0 {
        return None;
    }
    // SAFETY: filled by the call above.
    let start_type = unsafe { (*buf.as_ptr().cast::<QUERY_SERVICE_CONFIGW>()).dwStartType };
    let delayed = config2(&service, SERVICE_CONFIG_DELAYED_AUTO_START_INFO, |buf| {
        // SAFETY: the SCM filled a SERVICE_DELAYED_AUTO_START_INFO.
        unsafe { (*buf.cast::<SERVICE_DELAYED_AUTO_START_INFO>()).fDelayedAutostart != 0 }
    });
    let trigger = config2(&service, SERVICE_CONFIG_TRIGGER_INFO, |buf| {
        // SAFETY: the SCM filled a SERVICE_TRIGGER_INFO.
        unsafe { (*buf.cast::<SERVICE_TRIGGER_INFO>()).cTriggers > 0 }
    });
    Some((start_type, delayed, trigger))
}

/// One `QueryServiceConfig2W` answer read by `read`; false when the system has none (Wine
/// lacks trigger information).
fn config2(service: &Handle, level: u32, read: impl Fn(*const u8) -> bool) -> bool {
    let mut needed = 0u32;
    // SAFETY: a size query.
    let ok = unsafe { QueryServiceConfig2W(service.0, level, null_mut(), 0, &mut needed) };
    // SAFETY: GetLastError has no preconditions.
    if ok != 0 || unsafe { GetLastError() } != ERROR_INSUFFICIENT_BUFFER || needed == 0 {
        return false;
    }
    let mut buf = buffer(needed);
    // SAFETY: `buf` holds at least `needed` bytes, aligned.
    let ok = unsafe {
        QueryServiceConfig2W(
            service.0,
            level,
            buf.as_mut_ptr().cast(),
            needed,
            &mut needed,
        )
    };
    ok != 0 && read(buf.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_services_of_this_machine() {
        let services = services().unwrap();
        // Every Windows (and Wine) has an RPC endpoint mapper, and it runs.
        let rpc = services
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case("RpcSs"))
            .unwrap_or_else(|| panic!("RpcSs in {services:?}"));
        assert_eq!(
            rpc.state,
            plantwatch_shared::metric_names::WINDOWS_SERVICE_RUNNING
        );
        assert!(services.iter().all(|s| s.start_type <= 4), "{services:?}");
        assert!(
            services.iter().any(|s| s.state == 1),
            "one stopped: {services:?}"
        );
    }
}
