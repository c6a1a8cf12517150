//! ICMP echo with surge-ping: a few probes per interval give RTT min/avg/max, loss and `up`.
//! One socket per address family for the whole collector; one pinger per target with its own
//! identifier.

use plantwatch_shared::metric_names::{PING_RTT_AVG_MS, PING_UP};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use plantwatch_shared::lineproto::Writer;
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence};

/// Probes per poll.
pub const PROBES: u16 = 3;
/// How long one probe waits for its echo.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What one echo request got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Echo {
    /// An echo reply, after this long.
    Reply(Duration),
    /// An ICMP error (destination unreachable: the scanner's own kernel sends one when ARP
    /// for the address failed): the host is not there, and asking again changes nothing.
    Unreachable,
    /// Nothing within the pinger's timeout.
    Silent,
}

/// Sends one echo request. surge-ping hands the ICMP errors a request caused to the waiting
/// ping as if they were replies; only an echo reply counts as one here.
pub async fn echo(pinger: &mut surge_ping::Pinger, sequence: PingSequence) -> Echo {
    match pinger.ping(sequence, &[0u8; 32]).await {
        Ok((packet, rtt)) => {
            let reply = match packet {
                IcmpPacket::V4(p) => p.get_icmp_type().0 == 0,
                IcmpPacket::V6(p) => p.get_icmpv6_type().0 == 129,
            };
            if reply {
                Echo::Reply(rtt)
            } else {
                Echo::Unreachable
            }
        }
        Err(_) => Echo::Silent,
    }
}

/// The collector's ICMP sockets.
pub struct Icmp {
    v4: Option<Client>,
    v6: Option<Client>,
    next_ident: AtomicU16,
}

impl std::fmt::Debug for Icmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Icmp")
            .field("v4", &self.v4.is_some())
            .field("v6", &self.v6.is_some())
            .finish()
    }
}

impl Icmp {
    /// Opens the sockets; `None` when neither can be opened (no CAP_NET_RAW and unprivileged
    /// ICMP disabled), with the reason.
    pub fn open() -> Result<Icmp, String> {
        let v4 = Client::new(&Config::default());
        let v6 = Client::new(&Config::builder().kind(ICMP::V6).build());
        match (v4, v6) {
            (Err(error), Err(_)) => Err(format!(
                "cannot open an ICMP socket ({error}); run as root or grant CAP_NET_RAW"
            )),
            (v4, v6) => Ok(Icmp {
                v4: v4.ok(),
                v6: v6.ok(),
                next_ident: AtomicU16::new(rand::random()),
            }),
        }
    }

    /// A pinger for one address with its own identifier and `timeout`; `None` when the
    /// address's family has no socket.
    pub async fn pinger(&self, ip: IpAddr, timeout: Duration) -> Option<surge_ping::Pinger> {
        let client = match ip {
            IpAddr::V4(_) => self.v4.as_ref()?,
            IpAddr::V6(_) => self.v6.as_ref()?,
        };
        let ident = PingIdentifier(self.next_ident.fetch_add(1, Ordering::Relaxed));
        let mut pinger = client.pinger(ip, ident).await;
        pinger.timeout(timeout);
        Some(pinger)
    }

    /// A prober for one address.
    pub async fn prober(&self, ip: IpAddr) -> Option<Prober> {
        Some(Prober {
            pinger: self.pinger(ip, PROBE_TIMEOUT).await?,
            sequence: 0,
        })
    }
}

/// Result of one round of probes.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub sent: u16,
    /// Round-trip times of the answered probes, in ms.
    pub rtts_ms: Vec<f64>,
}

impl Round {
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 100.0;
        }
        100.0 * f64::from(self.sent - self.rtts_ms.len() as u16) / f64::from(self.sent)
    }

    /// Writes `ping,node_id=… up,loss_pct,rtt_min_ms,rtt_avg_ms,rtt_max_ms,sent`.
    pub fn write(&self, node: &str, now_ms: i64, out: &mut Writer) {
        let answered = !self.rtts_ms.is_empty();
        let mut line = out
            .line(PING_UP.measurement, &[("node_id", node)])
            .float(PING_UP.field, if answered { 1.0 } else { 0.0 })
            .float("loss_pct", self.loss_pct())
            .float("sent", f64::from(self.sent));
        if answered {
            let min = self.rtts_ms.iter().copied().fold(f64::INFINITY, f64::min);
            let max = self.rtts_ms.iter().copied().fold(0.0, f64::max);
            let avg = self.rtts_ms.iter().sum::<f64>() / self.rtts_ms.len() as f64;
            line = line
                .float("rtt_min_ms", min)
                .float(PING_RTT_AVG_MS.field, avg)
                .float("rtt_max_ms", max);
        }
        line.finish(now_ms);
    }
}

/// Pings one address.
pub struct Prober {
    pinger: surge_ping::Pinger,
    sequence: u16,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("host", &self.pinger.host)
            .finish()
    }
}

impl Prober {
    /// Sends `PROBES` echoes one after the other.
    pub async fn round(&mut self) -> Round {
        let mut rtts_ms = Vec::with_capacity(PROBES as usize);
        for _ in 0..PROBES {
            self.sequence = self.sequence.wrapping_add(1);
            if let Echo::Reply(rtt) = echo(&mut self.pinger, PingSequence(self.sequence)).await {
                rtts_ms.push(rtt.as_secs_f64() * 1_000.0);
            }
        }
        Round {
            sent: PROBES,
            rtts_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_gives_rtt_statistics_and_loss() {
        let round = Round {
            sent: 3,
            rtts_ms: vec![1.0, 3.0],
        };
        let mut out = Writer::new();
        round.write("7", 1_000, &mut out);
        let text = out.take();
        assert!(
            text.starts_with("ping,node_id=7 up=1.0,loss_pct=33.33"),
            "{text}"
        );
        assert!(
            text.contains("rtt_min_ms=1.0,rtt_avg_ms=2.0,rtt_max_ms=3.0"),
            "{text}"
        );
        let silent = Round {
            sent: 3,
            rtts_ms: vec![],
        };
        silent.write("7", 1_000, &mut out);
        let text = out.take();
        assert!(text.contains("up=0.0,loss_pct=100.0,sent=3.0 "), "{text}");
        assert!(!text.contains("rtt"));
    }

    #[tokio::test]
    async fn loopback_answers_pings() {
        // Needs CAP_NET_RAW (tests run as root, as CI does).
        let icmp = Icmp::open().expect("ICMP sockets (run the tests as root)");
        let mut prober = icmp.prober("127.0.0.1".parse().unwrap()).await.unwrap();
        let round = prober.round().await;
        assert_eq!(round.sent, PROBES);
        assert_eq!(round.rtts_ms.len(), PROBES as usize, "{round:?}");
        assert!(round.rtts_ms.iter().all(|ms| *ms < 100.0));
    }
}
