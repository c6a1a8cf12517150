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
    line("At:", &n.at.to_string());
    if let Some(id) = n.alert_id {
        line("Alert:", &format!("{id} (plantwatch alerts ack {id})"));
    }
    text
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
    let from: Mailbox = settings
        .from
        .as_deref()
        .ok_or("the channel has no from address")?
        .parse()
        .map_err(|e| format!("from: {e}"))?;
    let mut builder = Message::builder().from(from).subject(super::headline(n));
    for to in &settings.to {
        builder = builder.to(to.parse().map_err(|e| format!("to {to}: {e}"))?);
    }
    let message = builder
        .body(body(n))
        .map_err(|e| format!("building the message: {e}"))?;
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
