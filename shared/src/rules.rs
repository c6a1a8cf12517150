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

/// Longest node name.
pub const MAX_NODE_NAME_LEN: usize = 255;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 64;
/// Longest notes text.
pub const MAX_NOTES_LEN: usize = 4096;
/// Longest credential name.
pub const MAX_CREDENTIAL_NAME_LEN: usize = 128;
/// Largest polling interval override: one day.
pub const MAX_INTERVAL_S: u32 = 86_400;

/// Separates the items of a list written as text (tags, credential or node names) in CSV files,
/// command-line options and console forms.
pub const LIST_SEPARATOR: char = ';';

/// The items of a `;`-separated list, trimmed, empty ones dropped.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(LIST_SEPARATOR)
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Characters that never belong in a name, metric or tag shown on a terminal: control
/// characters (NUL, escape, TAB, …) and the bidirectional overrides and isolates (U+202A–E,
/// U+2066–9, U+200E/F, U+061C) that make text read differently from what it is.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
}

/// Spreadsheet formulas in exported CSV cells are neutralised (OWASP CSV injection): a cell
/// that begins with `=`, `+`, `-`, `@`, a tab or a carriage return — or with `'`, so that the
/// escape can be undone exactly — gets a leading `'`. [`unescape_cell`] undoes it on import.
pub fn escape_cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// Undoes [`escape_cell`]: `'=cmd` reads as `=cmd`; any other text is itself.
pub fn unescape_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest,
        _ => cell,
    }
}

/// Why a credential's networks are refused, if they are: each must be a CIDR (`10.1.0.0/16`,
/// `fd00::/64`) or a single address; at most 64.
pub fn networks_problem(networks: &[String]) -> Option<String> {
    if networks.len() > 64 {
        return Some("at most 64 networks".to_owned());
    }
    networks.iter().find_map(|n| {
        parse_network(n).is_none().then(|| {
            format!(
                "{:?} is not a network: give a CIDR such as 10.1.0.0/16",
                n.chars().take(64).collect::<String>()
            )
        })
    })
}

fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// The IP of a node address (`10.0.0.5`, `10.0.0.5:1161`, `[fd00::5]:1161`, `fd00::5`); `None`
/// for a DNS name.
pub fn address_ip(address: &str) -> Option<std::net::IpAddr> {
    let address = address.trim();
    address
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| address.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// Whether a credential with `networks` may be used for `address`: anywhere when it has none
/// (an admin attached it), else only an IP address inside one of them (a DNS name could point
/// anywhere, so it is outside).
pub fn address_in_networks(address: &str, networks: &[String]) -> bool {
    if networks.is_empty() {
        return true;
    }
    let Some(ip) = address_ip(address) else {
        return false;
    };
    networks
        .iter()
        .filter_map(|n| parse_network(n))
        .any(|net| net.contains(&ip))
}

/// Why a node or credential name is refused, if it is.
pub fn name_problem(name: &str, max: usize) -> Option<String> {
    if name.trim().is_empty() {
        Some("the name must not be empty".to_owned())
    } else if name.trim() != name {
        Some("the name must not start or end with spaces".to_owned())
    } else if name.chars().count() > max {
        Some(format!("the name must not exceed {max} characters"))
    } else if name.chars().any(is_unsafe_char) {
        Some("the name must not contain control characters or bidirectional overrides".to_owned())
    } else {
        None
    }
}

/// Why a node address is refused, if it is: it must be an IPv4 or IPv6 address or a DNS name,
/// optionally with a port for SNMP (`10.0.0.5:1161`, `[fd00::5]:1161`, `plc-1:1161`).
pub fn address_problem(address: &str) -> Option<String> {
    use std::net::{IpAddr, SocketAddr};
    if address.is_empty() {
        return Some("the address must not be empty".to_owned());
    }
    if address.parse::<IpAddr>().is_ok() {
        return None;
    }
    if let Ok(socket) = address.parse::<SocketAddr>() {
        return (socket.port() == 0).then(|| format!("{address:?}: the port must not be 0"));
    }
    if let Some((host, port)) = address.rsplit_once(':')
        && !host.contains(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        return match port.parse::<u16>() {
            Ok(port) if port > 0 => address_problem(host),
            _ => Some(format!("{address:?}: the port must be between 1 and 65535")),
        };
    }
    let bad = |why: &str| {
        Some(format!(
            "{address:?} is not an IP address or DNS name: {why}"
        ))
    };
    if address.contains(':') {
        return bad("not a valid IPv6 address");
    }
    let name = address.strip_suffix('.').unwrap_or(address);
    if name.len() > 253 {
        return bad("longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    // A name whose last label is all digits can only be meant as an IPv4 address.
    if labels
        .last()
        .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("not a valid IPv4 address");
    }
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return bad("each dot-separated label must have 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("a DNS name may only use letters, digits, hyphens and dots");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label must not start or end with a hyphen");
        }
    }
    None
}

/// Why a tag is refused, if it is.
pub fn tag_problem(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.chars().count() > MAX_TAG_LEN {
        Some(format!("a tag must have 1 to {MAX_TAG_LEN} characters"))
    } else if tag
        .chars()
        .any(|c| c == ';' || c == ',' || c.is_whitespace() || c.is_control())
    {
        Some(format!(
            "tag {tag:?}: a tag must not contain spaces, commas or semicolons"
        ))
    } else {
        None
    }
}

/// Why a polling interval override is refused, if it is.
pub fn interval_problem(seconds: u32) -> Option<String> {
    (seconds == 0 || seconds > MAX_INTERVAL_S)
        .then(|| format!("the interval must be between 1 and {MAX_INTERVAL_S} seconds"))
}

/// Why node notes are refused, if they are.
pub fn notes_problem(notes: &str) -> Option<String> {
    if notes.chars().count() > MAX_NOTES_LEN {
        Some(format!(
            "the notes must not exceed {MAX_NOTES_LEN} characters"
        ))
    } else if notes
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        // Escape sequences would reach the terminals that show the notes.
        Some("the notes must not contain control characters".to_owned())
    } else {
        None
    }
}

/// `*` matches any run of characters; everything else matches itself. Allocates nothing: it
/// runs for every series a rule with tag patterns looks at.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let Some((first, after_first)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let last = after_first.rsplit('*').next().unwrap_or_default();
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    let middles = &after_first[..after_first.len() - last.len()];
    for middle in middles.split('*').filter(|m| !m.is_empty()) {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {

    #[test]
    fn credentials_are_kept_to_their_networks() {
        let nets = vec![
            "10.1.0.0/16".to_owned(),
            "fd00::/64".to_owned(),
            "127.0.0.5".to_owned(),
        ];
        assert!(address_in_networks("10.1.2.3", &nets));
        assert!(address_in_networks("10.1.2.3:1161", &nets));
        assert!(address_in_networks("[fd00::5]:1161", &nets));
        assert!(address_in_networks("127.0.0.5", &nets));
        assert!(!address_in_networks("10.2.0.1", &nets));
        assert!(
            !address_in_networks("plc-1.plant.example", &nets),
            "a DNS name is outside"
        );
        assert!(
            address_in_networks("anything", &[]),
            "no networks: an admin's choice"
        );
        assert_eq!(networks_problem(&nets), None);
        assert!(networks_problem(&["10.0.0.0/33".to_owned()]).is_some());
        assert!(networks_problem(&["plant".to_owned()]).is_some());
    }

    #[test]
    fn csv_cells_are_neutralised_and_the_escape_undone_exactly() {
        for value in [
            "=cmd|' /C calc'!A0",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'quoted",
            "''",
            "'=already",
            "plain",
            "",
            "a=b",
        ] {
            let cell = escape_cell(value);
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{value:?} exported as {cell:?}"
            );
            assert_eq!(unescape_cell(&cell), value, "round trip of {value:?}");
        }
        assert_eq!(escape_cell("=1+1"), "'=1+1");
        assert_eq!(escape_cell("pump"), "pump");
    }

    #[test]
    fn bidi_overrides_and_control_characters_are_unsafe() {
        for c in [
            '\u{0}', '\u{1}', '\t', '\u{1b}', '\u{202E}', '\u{2066}', '\u{200F}',
        ] {
            assert!(is_unsafe_char(c), "{c:?}");
        }
        for c in ['a', ' ', 'ü', '/', '\u{2014}'] {
            assert!(!is_unsafe_char(c), "{c:?}");
        }
        assert!(name_problem("pump\u{202E}1", 64).is_some());
    }

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

    #[test]
    fn lists_split_on_semicolons_and_drop_blanks() {
        assert_eq!(split_list(" a; b ;;c;"), ["a", "b", "c"]);
        assert!(split_list("  ").is_empty());
    }

    #[test]
    fn addresses_are_ips_or_dns_names() {
        for good in [
            "10.0.0.1",
            "fe80::1",
            "::1",
            "plc-01",
            "sw1.plant.example.",
            "a1.b2",
            "10.0.0.1:1161",
            "[fd00::5]:161",
            "plc-01:1161",
        ] {
            assert_eq!(address_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "10.0.0.300",
            "1.2.3",
            "fe80::zz",
            "-sw",
            "sw_1",
            "a..b",
            "plc 1",
            "10.0.0.1:0",
            "10.0.0.1:70000",
            "plc-01:",
            "sw_1:161",
            "10.0.0.300:161",
        ] {
            assert!(address_problem(bad).is_some(), "{bad} accepted");
        }
    }

    #[test]
    fn names_tags_and_intervals_are_bounded() {
        assert!(name_problem("PLC 1", MAX_NODE_NAME_LEN).is_none());
        assert!(name_problem(" x", MAX_NODE_NAME_LEN).is_some());
        assert!(name_problem(&"n".repeat(256), MAX_NODE_NAME_LEN).is_some());
        assert!(tag_problem("line-3").is_none());
        assert!(tag_problem("a;b").is_some());
        assert!(interval_problem(0).is_some());
        assert!(interval_problem(60).is_none());
        assert!(notes_problem("line 1\nline 2\tcab 4").is_none());
        assert!(notes_problem("\u{1b}]0;owned\u{7}").is_some());
    }
}
