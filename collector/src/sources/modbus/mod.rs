//! Modbus TCP: the points of a node's Modbus profile (its template's `[modbus]`), read with
//! the four read functions only — nothing here can write. One connection per gateway
//! (address and port) is shared by every node behind it and its requests go one at a time
//! (gateways to serial lines answer one at a time); neighbouring points share a read. A read
//! that times out is tried again on a new connection; a unit that stays silent (or that the
//! gateway says does not respond) is skipped for the rest of that poll, so a dead device costs
//! its own timeouts only.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use plantwatch_shared::api::modbus::{self, Function, ModbusDef, PointValue, Read};
use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::metric_names::MODBUS_UP;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::{ExceptionCode, Slave, SlaveContext};

#[cfg(test)]
mod real;

/// Wait for one answer when the profile names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Further tries after a timeout when the profile names none.
pub const DEFAULT_RETRIES: u32 = 1;

/// String points: one series per point, its text in the tag `value`.
pub const INFO_MEASUREMENT: &str = "modbus_info";

/// One gateway's connection, shared by the nodes behind it; the lock serialises requests.
pub struct Gateway {
    addr: SocketAddr,
    connection: tokio::sync::Mutex<Option<Context>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("addr", &self.addr).finish()
    }
}

/// The open gateways by address: a node's task takes its gateway here; the connection
/// closes when the last node behind it stops.
#[derive(Debug, Default)]
pub struct Gateways {
    open: Mutex<HashMap<SocketAddr, Weak<Gateway>>>,
}

impl Gateways {
    pub fn get(&self, addr: SocketAddr) -> Arc<Gateway> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, gateway| gateway.strong_count() > 0);
        if let Some(gateway) = open.get(&addr).and_then(Weak::upgrade) {
            return gateway;
        }
        let gateway = Arc::new(Gateway {
            addr,
            connection: tokio::sync::Mutex::new(None),
        });
        open.insert(addr, Arc::downgrade(&gateway));
        gateway
    }
}

/// How one read ended.
enum Answer {
    Values(Vec<u16>),
    Exception(ExceptionCode),
    /// No answer within the timeout after every try, or no connection.
    Silent(String),
}

/// A node read over Modbus.
pub struct ModbusTarget {
    node_id: i64,
    gateway: Arc<Gateway>,
    def: ModbusDef,
    reads: Vec<Read>,
    timeout: Duration,
    retries: u32,
    /// Exception answers since the task started (a counter).
    exceptions_total: u64,
}

/// What a poll did.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Points read and written.
    pub points: usize,
    /// Exception answers this poll.
    pub exceptions: usize,
    /// Why the device did not answer, if it did not.
    pub error: Option<String>,
}

impl ModbusTarget {
    pub fn new(
        node_id: i64,
        gateway: Arc<Gateway>,
        def: ModbusDef,
        node_unit: Option<u8>,
    ) -> ModbusTarget {
        ModbusTarget {
            node_id,
            gateway,
            reads: modbus::plan(&def, node_unit),
            timeout: def
                .timeout_ms
                .map_or(DEFAULT_TIMEOUT, |ms| Duration::from_millis(u64::from(ms))),
            retries: def.retries.unwrap_or(DEFAULT_RETRIES),
            def,
            exceptions_total: 0,
        }
    }

    /// Reads every point once and writes them, then the `modbus` line, at `now`.
    pub async fn poll(&mut self, now: i64, out: &mut Writer) -> Outcome {
        let started = Instant::now();
        let node = self.node_id.to_string();
        let mut outcome = Outcome::default();
        let mut answered = false;
        let mut silent_units: HashSet<u8> = HashSet::new();
        let mut connection = self.gateway.connection.lock().await;
        for read in &self.reads {
            if silent_units.contains(&read.unit) {
                continue;
            }
            match self.ask(&mut connection, read).await {
                Answer::Values(values) => {
                    answered = true;
                    outcome.points += write_points(&self.def, read, &values, &node, now, out);
                }
                Answer::Exception(
                    code @ (ExceptionCode::GatewayPathUnavailable
                    | ExceptionCode::GatewayTargetDevice),
                ) => {
                    // The gateway answers for a device that does not: that device is down.
                    outcome.exceptions += 1;
                    silent_units.insert(read.unit);
                    outcome.error = Some(format!("unit {}: the gateway says {code}", read.unit));
                }
                Answer::Exception(code) => {
                    answered = true;
                    outcome.exceptions += 1;
                    tracing::debug!(
                        node_id = self.node_id,
                        unit = read.unit,
                        function = read.function.code(),
                        address = read.address,
                        count = read.count,
                        "Modbus exception: {code}."
                    );
                }
                Answer::Silent(why) => {
                    silent_units.insert(read.unit);
                    outcome.error = Some(why);
                }
            }
        }
        drop(connection);
        self.exceptions_total += outcome.exceptions as u64;
        out.line(MODBUS_UP.measurement, &[("node_id", &node)])
            .float(MODBUS_UP.field, if answered { 1.0 } else { 0.0 })
            .float("exceptions_total", self.exceptions_total as f64)
            .float(
                "poll_duration_ms",
                started.elapsed().as_secs_f64() * 1_000.0,
            )
            .finish(now);
        outcome
    }

    /// One read, tried again on a new connection after a timeout or a broken one.
    async fn ask(&self, connection: &mut Option<Context>, read: &Read) -> Answer {
        let mut why = String::new();
        for _ in 0..=self.retries {
            if connection.is_none() {
                match tokio::time::timeout(
                    self.timeout,
                    tokio_modbus::client::tcp::connect(self.gateway.addr),
                )
                .await
                {
                    Ok(Ok(context)) => *connection = Some(context),
                    Ok(Err(error)) => {
                        // Refused or unreachable: another try now would say the same.
                        return Answer::Silent(format!(
                            "cannot connect to {}: {error}",
                            self.gateway.addr
                        ));
                    }
                    Err(_) => {
                        why = format!(
                            "no connection to {} within {:?}",
                            self.gateway.addr, self.timeout
                        );
                        continue;
                    }
                }
            }
            let Some(context) = connection.as_mut() else {
                continue;
            };
            context.set_slave(Slave(read.unit));
            let (address, count) = (read.address, read.count);
            let answer = tokio::time::timeout(self.timeout, async {
                match read.function {
                    Function::Coil => context
                        .read_coils(address, count)
                        .await
                        .map(|r| r.map(bits_as_words)),
                    Function::DiscreteInput => context
                        .read_discrete_inputs(address, count)
                        .await
                        .map(|r| r.map(bits_as_words)),
                    Function::Holding => context.read_holding_registers(address, count).await,
                    Function::Input => context.read_input_registers(address, count).await,
                }
            })
            .await;
            match answer {
                Ok(Ok(Ok(values))) if values.len() >= usize::from(count) => {
                    return Answer::Values(values);
                }
                Ok(Ok(Ok(values))) => {
                    why = format!("{} values where {count} were asked for", values.len());
                }
                Ok(Ok(Err(code))) => return Answer::Exception(code),
                Ok(Err(error)) => why = format!("unit {}: {error}", read.unit),
                Err(_) => why = format!("unit {}: no answer within {:?}", read.unit, self.timeout),
            }
            // A late answer must not be taken for the next question: start over.
            *connection = None;
        }
        Answer::Silent(why)
    }
}

fn bits_as_words(bits: Vec<bool>) -> Vec<u16> {
    bits.into_iter().map(u16::from).collect()
}

/// Decodes the points `read` answers from `values` and writes one line each; returns how many.
fn write_points(
    def: &ModbusDef,
    read: &Read,
    values: &[u16],
    node: &str,
    now: i64,
    out: &mut Writer,
) -> usize {
    let mut written = 0;
    for &index in &read.points {
        let point = &def.points[index];
        let start = usize::from(point.address - read.address);
        let Some(words) = values.get(start..start + usize::from(point.width())) else {
            continue;
        };
        let mut tags: Vec<(&str, &str)> = vec![("node_id", node)];
        tags.extend(point.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match modbus::decode_point(words, point) {
            Some(PointValue::Number(value)) => {
                let value = value * point.scale + point.offset;
                if !value.is_finite() {
                    continue;
                }
                let (measurement, field) = point.metric();
                out.line(measurement, &tags).float(field, value).finish(now);
            }
            Some(PointValue::Text(text)) => {
                tags.push(("point", &point.name));
                tags.push(("value", &text));
                out.line(INFO_MEASUREMENT, &tags)
                    .float("present", 1.0)
                    .finish(now);
            }
            None => continue,
        }
        written += 1;
    }
    written
}
