//! Modbus TCP devices for tests and benchmarks: tokio-modbus's server on a loopback port,
//! one memory per unit id (a gateway), units that never answer and a delay before each
//! answer; and a proxy that records every function code a client sends.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::prelude::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};

/// One device's memory, by unit id.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    pub holding: HashMap<u16, u16>,
    pub input: HashMap<u16, u16>,
    pub coils: HashMap<u16, bool>,
    pub discrete: HashMap<u16, bool>,
}

/// A gateway: units that answer, units that never do, and a delay before each answer.
#[derive(Debug, Default)]
pub struct Plant {
    pub units: HashMap<u8, Memory>,
    pub silent: HashSet<u8>,
    pub delay: Duration,
}

struct Device(Arc<Plant>);

/// `count` items from `address`, or the exception a device gives for an unmapped one.
fn read<T: Copy>(map: &HashMap<u16, T>, address: u16, count: u16) -> Result<Vec<T>, ExceptionCode> {
    (address..address.saturating_add(count))
        .map(|a| {
            map.get(&a)
                .copied()
                .ok_or(ExceptionCode::IllegalDataAddress)
        })
        .collect()
}

impl Service for Device {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Result<Option<Response>, ExceptionCode>> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let plant = self.0.clone();
        Box::pin(async move {
            if !plant.delay.is_zero() {
                // (A zero sleep would still wait for the timer's next millisecond tick.)
                tokio::time::sleep(plant.delay).await;
            }
            if plant.silent.contains(&req.slave) {
                return Ok(None);
            }
            let Some(memory) = plant.units.get(&req.slave) else {
                return Err(ExceptionCode::GatewayTargetDevice);
            };
            let response = match req.request {
                Request::ReadHoldingRegisters(a, n) => {
                    Response::ReadHoldingRegisters(read(&memory.holding, a, n)?)
                }
                Request::ReadInputRegisters(a, n) => {
                    Response::ReadInputRegisters(read(&memory.input, a, n)?)
                }
                Request::ReadCoils(a, n) => Response::ReadCoils(read(&memory.coils, a, n)?),
                Request::ReadDiscreteInputs(a, n) => {
                    Response::ReadDiscreteInputs(read(&memory.discrete, a, n)?)
                }
                _ => return Err(ExceptionCode::IllegalFunction),
            };
            Ok(Some(response))
        })
    }
}

/// Serves `plant` on a loopback port (a task of the current runtime).
pub async fn serve(plant: Plant) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_on(listener, Arc::new(plant)));
    addr
}

/// Serves `plant` on `listener` until the runtime ends.
pub async fn serve_on(listener: TcpListener, plant: Arc<Plant>) {
    let server = Server::new(listener);
    let on_connected = |stream, socket_addr| {
        let plant = plant.clone();
        async move {
            accept_tcp_connection(stream, socket_addr, move |_| {
                Ok(Some(Device(plant.clone())))
            })
        }
    };
    let _ = server.serve(&on_connected, |_| {}).await;
}

/// Serves `plant` on a loopback port from a thread of its own (for tests without a runtime);
/// it runs until the test process ends.
pub fn serve_in_thread(plant: Plant) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            serve_on(listener, Arc::new(plant)).await;
        });
    });
    addr
}

/// What the proxy saw the collector send: connections opened, function codes by request.
#[derive(Debug, Default)]
pub struct Wire {
    pub connections: usize,
    pub functions: Vec<u8>,
}

/// A TCP proxy to `upstream` that reads every request frame (MBAP header, then the function
/// code) the collector sends.
pub async fn watched(upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<Wire>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let wire = Arc::new(Mutex::new(Wire::default()));
    let seen = wire.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            seen.lock().unwrap().connections += 1;
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let (mut client_rx, mut client_tx) = client.into_split();
            let (mut server_rx, mut server_tx) = server.into_split();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = client_rx.read(&mut chunk).await {
                    if n == 0 || server_tx.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                    pending.extend_from_slice(&chunk[..n]);
                    while pending.len() >= 8 {
                        let total = 6 + usize::from(u16::from_be_bytes([pending[4], pending[5]]));
                        if pending.len() < total {
                            break;
                        }
                        seen.lock().unwrap().functions.push(pending[7]);
                        pending.drain(..total);
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
            });
        }
    });
    (addr, wire)
}

/// The registers holding `bytes` (A first) laid out in `order`.
pub use plantwatch_shared::api::modbus::registers_of as laid_out;

/// A Modbus TCP device served by pymodbus (`scripts/pymodbus_device.py`): a second, independent
/// implementation, its registers laid out by pymodbus's own converter. Killed when dropped.
pub struct PyModbus {
    pub addr: SocketAddr,
    child: std::process::Child,
}

impl Drop for PyModbus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts pymodbus serving `points` on unit 1: `[{"address", "type" (pymodbus's DATATYPE:
/// FLOAT32, UINT16, …), "order" (ABCD, CDAB, BADC, DCBA), "value"}]`.
pub fn pymodbus(points: &serde_json::Value) -> PyModbus {
    use std::io::{BufRead as _, Write as _};
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pymodbus_device.py");
    // Its warnings go to a file, shown only if it fails to start.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("python3 (pymodbus: scripts/test installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(points.to_string().as_bytes()).unwrap();
    drop(stdin);
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| {
        let errors = std::fs::read_to_string(log.path()).unwrap_or_default();
        panic!("pymodbus did not start (is it installed?): {line:?}\n{errors}")
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "pymodbus is not listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    PyModbus { addr, child }
}
