//! Notifications: routing alerts to channels, the durable queue's sender, and the three
//! kinds of channel (webhook, email, syslog).
//!
//! The evaluator queues a notification in the same transaction that changes the alert, so
//! nothing decided is lost; the sender delivers due rows, retries failures with backoff, and
//! after a restart carries on with what is still queued.

mod email;
mod syslog;
mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use plantwatch_shared::Secret;
use plantwatch_shared::api::{Channel, ChannelKind, ChannelSettings, Notification, Severity};
use tokio::sync::watch;

use crate::db::{self, Db, notify};
use crate::vault::{Vault, channel_aad};

/// How often the sender looks for due notifications.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Attempts before a notification is given up (with backoff, about a day).
pub const MAX_ATTEMPTS: u32 = 30;
/// Longest wait between two attempts.
const MAX_BACKOFF_S: i64 = 3_600;

/// Whether `channel` takes an alert of `severity` on a node with `tags` under `collector`.
pub fn routes(
    channel: &Channel,
    severity: Severity,
    tags: &[String],
    collector: Option<&str>,
) -> bool {
    channel.enabled
        && severity >= channel.min_severity
        && (channel.tags.is_empty() || channel.tags.iter().any(|t| tags.contains(t)))
        && (channel.collectors.is_empty()
            || collector
                .is_some_and(|c| channel.collectors.iter().any(|x| x.eq_ignore_ascii_case(c))))
}

/// Seconds to wait before attempt `attempts + 1`: 5 s doubling, at most an hour.
pub fn backoff_s(attempts: u32) -> i64 {
    (5i64 << attempts.min(12)).min(MAX_BACKOFF_S)
}

/// What is wrong with a channel's settings for its kind, if anything.
pub fn settings_problem(kind: ChannelKind, settings: &ChannelSettings) -> Option<String> {
    let missing = |what: &str| Some(format!("a channel of kind {kind} needs {what}"));
    match kind {
        ChannelKind::Webhook => match settings.url.as_deref() {
            None => missing("a url"),
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                Some("the url must start with http:// or https://".into())
            }
            Some(url) if reqwest::Url::parse(url).is_err() => Some(format!("'{url}' is not a URL")),
            _ => None,
        },
        ChannelKind::Email => {
            if settings.smtp_host.as_deref().is_none_or(str::is_empty) {
                missing("smtp_host")
            } else if settings.from.as_deref().is_none_or(str::is_empty) {
                missing("from")
            } else if settings.to.is_empty() {
                missing("at least one address in to")
            } else if !matches!(
                settings.tls.as_deref(),
                None | Some("none" | "starttls" | "tls")
            ) {
                Some("tls must be none, starttls or tls".into())
            } else if settings
                .tls_ca_pem
                .as_ref()
                .is_some_and(|p| p.len() > 65_536)
            {
                Some("tls_ca_pem is at most 64 KiB".into())
            } else if let (Some(host), Some(pem)) = (&settings.smtp_host, &settings.tls_ca_pem)
                && let Err(problem) = email::tls_parameters(host, Some(pem))
            {
                Some(problem)
            } else {
                email::check_addresses(settings).err()
            }
        }
        ChannelKind::Syslog => {
            if settings.host.as_deref().is_none_or(str::is_empty) {
                missing("a host")
            } else if !matches!(settings.protocol.as_deref(), None | Some("udp" | "tcp")) {
                Some("protocol must be udp or tcp".into())
            } else {
                None
            }
        }
    }
}

/// Sends one notification through `channel` now.
pub async fn deliver(
    channel: &Channel,
    secrets: &BTreeMap<String, Secret>,
    notification: &Notification,
) -> Result<(), String> {
    let timeout =
        Duration::from_secs(u64::from(channel.settings.timeout_s.unwrap_or(10)).clamp(1, 120));
    let sending = async {
        match channel.kind {
            ChannelKind::Webhook => {
                webhook::send(&channel.settings, secrets, notification, timeout).await
            }
            ChannelKind::Email => {
                email::send(&channel.settings, secrets, notification, timeout).await
            }
            ChannelKind::Syslog => syslog::send(&channel.settings, notification).await,
        }
    };
    match tokio::time::timeout(timeout + Duration::from_secs(1), sending).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {} s", timeout.as_secs())),
    }
}

/// A channel and its secrets in clear.
pub type OpenedChannel = (Channel, BTreeMap<String, Secret>);

/// A channel with its secrets opened.
pub fn open_channel(vault: &Vault, row: &notify::ChannelRow) -> Result<OpenedChannel, String> {
    let id = row.channel.id;
    let secrets = vault
        .open_all(&row.sealed_secrets, |field| channel_aad(id, field))
        .map_err(|e| format!("opening the channel's secrets: {e}"))?;
    Ok((row.channel.clone(), secrets))
}

/// The sender: delivers due notifications until shutdown.
pub async fn run(db: Db, vault: Vault, gate: crate::ha::Gate, mut shutdown: watch::Receiver<bool>) {
    loop {
        if !gate.may_act() {
            // One of a pair that is not (or no longer surely) active: another server sends.
        } else if let Err(error) = send_due(&db, &vault, &gate).await {
            tracing::warn!(%error, "Sending notifications failed.");
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Delivers the due notifications; returns how many were sent. Channels are served
/// concurrently, each in queue order, so a receiver that hangs until its timeout delays only
/// its own channel; after a failed attempt the rest of that channel's round waits for the next
/// round.
pub async fn send_due(db: &Db, vault: &Vault, gate: &crate::ha::Gate) -> anyhow::Result<usize> {
    let now = crate::clock::unix_secs();
    let due = db
        .call(move |conn| notify::due(conn, now, 100).map_err(db::DbError::from))
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    // In a pair: once the standby's copy holds these, a server taking over knows they were
    // decided (and sends them itself only if this one did not mark them sent).
    gate.replicated().await;
    if !gate.may_act() {
        return Ok(0);
    }
    let mut by_channel: BTreeMap<i64, Vec<notify::Due>> = BTreeMap::new();
    for item in due {
        by_channel.entry(item.channel_id).or_default().push(item);
    }
    let mut rounds = tokio::task::JoinSet::new();
    for (channel_id, items) in by_channel {
        rounds.spawn(send_channel(db.clone(), vault.clone(), channel_id, items));
    }
    let mut sent = 0;
    while let Some(round) = rounds.join_next().await {
        sent += round??;
    }
    Ok(sent)
}

/// One channel's round: its due notifications in order, until one fails.
async fn send_channel(
    db: Db,
    vault: Vault,
    channel_id: i64,
    items: Vec<notify::Due>,
) -> anyhow::Result<usize> {
    let row = db
        .call(move |conn| notify::get_channel(conn, channel_id).map_err(db::DbError::from))
        .await?;
    let opened = match row {
        Some(row) => open_channel(&vault, &row),
        None => Err("the channel was deleted".to_owned()),
    };
    let mut sent = 0;
    for item in items {
        let outcome = match &opened {
            Ok((channel, secrets)) => match serde_json::from_str::<Notification>(&item.payload) {
                Ok(notification) => deliver(channel, secrets, &notification).await,
                Err(e) => Err(format!("unreadable queued notification: {e}")),
            },
            Err(e) => Err(e.clone()),
        };
        let (id, attempts) = (item.id, item.attempts);
        let now = crate::clock::unix_secs();
        match outcome {
            Ok(()) => {
                sent += 1;
                db.call(move |conn| notify::mark_sent(conn, id, now).map_err(db::DbError::from))
                    .await?;
            }
            Err(error) => {
                let next = (attempts + 1 < MAX_ATTEMPTS).then(|| now + backoff_s(attempts));
                tracing::warn!(notification = id, channel = channel_id, attempts = attempts + 1, %error, "Notification not delivered.");
                db.call(move |conn| {
                    notify::mark_failed(conn, id, &error, next).map_err(db::DbError::from)
                })
                .await?;
                break;
            }
        }
    }
    Ok(sent)
}

/// A one-line summary used as email subject and syslog message.
pub fn headline(n: &Notification) -> String {
    let subject = n
        .node
        .as_deref()
        .or(n.collector.as_deref())
        .unwrap_or("plantwatch");
    let what = match n.event.as_str() {
        "resolved" => "RESOLVED".to_owned(),
        "test" => "TEST".to_owned(),
        _ => n.severity.as_str().to_uppercase(),
    };
    let series = if n.series.is_empty() {
        String::new()
    } else {
        format!(" {}", n.series)
    };
    format!("[{what}] {} on {subject}{series}: {}", n.rule, n.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> Channel {
        Channel {
            id: 1,
            name: "ops".into(),
            kind: ChannelKind::Webhook,
            settings: ChannelSettings::default(),
            secrets: vec![],
            min_severity: Severity::Critical,
            tags: vec!["line-1".into()],
            collectors: vec![],
            repeat_s: 0,
            send_resolved: true,
            enabled: true,
        }
    }

    #[test]
    fn routes_filter_by_severity_tag_and_collector() {
        let mut c = channel();
        let tags = vec!["line-1".to_owned()];
        assert!(routes(&c, Severity::Critical, &tags, None));
        assert!(!routes(&c, Severity::Warning, &tags, None));
        assert!(!routes(
            &c,
            Severity::Critical,
            &["line-2".to_owned()],
            None
        ));
        c.tags.clear();
        c.collectors = vec!["Site-A".into()];
        assert!(routes(&c, Severity::Critical, &[], Some("site-a")));
        assert!(!routes(&c, Severity::Critical, &[], Some("site-b")));
        assert!(!routes(&c, Severity::Critical, &[], None));
        c.enabled = false;
        assert!(!routes(&c, Severity::Critical, &[], Some("site-a")));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_s(0), 5);
        assert_eq!(backoff_s(1), 10);
        assert_eq!(backoff_s(3), 40);
        assert_eq!(backoff_s(20), MAX_BACKOFF_S);
    }

    #[test]
    fn settings_are_checked_per_kind() {
        let mut s = ChannelSettings::default();
        assert!(settings_problem(ChannelKind::Webhook, &s).is_some());
        s.url = Some("ftp://x".into());
        assert!(settings_problem(ChannelKind::Webhook, &s).is_some());
        s.url = Some("https://hooks.example/x".into());
        assert_eq!(settings_problem(ChannelKind::Webhook, &s), None);
        let mut e = ChannelSettings {
            smtp_host: Some("relay".into()),
            from: Some("plantwatch@plant.example".into()),
            ..ChannelSettings::default()
        };
        assert!(
            settings_problem(ChannelKind::Email, &e)
                .unwrap()
                .contains("to")
        );
        e.to = vec!["not an address".into()];
        assert!(settings_problem(ChannelKind::Email, &e).is_some());
        e.to = vec!["ops@plant.example".into()];
        assert_eq!(settings_problem(ChannelKind::Email, &e), None);
        let mut l = ChannelSettings {
            host: Some("siem".into()),
            protocol: Some("quic".into()),
            ..ChannelSettings::default()
        };
        assert!(settings_problem(ChannelKind::Syslog, &l).is_some());
        l.protocol = Some("tcp".into());
        assert_eq!(settings_problem(ChannelKind::Syslog, &l), None);
    }
}
