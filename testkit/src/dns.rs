//! dnsmasq as the name server a test asks: on a loopback port, answering only the records the
//! test gives (no upstream, no /etc/hosts), killed when dropped.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_until};

/// A running dnsmasq, authoritative for the domains its records name (other names in them
/// answer NXDOMAIN; names elsewhere are refused for want of an upstream).
pub struct Dnsmasq {
    child: Child,
    pub address: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsmasq {
    /// Starts dnsmasq local for `domain`, with `records` as dnsmasq options
    /// (`--host-record=historian.plant.test,10.0.0.5`, `--mx-host=…`, `--txt-record=…`).
    pub fn start(domain: &str, records: &[&str]) -> Dnsmasq {
        let port = free_port();
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let child = Command::new(program())
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--no-negcache",
                "--pid-file=",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--user={user}"))
            .arg(format!("--local=/{domain}/"))
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian package dnsmasq-base; scripts/test installs it)");
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut server = Dnsmasq { child, address };
        wait_until(Duration::from_secs(10), "dnsmasq to answer", || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("dnsmasq exited at start: {status}");
            }
            answers(address).then_some(())
        });
        server.address = address;
        server
    }
}

fn program() -> &'static str {
    if std::path::Path::new("/usr/sbin/dnsmasq").exists() {
        "/usr/sbin/dnsmasq"
    } else {
        "dnsmasq"
    }
}

/// Whether a name server answers at `address` (any answer to a query for `.`).
fn answers(address: SocketAddr) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(200)));
    // Header (id 1, recursion desired, one question), the root name, type NS, class IN.
    let query = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
    let mut answer = [0u8; 512];
    socket.send_to(&query, address).is_ok() && socket.recv(&mut answer).is_ok_and(|n| n >= 12)
}
