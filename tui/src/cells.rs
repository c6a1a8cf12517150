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
