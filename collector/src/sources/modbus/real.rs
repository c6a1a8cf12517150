//! The Modbus reader against real Modbus TCP servers on loopback (tokio-modbus's server, a
//! device per unit id behind one gateway: `plantwatch_testkit::modbus`), watched on the wire
//! by a proxy that records every function code the collector sends.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use plantwatch_shared::api::modbus::registers_of as laid_out;
use plantwatch_shared::api::modbus::{ByteOrder, DataType, Function, ModbusDef, PointDef};
use plantwatch_shared::lineproto::{Writer, parse_line};
use plantwatch_testkit::modbus::{Memory, Plant, serve, serve_on, watched};
use tokio::net::TcpListener;

use super::{Gateways, ModbusTarget};

/// (measurement, tags without node_id, field) → value, from the lines a poll wrote.
fn values(out: &Writer) -> BTreeMap<String, f64> {
    out.as_str()
        .lines()
        .flat_map(|line| {
            let line = parse_line(line).unwrap();
            let tags: Vec<String> = line
                .tags
                .iter()
                .filter(|(k, _)| k != "node_id")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let prefix = if tags.is_empty() {
                line.measurement.to_string()
            } else {
                format!("{},{}", line.measurement, tags.join(","))
            };
            line.fields
                .iter()
                .map(|(f, v)| (format!("{prefix}.{f}"), v.as_f64().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn every_type_in_every_order_reads_exactly_and_only_read_functions_go_out() {
    // Unit 5: for each byte order, every numeric type at its own holding addresses, a string,
    // a scaled input register, coils and discrete inputs, and one point nothing answers.
    let samples: [(DataType, Vec<u8>, f64); 9] = [
        (DataType::U16, 42_u16.to_be_bytes().to_vec(), 42.0),
        (DataType::I16, (-2_i16).to_be_bytes().to_vec(), -2.0),
        (DataType::U32, 4_000_000_000_u32.to_be_bytes().to_vec(), 4e9),
        (
            DataType::I32,
            (-123_456_i32).to_be_bytes().to_vec(),
            -123_456.0,
        ),
        (
            DataType::U64,
            9_000_000_000_000_u64.to_be_bytes().to_vec(),
            9e12,
        ),
        (
            DataType::I64,
            (-1_234_567_890_123_i64).to_be_bytes().to_vec(),
            -1_234_567_890_123.0,
        ),
        (
            DataType::F32,
            123.456_f32.to_be_bytes().to_vec(),
            f64::from(123.456_f32),
        ),
        (
            DataType::F64,
            (-0.000_125_f64).to_be_bytes().to_vec(),
            -0.000_125,
        ),
        (DataType::Bool, 1_u16.to_be_bytes().to_vec(), 1.0),
    ];
    let mut memory = Memory::default();
    let mut def = ModbusDef::default();
    let mut expected = BTreeMap::new();
    let mut address = 100;
    for order in ByteOrder::ALL {
        for (data_type, bytes, value) in &samples {
            let mut p = PointDef::new(
                &format!("t.{data_type}_{}", order.as_str().to_lowercase()),
                Function::Holding,
                address,
                *data_type,
            );
            p.order = *order;
            for (i, word) in laid_out(bytes, *order).into_iter().enumerate() {
                memory.holding.insert(address + i as u16, word);
            }
            address += p.width();
            expected.insert(format!("t.{}", p.metric().1), *value);
            def.points.push(p);
        }
    }
    // "PM5560" with swapped bytes, as many meters store text.
    for (i, word) in [0x4d50, 0x3535, 0x3036, 0x0000].into_iter().enumerate() {
        memory.holding.insert(10 + i as u16, word);
    }
    let mut model = PointDef::new("meter.model", Function::Holding, 10, DataType::String);
    model.length = Some(4);
    model.order = ByteOrder::Badc;
    def.points.push(model);
    expected.insert(
        "modbus_info,point=meter.model,value=PM5560.present".into(),
        1.0,
    );
    // A tank level in tenths of a per cent, with a tag.
    memory.input.insert(0, 805);
    let mut level = PointDef::new("tank.level_pct", Function::Input, 0, DataType::U16);
    level.scale = 0.1;
    level.tags.insert("tank".into(), "T-101".into());
    def.points.push(level);
    expected.insert("tank,tank=T-101.level_pct".into(), 80.5);
    memory.coils.extend([(0, true), (1, false)]);
    memory.discrete.insert(7, true);
    def.points.push(PointDef::new(
        "pump.running",
        Function::Coil,
        0,
        DataType::Bool,
    ));
    def.points.push(PointDef::new(
        "pump.fault",
        Function::Coil,
        1,
        DataType::Bool,
    ));
    def.points.push(PointDef::new(
        "door.open",
        Function::DiscreteInput,
        7,
        DataType::Bool,
    ));
    expected.insert("pump.running".into(), 1.0);
    expected.insert("pump.fault".into(), 0.0);
    expected.insert("door.open".into(), 1.0);
    // Nothing at 9000: an exception answer, counted; the other points still arrive.
    def.points.push(PointDef::new(
        "t.missing",
        Function::Holding,
        9000,
        DataType::U16,
    ));
    let plant = Plant {
        units: HashMap::from([(5, memory)]),
        ..Plant::default()
    };
    let (addr, wire) = watched(serve(plant).await).await;
    let gateways = Gateways::default();
    let mut target = ModbusTarget::new(1, gateways.get(addr), def.clone(), Some(5));
    let planned = target.reads.len();
    let mut out = Writer::new();
    let outcome = target.poll(1_000, &mut out).await;
    let mut read = values(&out);
    assert_eq!(read.remove("modbus.up"), Some(1.0));
    assert_eq!(read.remove("modbus.exceptions_total"), Some(1.0));
    assert!(read.remove("modbus.poll_duration_ms").unwrap() >= 0.0);
    assert_eq!(read, expected);
    assert_eq!(
        (outcome.points, outcome.exceptions),
        (def.points.len() - 1, 1)
    );
    // Again: the exceptions add up; still one connection.
    let mut out = Writer::new();
    target.poll(2_000, &mut out).await;
    assert_eq!(values(&out)["modbus.exceptions_total"], 2.0);
    let wire = wire.lock().unwrap();
    assert_eq!(wire.connections, 1);
    // Neighbouring points shared reads: 36 numeric points, the string, the level, the coils
    // and the input in a handful of requests, each poll.
    assert_eq!(wire.functions.len(), 2 * planned);
    assert!(planned <= 6, "{planned} reads");
    assert!(
        wire.functions.iter().all(|f| [1, 2, 3, 4].contains(f)),
        "only read functions: {:?}",
        wire.functions
    );
}

#[tokio::test]
async fn a_gateway_with_a_silent_unit_and_a_slow_one_costs_only_their_own_time() {
    let memory = |value: u16| Memory {
        holding: HashMap::from([(0, value)]),
        ..Memory::default()
    };
    let plant = Plant {
        units: HashMap::from([(1, memory(11)), (3, memory(33))]),
        silent: HashSet::from([2]),
        delay: Duration::from_millis(150),
    };
    let (addr, wire) = watched(serve(plant).await).await;
    let gateways = Gateways::default();
    let def = ModbusDef {
        timeout_ms: Some(400),
        retries: Some(1),
        points: vec![PointDef::new(
            "plc.counter",
            Function::Holding,
            0,
            DataType::U16,
        )],
        ..ModbusDef::default()
    };
    // Unit 9 is not on the line: the gateway answers for it with exception 0x0B.
    let mut missing = ModbusTarget::new(9, gateways.get(addr), def.clone(), Some(9));
    let (read, outcome) = poll(&mut missing).await;
    assert_eq!(
        (read["modbus.up"], read["modbus.exceptions_total"]),
        (0.0, 1.0)
    );
    assert!(
        outcome.error.unwrap().contains("unit 9: the gateway says"),
        "a gateway's exception says the device is down"
    );
    wire.lock().unwrap().functions.clear();
    let mut targets: Vec<ModbusTarget> = (1..=3)
        .map(|unit| ModbusTarget::new(unit.into(), gateways.get(addr), def.clone(), Some(unit)))
        .collect();
    // The three nodes poll at once; the gateway takes their requests one at a time.
    let started = std::time::Instant::now();
    let [one, two, three] = &mut targets[..] else {
        unreachable!()
    };
    let (a, b, c) = tokio::join!(poll(one), poll(two), poll(three));
    let results = [a, b, c];
    let elapsed = started.elapsed();
    assert_eq!(results[0].0["plc.counter"], 11.0);
    assert_eq!(results[2].0["plc.counter"], 33.0);
    assert_eq!(results[0].0["modbus.up"], 1.0);
    // Unit 2 stays silent: down, with why, after its two tries of 400 ms.
    assert_eq!(results[1].0["modbus.up"], 0.0);
    assert!(!results[1].0.contains_key("plc.counter"));
    let why = results[1].1.error.clone().unwrap();
    assert!(why.contains("unit 2: no answer within 400ms"), "{why}");
    // Two answers of 150 ms and two silent tries of 400 ms, one after another.
    assert!(
        elapsed >= Duration::from_millis(1_000) && elapsed < Duration::from_millis(2_500),
        "{elapsed:?}"
    );
    // The silent unit's timeouts reopened the connection; requests never overlapped.
    let wire = wire.lock().unwrap();
    assert!(wire.connections <= 3, "{wire:?}");
    assert_eq!(wire.functions, [3, 3, 3, 3]);
}

#[tokio::test]
async fn a_dead_gateway_is_down_at_once_and_comes_back() {
    // A port nothing listens on: refused, so down without waiting.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let gateways = Gateways::default();
    let def = ModbusDef {
        points: vec![PointDef::new(
            "plc.counter",
            Function::Holding,
            0,
            DataType::U16,
        )],
        ..ModbusDef::default()
    };
    let mut target = ModbusTarget::new(9, gateways.get(addr), def, None);
    let mut out = Writer::new();
    let outcome = target.poll(1_000, &mut out).await;
    assert_eq!(values(&out)["modbus.up"], 0.0);
    assert!(outcome.error.unwrap().contains("cannot connect"));
    // The device comes up on that port: the next poll reads it.
    let listener = TcpListener::bind(addr).await.unwrap();
    let plant = Arc::new(Plant {
        units: HashMap::from([(
            1,
            Memory {
                holding: HashMap::from([(0, 7)]),
                ..Memory::default()
            },
        )]),
        ..Plant::default()
    });
    tokio::spawn(serve_on(listener, plant));
    let mut out = Writer::new();
    target.poll(2_000, &mut out).await;
    let read = values(&out);
    assert_eq!((read["modbus.up"], read["plc.counter"]), (1.0, 7.0));
}

/// One poll of `target`: what it wrote, and how it went.
async fn poll(target: &mut ModbusTarget) -> (BTreeMap<String, f64>, super::Outcome) {
    let mut out = Writer::new();
    let outcome = target.poll(1_000, &mut out).await;
    (values(&out), outcome)
}

#[tokio::test]
async fn pymodbus_lays_out_every_type_and_order_as_the_reader_reads_them() {
    // pymodbus (another implementation, its own converter) writes each value in each order;
    // the reader must read back exactly what was written.
    let types = [
        ("UINT16", DataType::U16, 42.0),
        ("INT16", DataType::I16, -2.0),
        ("UINT32", DataType::U32, 4e9),
        ("INT32", DataType::I32, -123_456.0),
        ("UINT64", DataType::U64, 9e12),
        ("INT64", DataType::I64, -1_234_567_890_123.0),
        ("FLOAT32", DataType::F32, 0.15625),
        ("FLOAT64", DataType::F64, -0.000_125),
    ];
    let mut json = Vec::new();
    let mut def = ModbusDef::default();
    let mut expected = BTreeMap::new();
    let mut address = 0;
    for order in ByteOrder::ALL {
        for (py_type, data_type, value) in types {
            let mut p = PointDef::new(
                &format!("py.{data_type}_{}", order.as_str().to_lowercase()),
                Function::Holding,
                address,
                data_type,
            );
            p.order = *order;
            json.push(serde_json::json!({
                "address": address, "type": py_type, "order": order.as_str(), "value": value,
            }));
            expected.insert(format!("py.{}", p.metric().1), value);
            address += p.width();
            def.points.push(p);
        }
    }
    let device = tokio::task::spawn_blocking(move || {
        plantwatch_testkit::modbus::pymodbus(&serde_json::Value::Array(json))
    })
    .await
    .unwrap();
    let gateways = Gateways::default();
    let mut target = ModbusTarget::new(1, gateways.get(device.addr), def, Some(1));
    let (mut read, outcome) = poll(&mut target).await;
    assert_eq!(outcome.error, None);
    assert_eq!(read.remove("modbus.up"), Some(1.0));
    read.retain(|name, _| name.starts_with("py."));
    assert_eq!(read, expected);
}
