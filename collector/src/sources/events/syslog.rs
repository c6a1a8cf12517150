//! The syslog receiver: RFC 5424 and RFC 3164 messages (read by `syslog_loose`, loosely, as
//! devices write them), over UDP (a datagram a message) and TCP, framed by octet counting
//! (RFC 6587: `LEN SP MSG`) or by newlines, told apart per message.

use std::net::IpAddr;

use plantwatch_shared::api::{CollectedEvent, EventKind, EventSeverity, SyslogInfo};
use syslog_loose::{Protocol, Variant};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::{Sink, bounded};

/// Longest message read; longer ones are cut (TCP) or were cut by UDP itself.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// TCP connections at once.
const MAX_CONNECTIONS: usize = 256;

/// Receives datagrams on `socket` until aborted.
pub async fn receive_udp(socket: UdpSocket, sink: Sink) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if !sink.admit(from.ip().to_canonical()) {
            continue;
        }
        let text = String::from_utf8_lossy(&buf[..len.min(MAX_MESSAGE_BYTES)]);
        for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
            let event = read(
                line,
                from.ip().to_canonical(),
                sink.uid(),
                OffsetDateTime::now_utc(),
            );
            sink.send(&event).await;
        }
    }
}

/// Accepts connections on `listener` until aborted.
pub async fn receive_tcp(listener: TcpListener, sink: Sink) {
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(%from, "Too many syslog connections; refusing one.");
            continue;
        };
        let sink = sink.clone();
        tokio::spawn(async move {
            connection(stream, from.ip().to_canonical(), sink).await;
            drop(permit);
        });
    }
}

/// One TCP sender: messages until it closes, each framed by a length or a newline.
async fn connection(stream: TcpStream, from: IpAddr, sink: Sink) {
    let mut reader = BufReader::new(stream);
    loop {
        let Ok(head) = reader.fill_buf().await else {
            return;
        };
        let Some(&first) = head.first() else {
            return;
        };
        let message = if first.is_ascii_digit() {
            // Octet counting: digits, a space, that many bytes.
            let mut digits = Vec::new();
            if reader.read_until(b' ', &mut digits).await.is_err() {
                return;
            }
            let length: usize = match std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| d.trim().parse().ok())
            {
                Some(length) if length <= MAX_MESSAGE_BYTES * 4 => length,
                _ => return,
            };
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
            body.truncate(MAX_MESSAGE_BYTES);
            body
        } else {
            let mut line = Vec::new();
            match (&mut reader)
                .take(MAX_MESSAGE_BYTES as u64)
                .read_until(b'\n', &mut line)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => line,
            }
        };
        let text = String::from_utf8_lossy(&message);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.trim().is_empty() || !sink.admit(from) {
            continue;
        }
        let event = read(text, from, sink.uid(), OffsetDateTime::now_utc());
        sink.send(&event).await;
    }
}

/// The event of one syslog message from `source`.
pub fn read(text: &str, source: IpAddr, uid: String, now: OffsetDateTime) -> CollectedEvent {
    let has_pri = text.starts_with('<');
    let parsed = syslog_loose::parse_message(text, Variant::Either);
    let format = match (has_pri, parsed.protocol) {
        (false, _) => "raw",
        (true, Protocol::RFC5424(_)) => "rfc5424",
        (true, Protocol::RFC3164) => "rfc3164",
    };
    // Without a priority, RFC 3164 says user.notice.
    let severity = parsed
        .severity
        .map_or(EventSeverity::Notice, |s| EventSeverity::of_code(s as u8));
    let facility = parsed.facility.map_or("user", |f| f.as_str()).to_owned();
    let some = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty() && *s != "-")
            .map(|s| bounded(s, 255))
    };
    let sent_at = parsed.timestamp.and_then(|t| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.timestamp_nanos_opt()?)).ok()
    });
    let message = if format == "raw" {
        text.trim().to_owned()
    } else {
        parsed.msg.trim().to_owned()
    };
    CollectedEvent {
        uid,
        kind: EventKind::Syslog,
        source: source.to_string(),
        severity,
        message: bounded(&message, MAX_MESSAGE_BYTES),
        received_at: now,
        trap: None,
        syslog: Some(SyslogInfo {
            format: format.into(),
            facility,
            hostname: some(parsed.hostname),
            program: some(parsed.appname),
            procid: parsed.procid.map(|p| bounded(&p.to_string(), 64)),
            msgid: some(parsed.msgid),
            sent_at,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    #[test]
    fn both_formats_and_a_bare_line_are_read() {
        let source: IpAddr = "10.0.0.5".parse().unwrap();
        let e = read(
            "<165>1 2026-12-04T10:00:00.000Z plc-gw-1 gateway 812 ID47 - Modbus link lost",
            source,
            "u1".into(),
            at(),
        );
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(
            (s.format.as_str(), s.facility.as_str(), e.severity),
            ("rfc5424", "local4", EventSeverity::Notice)
        );
        assert_eq!(s.hostname.as_deref(), Some("plc-gw-1"));
        assert_eq!(s.program.as_deref(), Some("gateway"));
        assert_eq!(s.procid.as_deref(), Some("812"));
        assert_eq!(s.msgid.as_deref(), Some("ID47"));
        assert_eq!(e.message, "Modbus link lost");
        assert!(s.sent_at.is_some());

        let e = read(
            "<11>Dec  4 10:00:00 sw-hall-a sshd[433]: error: PAM authentication failed",
            source,
            "u2".into(),
            at(),
        );
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(
            (s.format.as_str(), e.severity),
            ("rfc3164", EventSeverity::Error)
        );
        assert_eq!(s.program.as_deref(), Some("sshd"));
        assert_eq!(s.procid.as_deref(), Some("433"));
        assert!(e.message.contains("PAM authentication failed"), "{e:?}");

        let e = read("printer jammed", source, "u3".into(), at());
        assert_eq!(e.syslog.as_ref().unwrap().format, "raw");
        assert_eq!(
            (e.message.as_str(), e.severity),
            ("printer jammed", EventSeverity::Notice)
        );
    }
}
