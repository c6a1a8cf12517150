//! Modbus profiles: the `[modbus]` part of a template — the points a collector reads from a
//! device (coils, discrete inputs, holding and input registers), how each is decoded (type,
//! word and byte order, scale, offset), and how neighbouring points are read in one request.
//! Everything here is pure: the collector sends, the tests check exact values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::named_enum;

/// The Modbus TCP port when a node's address names none.
pub const MODBUS_PORT: u16 = 502;
/// Most registers one read may ask for (the protocol's limit for functions 3 and 4).
pub const MAX_REGISTERS_PER_READ: u16 = 125;
/// Most coils or discrete inputs one read may ask for.
pub const MAX_BITS_PER_READ: u16 = 2_000;
/// Most points a profile may have.
pub const MAX_POINTS: usize = 2_000;
/// Longest string point, in registers.
pub const MAX_STRING_REGISTERS: u16 = 64;

named_enum! {
    /// What a point reads: the four read functions, and nothing that writes.
    pub enum Function ("Modbus function") {
        Coil = "coil",
        DiscreteInput = "discrete_input",
        Holding = "holding",
        Input = "input",
    }
}

impl Function {
    /// The function code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Function::Coil => 1,
            Function::DiscreteInput => 2,
            Function::Holding => 3,
            Function::Input => 4,
        }
    }

    /// Reads bits (coils, discrete inputs) rather than registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Function::Coil | Function::DiscreteInput)
    }

    /// Most items one read of this function may ask for.
    pub fn max_per_read(self) -> u16 {
        if self.is_bits() {
            MAX_BITS_PER_READ
        } else {
            MAX_REGISTERS_PER_READ
        }
    }
}

named_enum! {
    /// How a point's registers are read as a value.
    #[derive(Default)]
    pub enum DataType ("Modbus data type") {
        Bool = "bool",
        #[default]
        U16 = "u16",
        I16 = "i16",
        U32 = "u32",
        I32 = "i32",
        U64 = "u64",
        I64 = "i64",
        F32 = "f32",
        F64 = "f64",
        String = "string",
    }
}

named_enum! {
    /// Where the value's bytes (A most significant) sit in the registers: `ABCD` big-endian
    /// as the protocol sends words; `CDAB` words swapped; `BADC` bytes swapped in each word;
    /// `DCBA` little-endian. For 64-bit values the same two swaps apply to four words.
    #[derive(Default)]
    pub enum ByteOrder ("byte order") {
        #[default]
        Abcd = "ABCD",
        Cdab = "CDAB",
        Badc = "BADC",
        Dcba = "DCBA",
    }
}

impl ByteOrder {
    fn swaps_words(self) -> bool {
        matches!(self, ByteOrder::Cdab | ByteOrder::Dcba)
    }

    fn swaps_bytes(self) -> bool {
        matches!(self, ByteOrder::Badc | ByteOrder::Dcba)
    }
}

fn one() -> f64 {
    1.0
}

fn is_one(value: &f64) -> bool {
    *value == 1.0
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// A template's `[modbus]` table: the device's points and how to ask for them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusDef {
    /// The unit id of points that name none, when the node names none either (default 1;
    /// 255 or 0 for a device that ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<u8>,
    /// Wait for one answer, in milliseconds (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    /// Further tries after a timeout (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Unused addresses a read may span to join two points (default 0: only adjacent points
    /// share a read; some devices answer an unmapped address with an exception).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_gap: Option<u16>,
    #[serde(default, rename = "points")]
    pub points: Vec<PointDef>,
}

/// One value read from a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointDef {
    /// `measurement.field`, as any metric (`tank.level_pct`).
    pub name: String,
    pub function: Function,
    /// The protocol address (0-based; register 40001 is holding address 0).
    pub address: u16,
    #[serde(default, rename = "type")]
    pub data_type: DataType,
    #[serde(default)]
    pub order: ByteOrder,
    /// A bool from one bit (0–15) of a 16-bit register, as status words pack them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit: Option<u8>,
    /// A string's length in registers (two characters each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u16>,
    /// This point's unit id, over the node's and the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<u8>,
    /// value × scale + offset.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub scale: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: f64,
    /// The unit it is in (`%`, `V`, `kWh`), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl PointDef {
    /// A point read as `data_type` in the protocol's own order, unscaled, untagged.
    pub fn new(name: &str, function: Function, address: u16, data_type: DataType) -> PointDef {
        PointDef {
            name: name.into(),
            function,
            address,
            data_type,
            order: ByteOrder::Abcd,
            bit: None,
            length: None,
            unit_id: None,
            scale: 1.0,
            offset: 0.0,
            unit: None,
            tags: BTreeMap::new(),
        }
    }

    /// Registers (or bits) it occupies.
    pub fn width(&self) -> u16 {
        if self.function.is_bits() {
            return 1;
        }
        match self.data_type {
            DataType::Bool | DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
            DataType::String => self.length.unwrap_or(1),
        }
    }

    /// The measurement and field its name stands for.
    pub fn metric(&self) -> (&str, &str) {
        self.name.split_once('.').unwrap_or((&self.name, "value"))
    }
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    Number(f64),
    Text(String),
}

/// The registers a device holds for a value whose bytes are `bytes` (A first) in `order`:
/// what [`decode`] reads back. For test devices and documentation.
pub fn registers_of(bytes: &[u8], order: ByteOrder) -> Vec<u16> {
    let mut words: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
        .collect();
    if order.swaps_words() {
        words.reverse();
    }
    if order.swaps_bytes() {
        words = words.into_iter().map(u16::swap_bytes).collect();
    }
    words
}

/// Decodes a point's registers (exactly [`PointDef::width`] of them) as it says (its type,
/// order and bit), before scale and offset. `None` when the count is wrong.
pub fn decode_point(words: &[u16], point: &PointDef) -> Option<PointValue> {
    match (point.bit, words) {
        (Some(bit), [word]) => Some(PointValue::Number(f64::from((word >> (bit & 15)) & 1))),
        (Some(_), _) => None,
        (None, _) => decode(words, point.data_type, point.order),
    }
}

/// Decodes registers as a `data_type` laid out in `order`. `None` when the count is wrong.
pub fn decode(words: &[u16], data_type: DataType, order: ByteOrder) -> Option<PointValue> {
    let mut words = words.to_vec();
    if order.swaps_bytes() {
        for word in &mut words {
            *word = word.swap_bytes();
        }
    }
    if data_type == DataType::String {
        // Characters stay in reading order; only the byte swap applies.
        let text: String = words
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .take_while(|b| *b != 0)
            .map(char::from)
            .collect();
        return Some(PointValue::Text(text.trim_end().to_owned()));
    }
    let expected = match data_type {
        DataType::Bool | DataType::U16 | DataType::I16 => 1,
        DataType::U32 | DataType::I32 | DataType::F32 => 2,
        _ => 4,
    };
    if words.len() != expected {
        return None;
    }
    if order.swaps_words() {
        words.reverse();
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let value = match data_type {
        DataType::Bool => f64::from(u8::from(words[0] != 0)),
        DataType::U16 => f64::from(u16::from_be_bytes([bytes[0], bytes[1]])),
        DataType::I16 => f64::from(i16::from_be_bytes([bytes[0], bytes[1]])),
        DataType::U32 => f64::from(u32::from_be_bytes(bytes[..4].try_into().ok()?)),
        DataType::I32 => f64::from(i32::from_be_bytes(bytes[..4].try_into().ok()?)),
        DataType::F32 => f64::from(f32::from_be_bytes(bytes[..4].try_into().ok()?)),
        DataType::U64 => u64::from_be_bytes(bytes[..8].try_into().ok()?) as f64,
        DataType::I64 => i64::from_be_bytes(bytes[..8].try_into().ok()?) as f64,
        DataType::F64 => f64::from_be_bytes(bytes[..8].try_into().ok()?),
        DataType::String => unreachable!("strings return above"),
    };
    Some(PointValue::Number(value))
}

/// One read: `count` items of `function` from `address` on unit `unit`, and the points it
/// answers (indexes into the profile's points).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub unit: u8,
    pub function: Function,
    pub address: u16,
    pub count: u16,
    pub points: Vec<usize>,
}

/// The reads that fetch every point of `def` for a node whose unit id is `node_unit`:
/// points of one unit and function, sorted by address, joined while they stay within one
/// read's limit and at most `merge_gap` unused addresses apart.
pub fn plan(def: &ModbusDef, node_unit: Option<u8>) -> Vec<Read> {
    let default_unit = node_unit.or(def.unit_id).unwrap_or(1);
    let gap = u32::from(def.merge_gap.unwrap_or(0));
    let mut order: Vec<usize> = (0..def.points.len()).collect();
    let unit_of = |p: &PointDef| p.unit_id.unwrap_or(default_unit);
    order.sort_by_key(|&i| {
        let p = &def.points[i];
        (unit_of(p), p.function.code(), p.address)
    });
    let mut reads: Vec<Read> = Vec::new();
    for i in order {
        let point = &def.points[i];
        let (unit, start, end) = (
            unit_of(point),
            u32::from(point.address),
            u32::from(point.address) + u32::from(point.width()),
        );
        if let Some(read) = reads.last_mut()
            && read.unit == unit
            && read.function == point.function
        {
            let read_end = u32::from(read.address) + u32::from(read.count);
            let joined_end = read_end.max(end);
            if start <= read_end + gap
                && joined_end - u32::from(read.address) <= u32::from(point.function.max_per_read())
            {
                read.count = (joined_end - u32::from(read.address)) as u16;
                read.points.push(i);
                continue;
            }
        }
        reads.push(Read {
            unit,
            function: point.function,
            address: point.address,
            count: point.width(),
            points: vec![i],
        });
    }
    reads
}

/// What is wrong with a profile, if anything: names, widths, addresses, duplicates.
pub fn problem(def: &ModbusDef) -> Option<String> {
    if def.points.is_empty() {
        return Some("a [modbus] profile needs at least one [[modbus.points]]".into());
    }
    if def.points.len() > MAX_POINTS {
        return Some(format!("more than {MAX_POINTS} points"));
    }
    if def.timeout_ms.is_some_and(|t| !(50..=60_000).contains(&t)) {
        return Some("timeout_ms must be 50 to 60000".into());
    }
    if def.retries.is_some_and(|r| r > 5) {
        return Some("retries must be at most 5".into());
    }
    let mut names = std::collections::HashSet::new();
    for point in &def.points {
        let name = &point.name;
        let (measurement, field) = point.metric();
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !name.contains('.') || !valid(measurement) || !valid(field) {
            return Some(format!(
                "point {name:?}: name it measurement.field (letters, digits, _ and -)"
            ));
        }
        if !names.insert((name.clone(), point.tags.clone())) {
            return Some(format!("point {name:?} is named twice with the same tags"));
        }
        if point.function.is_bits() && point.data_type != DataType::Bool {
            return Some(format!(
                "point {name:?}: a {} is a bool (type = \"bool\")",
                point.function
            ));
        }
        match (point.data_type, point.length) {
            (DataType::String, None) => {
                return Some(format!(
                    "point {name:?}: a string needs its length in registers"
                ));
            }
            (DataType::String, Some(n)) if n == 0 || n > MAX_STRING_REGISTERS => {
                return Some(format!(
                    "point {name:?}: length must be 1 to {MAX_STRING_REGISTERS} registers"
                ));
            }
            (DataType::String, Some(_)) => {}
            (_, Some(_)) => {
                return Some(format!("point {name:?}: only a string has a length"));
            }
            (_, None) => {}
        }
        if u32::from(point.address) + u32::from(point.width()) > 65_536 {
            return Some(format!("point {name:?} runs past address 65535"));
        }
        if !point.scale.is_finite() || point.scale == 0.0 || !point.offset.is_finite() {
            return Some(format!(
                "point {name:?}: scale must be a non-zero number, offset a number"
            ));
        }
        if let Some(bit) = point.bit
            && (bit > 15 || point.function.is_bits() || point.data_type != DataType::Bool)
        {
            return Some(format!(
                "point {name:?}: bit {bit} needs a bool read from a register, bit 0 to 15"
            ));
        }
        if let Some(bad) = point.tags.keys().find(|k| k.is_empty() || *k == "node_id") {
            return Some(format!("point {name:?}: tag {bad:?} is not allowed"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(words: &[u16], data_type: DataType, order: ByteOrder) -> f64 {
        match decode(words, data_type, order) {
            Some(PointValue::Number(v)) => v,
            other => panic!("{words:04x?} as {data_type} {order}: {other:?}"),
        }
    }

    #[test]
    fn every_type_in_every_order_decodes_exactly() {
        // The textbook layouts of 0x12345678 (a u32): ABCD 1234 5678, CDAB 5678 1234,
        // BADC 3412 7856, DCBA 7856 3412.
        let cases = [
            (ByteOrder::Abcd, [0x1234, 0x5678]),
            (ByteOrder::Cdab, [0x5678, 0x1234]),
            (ByteOrder::Badc, [0x3412, 0x7856]),
            (ByteOrder::Dcba, [0x7856, 0x3412]),
        ];
        for (order, words) in cases {
            assert_eq!(registers_of(&[0x12, 0x34, 0x56, 0x78], order), words);
            assert_eq!(
                number(&words, DataType::U32, order),
                305_419_896.0,
                "{order}"
            );
        }
        for order in ByteOrder::ALL {
            let at = |bytes: &[u8], t| number(&registers_of(bytes, *order), t, *order);
            assert_eq!(at(&[0x00, 0x2a], DataType::U16), 42.0);
            assert_eq!(at(&[0xff, 0xfe], DataType::I16), -2.0);
            assert_eq!(at(&[0x00, 0x01], DataType::Bool), 1.0);
            assert_eq!(at(&(-123_456_i32).to_be_bytes(), DataType::I32), -123_456.0);
            assert_eq!(at(&4_000_000_000_u32.to_be_bytes(), DataType::U32), 4e9);
            assert_eq!(
                at(&123.456_f32.to_be_bytes(), DataType::F32),
                f64::from(123.456_f32)
            );
            assert_eq!(
                at(&9_007_199_254_740_993_u64.to_be_bytes(), DataType::U64),
                9_007_199_254_740_992.0
            );
            assert_eq!(
                at(&(-1_234_567_890_123_i64).to_be_bytes(), DataType::I64),
                -1_234_567_890_123.0
            );
            assert_eq!(
                at(&(-0.000_125_f64).to_be_bytes(), DataType::F64),
                -0.000_125
            );
        }
        // A string: two characters a register, NULs and trailing blanks dropped; BADC swaps
        // each pair (as many meters store them).
        let text = |words: &[u16], order| decode(words, DataType::String, order);
        assert_eq!(
            text(&[0x504d, 0x3535, 0x3630, 0x0000], ByteOrder::Abcd),
            Some(PointValue::Text("PM5560".into()))
        );
        assert_eq!(
            text(&[0x4d50, 0x3535, 0x3036, 0x2020], ByteOrder::Badc),
            Some(PointValue::Text("PM5560".into()))
        );
        assert_eq!(decode(&[1], DataType::F32, ByteOrder::Abcd), None);
        // A status word's bits: 0x0089 has bits 0, 3 and 7 set.
        let mut tripped = PointDef::new("drive.tripped", Function::Holding, 3, DataType::Bool);
        let bit = |p: &PointDef| decode_point(&[0x0089], p);
        tripped.bit = Some(3);
        assert_eq!(bit(&tripped), Some(PointValue::Number(1.0)));
        tripped.bit = Some(2);
        assert_eq!(bit(&tripped), Some(PointValue::Number(0.0)));
        tripped.bit = Some(16);
        let def = ModbusDef {
            points: vec![tripped],
            ..ModbusDef::default()
        };
        assert!(problem(&def).unwrap().contains("bit 16"));
    }

    #[test]
    fn neighbouring_points_share_a_read_within_the_limits() {
        let mut def = ModbusDef {
            points: vec![
                PointDef::new("meter.v1", Function::Holding, 3027, DataType::F32),
                PointDef::new("meter.v2", Function::Holding, 3029, DataType::F32),
                PointDef::new("meter.energy", Function::Holding, 3203, DataType::I64),
                PointDef::new("meter.alarm", Function::Coil, 10, DataType::Bool),
                PointDef::new("meter.trip", Function::Coil, 11, DataType::Bool),
                PointDef::new("meter.temp", Function::Input, 0, DataType::I16),
                PointDef::new("meter.far", Function::Holding, 3031 + 125, DataType::U16),
            ],
            ..ModbusDef::default()
        };
        def.points[5].unit_id = Some(7);
        let reads: Vec<_> = plan(&def, Some(3))
            .into_iter()
            .map(|r| (r.unit, r.function.code(), r.address, r.count, r.points))
            .collect();
        assert_eq!(
            reads,
            [
                (3, 1, 10, 2, vec![3, 4]),
                (3, 3, 3027, 4, vec![0, 1]),
                (3, 3, 3156, 1, vec![6]),
                (3, 3, 3203, 4, vec![2]),
                (7, 4, 0, 1, vec![5]),
            ]
        );
        // With a gap allowed: 3027..3031 and 3156 would need 130 registers, more than one
        // read; 3156 and the energy counter at 3203..3207 fit in 51.
        def.merge_gap = Some(200);
        let reads = plan(&def, None);
        let holding: Vec<_> = reads
            .iter()
            .filter(|r| r.function == Function::Holding)
            .map(|r| (r.address, r.count))
            .collect();
        assert_eq!(holding, [(3027, 4), (3156, 51)]);
        assert!(reads.iter().all(|r| r.unit == 1 || r.unit == 7));
    }

    #[test]
    fn a_profile_with_a_mistake_says_which_point() {
        let mut def = ModbusDef {
            points: vec![PointDef::new("level", Function::Holding, 0, DataType::U16)],
            ..ModbusDef::default()
        };
        assert!(problem(&def).unwrap().contains("measurement.field"));
        def.points[0].name = "tank.level".into();
        assert_eq!(problem(&def), None);
        def.points[0].function = Function::Coil;
        assert!(problem(&def).unwrap().contains("a coil is a bool"));
        def.points[0].function = Function::Holding;
        def.points[0].data_type = DataType::String;
        assert!(problem(&def).unwrap().contains("length"));
        def.points[0].length = Some(4);
        def.points[0].address = 65_534;
        assert!(problem(&def).unwrap().contains("past address 65535"));
    }
}
