//! Email channel (lettre): plain SMTP, STARTTLS or implicit TLS, usually to the plant's local
//! relay; optional login.

use std::collections::BTreeMap;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use plantwatch_shared::Secret;
use plantwatch_shared::api::{ChannelSettings, Notification};

/// Whether `from` and every `to` parse as addresses.
pub fn check_addresses(settings: &ChannelSettings) -> Result<(), String> {
    for address in settings.from.iter().chain(settings.to.iter()) {
        address
            .parse::<Mailbox>()
            .map_err(|e| format!("'{address}' is not an email address: {e}"))?;
    }
    Ok(())
}

/// TLS towards `host`: the system's roots, and `ca_pem` when the relay has its own certificate.
pub fn tls_parameters(host: &str, ca_pem: Option<&str>) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(pem) = ca_pem {
        check_pem(pem)?;
        let certificate = Certificate::from_pem(pem.as_bytes())
            .map_err(|e| format!("tls_ca_pem is not a PEM certificate: {e}"))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("TLS settings for {host}: {e}"))
}

/// Refuses text that holds no well-formed PEM certificate (the TLS backend would silently
/// ignore it and then refuse the relay).
fn check_pem(pem: &str) -> Result<(), String> {
    use base64::Engine as _;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut found = 0;
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body
            .find(END)
            .ok_or("tls_ca_pem has a certificate without its END line")?;
        let base64: String = body[..end].split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(base64)
            .map_err(|e| format!("tls_ca_pem holds a damaged certificate: {e}"))?;
        found += 1;
        rest = &body[end + END.len()..];
    }
    if found == 0 {
        return Err("tls_ca_pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(())
}

/// The plain-text body.
pub fn body(n: &Notification) -> String {
    let mut text = format!("{}\n\n", super::headline(n));
    let mut line = |label: &str, value: &str| text.push_str(&format!("{label:<10} {value}\n"));
    line("Event:", &n.event);
    line("Rule:", &n.rule);
    line("Severity:", n.severity.as_str());
    if let Some(node) = &n.node {
        line("Node:", node);
    }
    if let Some(address) = &n.address {
        line("Address:", address);
    }
    if let Some(collector) = &n.collector {
        line("Collector:", collector);
    }
    if !n.series.is_empty() {
        line("Series:", &n.series);
    }
    if let Some(value) = n.value {
        line("Value:", &format!("{value}"));
    }
    if let Some(count) = n.affected_nodes {
        line(
            "Affected:",
            &format!("{count} node(s) behind it, not notified one by one"),
        );
    }
    if !n.also.is_empty() {
        line(
            "Also:",
            &format!("{} more alert(s) of this rule on this node:", n.also.len()),
        );
        for a in &n.also {
            line("", &format!("{}: {}", a.alert_id, a.message));
        }
    }
    line("At:", &rfc3339(n.at));
    if let Some(id) = n.alert_id {
        if n.event == "resolved" {
            line("Alert:", &id.to_string());
        } else {
            line("Alert:", &format!("{id} (plantwatch alerts ack {id})"));
        }
    }
    text
}

/// `2026-12-03T16:15:07Z`.
fn rfc3339(at: time::OffsetDateTime) -> String {
    use time::format_description::well_known::Rfc3339;
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// The message as sent: a proper MIME text part (MIME-Version, `text/plain; charset=utf-8`, a
/// transfer encoding the body fits), with Date and Message-ID.
pub fn message(settings: &ChannelSettings, n: &Notification) -> Result<Message, String> {
    use lettre::message::SinglePart;
    let from: Mailbox = settings
        .from
        .as_deref()
        .ok_or("the channel has no from address")?
        .parse()
        .map_err(|e| format!("from: {e}"))?;
    let domain = from.email.domain().to_owned();
    let mut builder = Message::builder()
        .from(from)
        .subject(super::headline(n))
        .date_now()
        .message_id(Some(format!(
            "<plantwatch.{}.{}.{}@{domain}>",
            n.alert_id.unwrap_or(0),
            n.event,
            rand::random::<u64>()
        )));
    for to in &settings.to {
        builder = builder.to(to.parse().map_err(|e| format!("to {to}: {e}"))?);
    }
    builder
        .singlepart(SinglePart::plain(body(n)))
        .map_err(|e| format!("building the message: {e}"))
}

pub async fn send(
    settings: &ChannelSettings,
    secrets: &BTreeMap<String, Secret>,
    n: &Notification,
    timeout: Duration,
) -> Result<(), String> {
    let host = settings
        .smtp_host
        .as_deref()
        .ok_or("the channel has no smtp_host")?;
    let message = message(settings, n)?;
    let tls = settings.tls.as_deref().unwrap_or("none");
    let default_port = match tls {
        "tls" => 465,
        "starttls" => 587,
        _ => 25,
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(settings.smtp_port.unwrap_or(default_port))
        .timeout(Some(timeout));
    if tls != "none" {
        let parameters = tls_parameters(host, settings.tls_ca_pem.as_deref())?;
        transport = transport.tls(if tls == "tls" {
            Tls::Wrapper(parameters)
        } else {
            Tls::Required(parameters)
        });
    }
    if let (Some(user), Some(password)) = (&settings.username, secrets.get("password")) {
        transport =
            transport.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    transport
        .build()
        .send(message)
        .await
        .map(drop)
        .map_err(|e| format!("SMTP {host}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantwatch_shared::api::Severity;

    fn notification(event: &str) -> Notification {
        Notification {
            event: event.to_owned(),
            alert_id: Some(42),
            rule: "disk_high".into(),
            severity: Severity::Critical,
            node: Some("hall-a-srv".into()),
            address: Some("127.0.0.1".into()),
            collector: None,
            series: "storage.used_pct{descr=/}".into(),
            value: Some(97.5),
            message: "storage.used_pct{descr=/}: last 97.5 >= 95 — Grüße".into(),
            affected_nodes: None,
            at: time::macros::datetime!(2026-12-03 16:15:07.25 UTC),
            also: Vec::new(),
        }
    }

    fn settings() -> ChannelSettings {
        ChannelSettings {
            from: Some("plantwatch@plant.example".into()),
            to: vec!["ops@plant.example".into()],
            ..ChannelSettings::default()
        }
    }

    #[test]
    fn the_message_is_proper_mime_with_date_and_message_id() {
        let raw = message(&settings(), &notification("firing"))
            .unwrap()
            .formatted();
        let raw = String::from_utf8(raw).unwrap();
        let (headers, _) = raw.split_once("\r\n\r\n").unwrap();
        for header in [
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: ",
            "Message-ID: <plantwatch.42.firing.",
            "Date: ",
        ] {
            assert!(headers.contains(header), "{header} missing in:\n{headers}");
        }
        // Non-ASCII text is encoded, so the transfer encoding is not 7bit.
        assert!(
            !headers.contains("Content-Transfer-Encoding: 7bit"),
            "{headers}"
        );
    }

    #[test]
    fn the_body_has_rfc3339_times_and_no_ack_advice_once_resolved() {
        let firing = body(&notification("firing"));
        assert!(
            firing.contains("At:        2026-12-03T16:15:07Z"),
            "{firing}"
        );
        assert!(firing.contains("plantwatch alerts ack 42"), "{firing}");
        let resolved = body(&notification("resolved"));
        assert!(!resolved.contains("ack"), "{resolved}");
        assert!(resolved.contains("Alert:     42\n"), "{resolved}");
    }
}
