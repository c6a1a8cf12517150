//! Files only the daemon's own account (and the machine's administrators) may read: the
//! enrollment with its token, the outbox of device data. On Unix a directory of mode 0700 and
//! files of mode 0600; on Windows a directory whose access list is SYSTEM and Administrators
//! only, not inherited from its parent, which every file created inside inherits.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

/// The access list of a state directory on Windows (SDDL): protected (`P`, nothing inherited
/// from above), full control for Local System (`SY`) and the Administrators group (`BA`), passed
/// on to files and folders inside (`OICI`).
pub const WINDOWS_STATE_DACL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// Limits `dir` (which exists) to its owner: mode 0700 on Unix, [`WINDOWS_STATE_DACL`] on
/// Windows.
pub fn restrict_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(windows)]
    {
        windows::set_dacl(dir, WINDOWS_STATE_DACL)
    }
}

/// Options that create a file readable by the owner only: mode 0600 on Unix; on Windows the
/// file inherits its directory's access list (see [`restrict_dir`]).
pub fn private_options() -> OpenOptions {
    #[allow(unused_mut)] // Only Unix sets a mode.
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

#[cfg(windows)]
#[allow(unsafe_code)] // Win32 security calls; each block says why it is sound.
pub mod windows {
    //! The Win32 security calls behind [`super::restrict_dir`].

    use std::io;
    use std::os::windows::ffi::OsStrExt as _;
    use std::path::Path;
    use std::ptr::{null, null_mut};

    use windows_sys::Win32::Foundation::{ERROR_SUCCESS, LocalFree};
    use windows_sys::Win32::Security::Authorization::{
        ConvertSecurityDescriptorToStringSecurityDescriptorW,
        ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW,
        SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
    };
    use windows_sys::Win32::Security::{
        ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl,
        PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
    };
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

    fn wide(text: &std::ffi::OsStr) -> Vec<u16> {
        text.encode_wide().chain(Some(0)).collect()
    }

    /// A security descriptor Windows allocated, freed with `LocalFree` when dropped.
    struct Descriptor(PSECURITY_DESCRIPTOR);

    impl Drop for Descriptor {
        fn drop(&mut self) {
            // SAFETY: allocated by the Win32 call that made it, freed once.
            unsafe { LocalFree(self.0) };
        }
    }

    /// The descriptor an SDDL string describes.
    fn parse(sddl: &str) -> io::Result<Descriptor> {
        let sddl = wide(sddl.as_ref());
        let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `sddl` is NUL-terminated; the descriptor is owned by the guard returned.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Descriptor(descriptor))
    }

    /// Replaces the access list of `path` by the one in `sddl` (a `D:` string), protected from
    /// inheritance.
    pub fn set_dacl(path: &Path, sddl: &str) -> io::Result<()> {
        let descriptor = parse(sddl)?;
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = null_mut();
        // SAFETY: `descriptor` lives until the end of this function; `dacl` points into it.
        unsafe {
            if GetSecurityDescriptorDacl(descriptor.0, &mut present, &mut dacl, &mut defaulted) == 0
            {
                Err(io::Error::last_os_error())
            } else {
                let path = wide(path.as_os_str());
                let code = SetNamedSecurityInfoW(
                    path.as_ptr(),
                    SE_FILE_OBJECT,
                    DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                    null_mut(),
                    null_mut(),
                    dacl,
                    null(),
                );
                if code == ERROR_SUCCESS {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(code as i32))
                }
            }
        }
    }

    /// Whether this process runs under Wine (whose `ntdll` names its version): Wine keeps a
    /// file's access list as Unix mode bits only, so what [`set_dacl`] wrote does not read back.
    pub fn under_wine() -> bool {
        let ntdll = wide("ntdll.dll".as_ref());
        // SAFETY: NUL-terminated names; a module handle of a loaded system DLL needs no release.
        unsafe {
            let module = GetModuleHandleW(ntdll.as_ptr());
            !module.is_null()
                && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }

    /// An SDDL `D:` string as Windows parses and prints it back (the check of a constant).
    pub fn normalized(sddl: &str) -> io::Result<String> {
        let descriptor = parse(sddl)?;
        to_sddl(descriptor.0)
    }

    /// The access list of `path` as an SDDL `D:` string.
    pub fn dacl_of(path: &Path) -> io::Result<String> {
        let path = wide(path.as_os_str());
        let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: out-pointers are valid; the descriptor is freed below.
        let code = unsafe {
            GetNamedSecurityInfoW(
                path.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                null_mut(),
                null_mut(),
                null_mut(),
                null_mut(),
                &mut descriptor,
            )
        };
        if code != ERROR_SUCCESS {
            return Err(io::Error::from_raw_os_error(code as i32));
        }
        let descriptor = Descriptor(descriptor);
        to_sddl(descriptor.0)
    }

    fn to_sddl(descriptor: PSECURITY_DESCRIPTOR) -> io::Result<String> {
        let mut text: *mut u16 = null_mut();
        // SAFETY: `descriptor` is valid; `text` is NUL-terminated and freed here.
        unsafe {
            if ConvertSecurityDescriptorToStringSecurityDescriptorW(
                descriptor,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut text,
                null_mut(),
            ) == 0
            {
                Err(io::Error::last_os_error())
            } else {
                let mut len = 0;
                while *text.add(len) != 0 {
                    len += 1;
                }
                let sddl = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
                LocalFree(text.cast());
                Ok(sddl)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restricted_directory_and_its_files_are_the_owners_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        restrict_dir(&state).unwrap();
        let file = state.join("state.json");
        std::io::Write::write_all(
            &mut private_options()
                .write(true)
                .create_new(true)
                .open(&file)
                .unwrap(),
            b"{}",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&state), 0o700);
            assert_eq!(mode(&file), 0o600);
        }
        #[cfg(windows)]
        {
            // The constant means what it says: protected, SYSTEM and Administrators only.
            let dacl = windows::normalized(WINDOWS_STATE_DACL).unwrap();
            assert_eq!(dacl, WINDOWS_STATE_DACL);
            if windows::under_wine() {
                // Wine accepted the list (set_dacl returned Ok) but keeps mode bits only.
                return;
            }
            let dacl = windows::dacl_of(&state).unwrap();
            assert!(dacl.starts_with("D:P"), "not protected: {dacl}");
            assert!(dacl.contains(";;;SY)") && dacl.contains(";;;BA)"), "{dacl}");
            assert!(
                !dacl.contains(";;;WD)") && !dacl.contains(";;;BU)"),
                "{dacl}"
            );
            // The file inherited the folder's list: no one else.
            let file_dacl = windows::dacl_of(&file).unwrap();
            assert!(!file_dacl.contains(";;;WD)") && !file_dacl.contains(";;;BU)"));
            assert!(file_dacl.contains(";;;SY)"), "{file_dacl}");
        }
    }
}
