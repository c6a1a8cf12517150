//! The `dns` check: one query, straight to the node as a name server (no cache, no search
//! domains, no other server), judged by its answer code and, when told, the answer expected.

use std::net::SocketAddr;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use hickory_net::client::{Client, ClientHandle as _};
use hickory_net::proto::op::ResponseCode;
use hickory_net::proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::{DnsError, NetError};
use plantwatch_shared::api::{CheckSpec, DnsRecord};

use super::{Measured, down};

/// Asks the name server at `server` what the check asks, within `timeout`.
pub async fn run(server: SocketAddr, spec: &CheckSpec, timeout: Duration) -> Measured {
    let query = spec.query.as_deref().unwrap_or_default();
    let asked = format!("{query} {} at {server}", spec.record());
    let name = match Name::from_str(query) {
        Ok(name) => name,
        Err(error) => return down(format!("{asked}: {error}")),
    };
    let started = Instant::now();
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout))
        .with_max_retries(0)
        .build();
    let (mut client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let background = tokio::spawn(background);
    let answer = tokio::time::timeout(
        timeout,
        client.query(name, DNSClass::IN, record_type(spec.record())),
    )
    .await;
    background.abort();
    let time_ms = started.elapsed().as_secs_f64() * 1000.0;
    let response = match answer {
        Err(_) | Ok(Err(NetError::Timeout)) => {
            return down(format!(
                "{asked}: no answer within {} ms",
                timeout.as_millis()
            ));
        }
        Ok(Err(NetError::Dns(DnsError::ResponseCode(code)))) => {
            return answered_no(&asked, code, time_ms);
        }
        Ok(Err(NetError::Dns(DnsError::NoRecordsFound(no)))) => {
            return answered_no(&asked, no.response_code, time_ms);
        }
        Ok(Err(error)) => return down(format!("{asked}: {error}")),
        Ok(Ok(response)) => response,
    };
    if response.response_code != ResponseCode::NoError {
        return answered_no(&asked, response.response_code, time_ms);
    }
    let answers: Vec<String> = response
        .answers
        .iter()
        .filter(|record| record.record_type() == record_type(spec.record()))
        .map(|record| answer_text(&record.data))
        .collect();
    let problem = if answers.is_empty() {
        Some(format!("{asked}: no {} record", spec.record()))
    } else {
        spec.expect_answer.as_ref().and_then(|expected| {
            let wanted = normal(expected);
            (!answers.iter().any(|a| normal(a) == wanted))
                .then(|| format!("{asked}: answered {}, not {expected}", answers.join(", ")))
        })
    };
    Measured {
        up: problem.is_none(),
        time_ms: Some(time_ms),
        http_status: None,
        problem,
    }
}

/// The server answered, but not with the records: NXDOMAIN, SERVFAIL, REFUSED… The time is
/// kept (the server is there, only the name is not).
fn answered_no(asked: &str, code: ResponseCode, time_ms: f64) -> Measured {
    let what = match code {
        ResponseCode::NXDomain => "no such name (NXDOMAIN)".to_owned(),
        ResponseCode::NoError => "no record of that type".to_owned(),
        other => format!("the server answered {other}"),
    };
    Measured {
        up: false,
        time_ms: Some(time_ms),
        http_status: None,
        problem: Some(format!("{asked}: {what}")),
    }
}

fn record_type(record: DnsRecord) -> RecordType {
    match record {
        DnsRecord::A => RecordType::A,
        DnsRecord::Aaaa => RecordType::AAAA,
        DnsRecord::Cname => RecordType::CNAME,
        DnsRecord::Mx => RecordType::MX,
        DnsRecord::Txt => RecordType::TXT,
        DnsRecord::Ptr => RecordType::PTR,
        DnsRecord::Ns => RecordType::NS,
        DnsRecord::Srv => RecordType::SRV,
        DnsRecord::Soa => RecordType::SOA,
    }
}

/// What an answer says, as one compares it: the address, the name pointed to (an MX's mail
/// server, an SRV's target, an SOA's primary), the text.
fn answer_text(data: &RData) -> String {
    match data {
        RData::MX(mx) => mx.exchange.to_string(),
        RData::SRV(srv) => srv.target.to_string(),
        RData::SOA(soa) => soa.mname.to_string(),
        other => other.to_string(),
    }
}

/// Case and a trailing dot do not matter (`Mail.Plant.Local.` is `mail.plant.local`).
fn normal(text: &str) -> String {
    text.trim().trim_end_matches('.').to_ascii_lowercase()
}
