//! Syslog channel: one RFC 5424 message per notification, over UDP or TCP (octet-counted
//! framing, RFC 6587), facility local0.

use plantwatch_shared::api::{ChannelSettings, Notification, Severity};
use tokio::io::AsyncWriteExt as _;

/// local0.
const FACILITY: u8 = 16;

/// The RFC 5424 message for `n`, sent from `hostname`.
pub fn format(n: &Notification, hostname: &str) -> String {
    let level = match (n.event.as_str(), n.severity) {
        ("resolved" | "test", _) => 5, // notice
        (_, Severity::Critical) => 2,  // critical
        (_, Severity::Warning) => 4,   // warning
    };
    let timestamp =
        n.at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "-".to_owned());
    let escape = |text: &str| {
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
    };
    let mut data = format!(
        "[plantwatch@32473 event=\"{}\" rule=\"{}\" severity=\"{}\"",
        escape(&n.event),
        escape(&n.rule),
        n.severity
    );
    if let Some(node) = &n.node {
        data.push_str(&format!(" node=\"{}\"", escape(node)));
    }
    if let Some(id) = n.alert_id {
        data.push_str(&format!(" alert_id=\"{id}\""));
    }
    data.push(']');
    format!(
        "<{}>1 {timestamp} {} plantwatch - ALERT {data} {}",
        FACILITY * 8 + level,
        if hostname.is_empty() { "-" } else { hostname },
        super::headline(n)
    )
}

pub async fn send(settings: &ChannelSettings, n: &Notification) -> Result<(), String> {
    let host = settings.host.as_deref().ok_or("the channel has no host")?;
    let port = settings.port.unwrap_or(514);
    let hostname = hostname();
    let message = format(n, &hostname);
    match settings.protocol.as_deref().unwrap_or("udp") {
        "tcp" => {
            let mut stream = tokio::net::TcpStream::connect((host, port))
                .await
                .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
            let framed = format!("{} {message}", message.len());
            stream
                .write_all(framed.as_bytes())
                .await
                .map_err(|e| format!("writing to {host}:{port}: {e}"))?;
            stream.shutdown().await.map_err(|e| e.to_string())
        }
        _ => {
            let addr = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("resolving {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("{host} has no address"))?;
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = tokio::net::UdpSocket::bind(bind)
                .await
                .map_err(|e| e.to_string())?;
            socket
                .send_to(message.as_bytes(), addr)
                .await
                .map(drop)
                .map_err(|e| format!("sending to {addr}: {e}"))
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_rfc_5424() {
        let n = Notification {
            event: "firing".into(),
            alert_id: Some(7),
            rule: "node_unreachable".into(),
            severity: Severity::Critical,
            node: Some("plc-\"1\"".into()),
            address: None,
            collector: None,
            series: String::new(),
            value: None,
            message: "no answer".into(),
            affected_nodes: None,
            at: time::macros::datetime!(2026-11-29 12:00 UTC),
            also: Vec::new(),
        };
        let text = format(&n, "pw1");
        assert_eq!(
            text,
            "<130>1 2026-11-29T12:00:00Z pw1 plantwatch - ALERT [plantwatch@32473 \
             event=\"firing\" rule=\"node_unreachable\" severity=\"critical\" \
             node=\"plc-\\\"1\\\"\" alert_id=\"7\"] [CRITICAL] node_unreachable on plc-\"1\": no answer"
        );
    }
}
