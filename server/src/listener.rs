//! What the HTTPS listener does against clients that hold connections: a cap on open
//! connections (each accepted one holds a permit until it closes; past the cap new ones are
//! closed at once, with a warning in the log), an idle timeout on every connection (no byte
//! either way), TCP_NODELAY, and raising the open-file limit at start. The timeouts (TLS handshake, first request, header read, which also ends idle
//! keep-alive connections) are set where the server is built (`server.rs`).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::telemetry::registry::figures;
use crate::telemetry::{Counter, Exposition, Gauge, Report};
use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// File descriptors kept free for the databases, logs and outgoing connections when the
/// connection cap is derived from the open-file limit.
const RESERVED_FDS: u64 = 256;

/// The listener's figures for `/metrics`.
pub struct Connections {
    /// Connections refused because the cap was reached.
    pub refused: Counter,
    /// Connections open now.
    pub open: Gauge,
}

/// The process's listener figures (one listener per process).
pub static CONNECTIONS: Connections = Connections {
    refused: Counter::new(),
    open: Gauge::new(),
};

impl Report for Connections {
    fn report(&self, out: &mut Exposition) {
        out.value(&figures::HTTP_CONNECTIONS_OPEN, self.open.get() as f64);
        out.value(
            &figures::HTTP_CONNECTIONS_REFUSED,
            self.refused.get() as f64,
        );
    }
}

/// Raises the soft open-file limit to the hard one (the common soft default of 1,024 is too
/// few for a server), and returns the soft limit now in force.
pub fn raise_open_files_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (limit.current, limit.maximum);
    if soft != hard {
        let raised = rustix::process::Rlimit {
            current: hard,
            maximum: hard,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!(
                from = soft.map_or_else(|| "unlimited".into(), |s| s.to_string()),
                to = hard.map_or_else(|| "unlimited".into(), |s| s.to_string()),
                "Raised the open-file limit."
            ),
            Err(error) => tracing::warn!(%error, "Could not raise the open-file limit."),
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The connection cap: `configured`, but never more than the open-file limit allows.
pub fn connection_cap(configured: u64, open_files: u64) -> usize {
    let room = open_files.saturating_sub(RESERVED_FDS).max(16);
    configured.min(room).clamp(1, Semaphore::MAX_PERMITS as u64) as usize
}

/// Accepts connections while fewer than the cap are open; sets TCP_NODELAY (without it, a
/// response written in several segments waits on the client's delayed ACK).
#[derive(Debug, Clone)]
pub struct CappedAcceptor {
    permits: Arc<Semaphore>,
    cap: usize,
    /// A connection with no byte either way for this long is closed (HTTP/2 ones included,
    /// which the header timeout does not cover).
    idle: Duration,
    /// When the last "cap reached" warning was logged (UNIX seconds), to log once a minute.
    warned_at: Arc<AtomicI64>,
}

impl CappedAcceptor {
    pub fn new(cap: usize, idle: Duration) -> Self {
        CappedAcceptor {
            permits: Arc::new(Semaphore::new(cap)),
            cap,
            idle,
            warned_at: Arc::new(AtomicI64::new(0)),
        }
    }
}

impl<S> Accept<TcpStream, S> for CappedAcceptor {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            CONNECTIONS.refused.fetch_add(1, Ordering::Relaxed);
            let now = crate::clock::unix_secs();
            let last = self.warned_at.load(Ordering::Relaxed);
            if now - last >= 60
                && self
                    .warned_at
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    cap = self.cap,
                    peer = %stream.peer_addr().map_or_else(|_| "?".into(), |a| a.to_string()),
                    "Connection cap reached: new connections are closed until some end \
                     (max_connections; idle ones close after the header-read timeout)."
                );
            }
            return std::future::ready(Err(io::Error::other("connection cap reached")));
        };
        let accepted = stream.set_nodelay(true).map(|()| {
            CONNECTIONS.open.fetch_add(1, Ordering::Relaxed);
            (
                Counted {
                    inner: stream,
                    _permit: permit,
                    idle: self.idle,
                    deadline: Box::pin(tokio::time::sleep(self.idle)),
                },
                service,
            )
        });
        std::future::ready(accepted)
    }
}

/// A connection holding its place under the cap until dropped, and failing once no byte has
/// gone either way for `idle`.
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<T> Counted<T> {
    /// Bytes moved: the idle clock starts again.
    fn touch(&mut self) {
        let at = tokio::time::Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }

    /// A write's outcome: bytes restart the idle clock; a peer that stops reading what it
    /// asked for is idle too.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    /// While waiting on the peer: an error once it has been idle too long.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle too long")
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        CONNECTIONS.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(cx, written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_under_the_open_file_limit() {
        assert_eq!(connection_cap(4_096, 1_024), 768);
        assert_eq!(connection_cap(4_096, 1_048_576), 4_096);
        assert_eq!(connection_cap(10, 1_048_576), 10);
        assert_eq!(connection_cap(4_096, 100), 16);
    }
}
