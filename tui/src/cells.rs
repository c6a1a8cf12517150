//! How records read as text, the same in the console's tables and the CLI's output: times,
//! channel targets, collector config state, scan progress, device names, round-trip times, and
//! the durations people type.

use plantwatch_shared::api::{Channel, ChannelKind, Component, Device, Job};

/// Formats a timestamp for a table cell: RFC 3339 in UTC, to the second
/// (`2026-12-03T16:15:07Z`), like the JSON output and the emails.
pub fn time_cell(at: Option<time::OffsetDateTime>) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| "-".to_owned())
}

/// Where a user comes from: `local`, `ldap`, or `ldap, role pinned` when an admin set a
/// directory user's role.
pub fn source_cell(user: &plantwatch_shared::api::User) -> String {
    match (user.source, user.role_pinned) {
        (plantwatch_shared::api::UserSource::Ldap, true) => "ldap, role pinned".to_owned(),
        (source, _) => source.to_string(),
    }
}

/// Directory settings as name/value rows (`plantwatch ldap show`, the settings view).
pub fn ldap_settings_rows(settings: &plantwatch_shared::api::LdapSettings) -> Vec<Vec<String>> {
    let or_none = |text: &str| {
        if text.is_empty() {
            "(none)".to_owned()
        } else {
            text.to_owned()
        }
    };
    let mut rows = vec![
        vec!["enabled".into(), settings.enabled.to_string()],
        vec!["urls".into(), or_none(&settings.urls.join(" "))],
        vec!["starttls".into(), settings.starttls.to_string()],
        vec![
            "trust".into(),
            match (&settings.fingerprint, &settings.ca_pem) {
                (Some(pin), _) => format!("pinned {pin}"),
                (None, Some(_)) => "the given CA".into(),
                (None, None) => "the system's trust store".into(),
            },
        ],
        vec!["bind_dn".into(), or_none(&settings.bind_dn)],
        vec![
            "bind_password".into(),
            if settings.bind_password_set {
                "set"
            } else {
                "(none)"
            }
            .into(),
        ],
        vec!["user_base".into(), or_none(&settings.user_base_dn)],
        vec!["user_filter".into(), settings.user_filter.clone()],
        vec!["groups".into(), settings.group_lookup.to_string()],
        vec![
            "group_base".into(),
            if settings.group_base_dn.trim().is_empty() {
                "(the user base)".into()
            } else {
                settings.group_base_dn.clone()
            },
        ],
        vec!["group_filter".into(), or_none(&settings.group_filter)],
        vec!["nested".into(), settings.nested.to_string()],
    ];
    for mapping in &settings.group_roles {
        rows.push(vec![
            "map".into(),
            format!("{} → {}", mapping.group, mapping.role),
        ]);
    }
    rows.push(vec![
        "default_role".into(),
        settings
            .default_role
            .map_or_else(|| "none (refused)".to_owned(), |r| r.to_string()),
    ]);
    rows.push(vec![
        "timeout".into(),
        format!("{} s", settings.timeout_secs),
    ]);
    rows
}

/// A directory test's steps as rows: step, result, time, detail; then the groups found.
pub fn ldap_report_rows(report: &plantwatch_shared::api::LdapTestReport) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = report
        .steps
        .iter()
        .map(|step| {
            vec![
                step.step.label().to_owned(),
                if step.ok { "ok" } else { "FAILED" }.to_owned(),
                format!("{} ms", step.elapsed_ms),
                step.detail.clone(),
            ]
        })
        .collect();
    for group in &report.groups {
        let how = if group.nested { "nested" } else { "direct" };
        rows.push(vec![
            "  group".into(),
            how.into(),
            String::new(),
            group.dn.clone(),
        ]);
    }
    rows
}

/// Where a channel delivers.
pub fn channel_target(c: &Channel) -> String {
    let s = &c.settings;
    match c.kind {
        ChannelKind::Webhook => s.url.clone().unwrap_or_default(),
        ChannelKind::Email => format!(
            "{} via {}",
            s.to.join(", "),
            s.smtp_host.clone().unwrap_or_default()
        ),
        ChannelKind::Syslog => format!(
            "{}://{}:{}",
            s.protocol.clone().unwrap_or_else(|| "udp".into()),
            s.host.clone().unwrap_or_default(),
            s.port.unwrap_or(514)
        ),
    }
}

/// An RFC 3339 time (`2026-12-06T02:00:00Z`).
pub fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time (2026-12-06T02:00:00Z): {e}"))
}

/// `30m`, `12h`, `7d`, `45s` or plain seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 30m, 12h, 7d)"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}; use s, m, h, d or w"
            ));
        }
    };
    match value.checked_mul(factor) {
        Some(0) | None => Err(format!("{text:?} is not a usable duration")),
        Some(secs) => Ok(secs),
    }
}

/// The configuration column: whether a collector polls with the current configuration.
pub fn config_state(component: &Component) -> &'static str {
    match component.config_in_sync {
        Some(true) => "in sync",
        Some(false) => "out of sync",
        None => "-",
    }
}

/// `done/total (pct)`.
pub fn progress_cell(job: &Job) -> String {
    format!(
        "{}/{} ({:.0}%)",
        job.done,
        job.total,
        job.progress() * 100.0
    )
}

/// The name a device shows: sysName, else DNS name, else empty.
pub fn device_name(device: &Device) -> String {
    device
        .sys_name
        .clone()
        .or_else(|| device.dns_name.clone())
        .unwrap_or_default()
}

/// `12.3 ms`, or empty.
pub fn rtt_cell(rtt_ms: Option<f64>) -> String {
    rtt_ms.map(|ms| format!("{ms:.1} ms")).unwrap_or_default()
}
