//! Rules on user input that the server enforces and clients check as the user types, so both
//! always agree.

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// bcrypt ignores everything past 72 bytes; longer passwords are refused rather than truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Why a new password is refused, if it is.
pub fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        Some(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        ))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some(format!(
            "the password must not exceed {MAX_PASSWORD_BYTES} bytes"
        ))
    } else {
        None
    }
}

/// Why a username is refused, if it is.
pub fn username_problem(username: &str) -> Option<String> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if username.is_empty() || username.len() > 64 {
        Some("the username must have 1 to 64 characters".to_owned())
    } else if !username.chars().all(valid_char) {
        Some("the username may only use letters, digits and . _ - @".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_between_8_characters_and_72_bytes() {
        assert!(password_problem("1234567").is_some());
        assert!(password_problem("12345678").is_none());
        assert!(password_problem(&"x".repeat(73)).is_some());
        assert!(password_problem("ääääääää").is_none());
    }

    #[test]
    fn usernames_are_short_and_plain() {
        assert!(username_problem("ana.k@plant-1_x").is_none());
        assert!(username_problem("").is_some());
        assert!(username_problem("a b").is_some());
        assert!(username_problem(&"a".repeat(65)).is_some());
    }
}
