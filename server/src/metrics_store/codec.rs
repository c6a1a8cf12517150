//! Chunk encoding: the compact form of a series' samples (and of its rollup points) stored as
//! one blob per chunk.
//!
//! Timestamps are delta-of-delta encoded as in the Gorilla paper; each value column chooses, per
//! chunk, whichever of two encodings is smaller for it:
//! - **XOR** of consecutive IEEE 754 values (Gorilla, as in the Prometheus TSDB), for noisy
//!   floats;
//! - **integer**: when every value is an integer after scaling by 10^d (d = 0…4, checked to
//!   round-trip bit for bit), its first or second differences. SNMP hands out integers (octet
//!   counters, temperatures, percentages), so most series take this path.
//!
//! Integer residuals are written in a width chosen per chunk from their bit lengths (`w` bits
//! each, a regular series needing 0), with an escape (`w` ones, a 6-bit length and the bits) for
//! the few that do not fit. Decoding checks every length and never reads past the blob.

use std::fmt;

/// Format version written first in every blob.
const RAW: u8 = 1;
const ROLLUP: u8 = 2;
/// More points than a chunk ever holds (an hour at 1 ms): a larger count is damage.
const MAX_POINTS: u64 = 3_600_000;

/// A blob that cannot be decoded (damaged file, or written by a newer version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub &'static str);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undecodable chunk: {}", self.0)
    }
}

impl std::error::Error for CodecError {}

type Result<T> = std::result::Result<T, CodecError>;

/// Aggregates of the points in one rollup bucket (values for a gauge, per-second rates for a
/// counter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollup {
    /// Start of the bucket, UNIX milliseconds.
    pub ts: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u32,
    /// The bucket's latest point.
    pub last: f64,
}

/// Encodes points sorted by time, without repeated timestamps.
pub fn encode_raw(points: &[(i64, f64)]) -> Vec<u8> {
    let mut out = BitWriter::with_header(RAW, points.len());
    let ts: Vec<i64> = points.iter().map(|p| p.0).collect();
    write_ints(&mut out, &ts, 2);
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    write_floats(&mut out, &values);
    out.finish()
}

/// Decodes what [`encode_raw`] wrote.
pub fn decode_raw(blob: &[u8]) -> Result<Vec<(i64, f64)>> {
    let (n, at) = header(blob, RAW)?;
    let mut reader = BitReader::new(&blob[at..]);
    let ts = read_ints(&mut reader, n, 2)?;
    let values = read_floats(&mut reader, n)?;
    Ok(ts.into_iter().zip(values).collect())
}

/// Columns of a rollup chunk a reader may skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    pub min: bool,
    pub max: bool,
    pub sum: bool,
    pub last: bool,
}

impl Columns {
    pub const ALL: Columns = Columns {
        min: true,
        max: true,
        sum: true,
        last: true,
    };
}

/// Encodes rollup points sorted by bucket. Each column is written on its own, after a header
/// of their byte lengths, so a reader decodes only the ones it needs.
pub fn encode_rollups(points: &[Rollup]) -> Vec<u8> {
    let mut columns: Vec<Vec<u8>> = Vec::with_capacity(6);
    let mut column = BitWriter::plain();
    write_ints(
        &mut column,
        &points.iter().map(|p| p.ts).collect::<Vec<_>>(),
        2,
    );
    columns.push(column.finish());
    let mut column = BitWriter::plain();
    let counts: Vec<i64> = points.iter().map(|p| i64::from(p.count)).collect();
    write_ints(&mut column, &counts, 1);
    columns.push(column.finish());
    for field in [
        |p: &Rollup| p.min,
        |p: &Rollup| p.max,
        |p: &Rollup| p.sum,
        |p: &Rollup| p.last,
    ] {
        let mut column = BitWriter::plain();
        write_floats(&mut column, &points.iter().map(field).collect::<Vec<_>>());
        columns.push(column.finish());
    }
    let mut out = BitWriter::with_header(ROLLUP, points.len()).finish();
    for column in &columns {
        push_varint(&mut out, column.len() as u64);
    }
    for column in columns {
        out.extend(column);
    }
    out
}

/// Decodes what [`encode_rollups`] wrote.
pub fn decode_rollups(blob: &[u8]) -> Result<Vec<Rollup>> {
    decode_rollup_columns(blob, Columns::ALL)
}

/// Decodes bucket starts, counts and the `wanted` columns; the others read 0.
pub fn decode_rollup_columns(blob: &[u8], wanted: Columns) -> Result<Vec<Rollup>> {
    Ok(RollupDecoder::default().decode(blob, wanted)?.to_vec())
}

/// Decodes rollup chunks one after the other into buffers it keeps (a long query decodes
/// thousands).
#[derive(Debug, Default)]
pub struct RollupDecoder {
    points: Vec<Rollup>,
    ints: Vec<i64>,
    floats: Vec<f64>,
}

impl RollupDecoder {
    /// Bucket starts, counts and the `wanted` columns of `blob`; the others read 0.
    pub fn decode(&mut self, blob: &[u8], wanted: Columns) -> Result<&[Rollup]> {
        let (n, mut at) = header(blob, ROLLUP)?;
        let mut lengths = [0usize; 6];
        for length in &mut lengths {
            let (value, next) = varint(blob, at)?;
            *length = usize::try_from(value).map_err(|_| CodecError("bad length"))?;
            at = next;
        }
        let mut columns: [&[u8]; 6] = [&[]; 6];
        for (column, length) in columns.iter_mut().zip(lengths) {
            let end = at.checked_add(length).ok_or(CodecError("bad length"))?;
            *column = blob.get(at..end).ok_or(CodecError("truncated"))?;
            at = end;
        }
        self.points.clear();
        read_ints_into(&mut BitReader::new(columns[0]), n, 2, &mut self.ints)?;
        self.points.extend(self.ints.iter().map(|&ts| Rollup {
            ts,
            min: 0.0,
            max: 0.0,
            sum: 0.0,
            count: 0,
            last: 0.0,
        }));
        read_ints_into(&mut BitReader::new(columns[1]), n, 1, &mut self.ints)?;
        for (point, &count) in self.points.iter_mut().zip(&self.ints) {
            point.count = u32::try_from(count).map_err(|_| CodecError("bad count"))?;
        }
        let fields: [(bool, SetField); 4] = [
            (wanted.min, |p, v| p.min = v),
            (wanted.max, |p, v| p.max = v),
            (wanted.sum, |p, v| p.sum = v),
            (wanted.last, |p, v| p.last = v),
        ];
        for ((want, set), column) in fields.into_iter().zip(&columns[2..]) {
            if want {
                read_floats_into(
                    &mut BitReader::new(column),
                    n,
                    &mut self.floats,
                    &mut self.ints,
                )?;
                for (point, &value) in self.points.iter_mut().zip(&self.floats) {
                    set(point, value);
                }
            }
        }
        Ok(&self.points)
    }
}

/// Version byte of a head log row.
const LOG_V1: u8 = 1;

/// A head log row: the count, then per sample the series id and the time as differences from
/// the sample before (zigzag varints: a poll round costs a byte or two each) and the value's
/// eight bytes. Written at ingest speed, read back only at start: simple beats small here.
pub fn encode_log(samples: &[(i64, i64, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + samples.len() * 12);
    out.push(LOG_V1);
    push_varint(&mut out, samples.len() as u64);
    let (mut series, mut ts) = (0i64, 0i64);
    for &(id, at, value) in samples {
        push_varint(&mut out, zigzag(id.wrapping_sub(series)));
        push_varint(&mut out, zigzag(at.wrapping_sub(ts)));
        out.extend_from_slice(&value.to_le_bytes());
        (series, ts) = (id, at);
    }
    out
}

/// Reads a head log row back.
pub fn decode_log(blob: &[u8]) -> Result<Vec<(i64, i64, f64)>> {
    if blob.first() != Some(&LOG_V1) {
        return Err(CodecError("unknown log format version"));
    }
    let (n, mut at) = varint(blob, 1)?;
    // Each sample takes at least ten bytes.
    if n > (blob.len() / 10) as u64 {
        return Err(CodecError("count beyond the row"));
    }
    let mut out = Vec::with_capacity(n as usize);
    let (mut series, mut ts) = (0i64, 0i64);
    for _ in 0..n {
        let (id, next) = varint(blob, at)?;
        let (delta, next) = varint(blob, next)?;
        let bytes = blob
            .get(next..next + 8)
            .ok_or(CodecError("truncated log row"))?;
        series = series.wrapping_add(unzigzag(id));
        ts = ts.wrapping_add(unzigzag(delta));
        let value = f64::from_le_bytes(bytes.try_into().map_err(|_| CodecError("truncated"))?);
        out.push((series, ts, value));
        at = next + 8;
    }
    if at != blob.len() {
        return Err(CodecError("trailing bytes in a log row"));
    }
    Ok(out)
}

/// Stores one decoded value into its field.
type SetField = fn(&mut Rollup, f64);

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A varint at `at`, and the position after it.
fn varint(blob: &[u8], mut at: usize) -> Result<(u64, usize)> {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let byte = *blob.get(at).ok_or(CodecError("truncated header"))?;
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value, at));
        }
        shift += 7;
        if shift > 56 {
            return Err(CodecError("bad varint"));
        }
    }
}

/// Checks the version byte and reads the point count; the position after them.
fn header(blob: &[u8], version: u8) -> Result<(usize, usize)> {
    match blob.first() {
        Some(v) if *v == version => {}
        Some(_) => return Err(CodecError("unknown format version")),
        None => return Err(CodecError("empty")),
    }
    let (n, at) = varint(blob, 1)?;
    if n > MAX_POINTS {
        return Err(CodecError("count beyond any chunk"));
    }
    Ok((n as usize, at))
}

// ---- value columns ----

const MODE_XOR: u64 = 0;
const MODE_INT: u64 = 1;
/// Decimal scales tried for the integer encoding.
const SCALES: [f64; 5] = [1.0, 10.0, 100.0, 1_000.0, 10_000.0];
/// Integers beyond this are not all exactly representable in an f64.
const EXACT: f64 = 9_007_199_254_740_992.0;

fn write_floats(out: &mut BitWriter, values: &[f64]) {
    let xor_bits = xor_cost(values);
    let mut best: Option<(u64, u64, Vec<i64>, u8)> = None; // (bits, scale, ints, order)
    if let Some((scale, ints)) = as_scaled_ints(values) {
        for order in [1u8, 2] {
            let bits = int_cost(&residuals(&ints, order)).1;
            if best.as_ref().is_none_or(|b| bits < b.0) {
                best = Some((bits, scale, ints.clone(), order));
            }
        }
    }
    match best {
        // The integer form also carries its first value (64 bits), mode, scale and order.
        Some((bits, scale, ints, order)) if bits + 69 < xor_bits => {
            out.write(MODE_INT, 1);
            out.write(scale, 3);
            write_ints(out, &ints, order);
        }
        _ => {
            out.write(MODE_XOR, 1);
            write_xor(out, values);
        }
    }
}

fn read_floats(reader: &mut BitReader<'_>, n: usize) -> Result<Vec<f64>> {
    let (mut out, mut ints) = (Vec::new(), Vec::new());
    read_floats_into(reader, n, &mut out, &mut ints)?;
    Ok(out)
}

/// Reads `n` values into `out`, with `ints` as scratch.
fn read_floats_into(
    reader: &mut BitReader<'_>,
    n: usize,
    out: &mut Vec<f64>,
    ints: &mut Vec<i64>,
) -> Result<()> {
    out.clear();
    if reader.read(1)? == MODE_XOR {
        return read_xor_into(reader, n, out);
    }
    let scale = *SCALES
        .get(reader.read(3)? as usize)
        .ok_or(CodecError("bad scale"))?;
    read_ints_into(reader, n, 0, ints)?;
    if scale == 1.0 {
        out.extend(ints.iter().map(|&x| x as f64));
    } else {
        out.extend(ints.iter().map(|&x| x as f64 / scale));
    }
    Ok(())
}

/// The smallest decimal scale at which every value is an integer that converts back to exactly
/// the same f64, with those integers.
fn as_scaled_ints(values: &[f64]) -> Option<(u64, Vec<i64>)> {
    'scale: for (index, scale) in SCALES.iter().enumerate() {
        let mut ints = Vec::with_capacity(values.len());
        for &value in values {
            let scaled = (value * scale).round();
            if !scaled.is_finite() || scaled.abs() > EXACT {
                continue 'scale;
            }
            let int = scaled as i64;
            if (int as f64 / scale).to_bits() != value.to_bits() {
                continue 'scale;
            }
            ints.push(int);
        }
        return Some((index as u64, ints));
    }
    None
}

fn xor_cost(values: &[f64]) -> u64 {
    let mut counter = BitWriter::counting();
    write_xor(&mut counter, values);
    counter.bits()
}

/// Gorilla's XOR encoding: `0` for a repeated value; `10` and the meaningful bits when they
/// fit the previous window; otherwise `11`, 6 bits of leading zeros, 6 bits of length - 1 and
/// the meaningful bits.
fn write_xor(out: &mut BitWriter, values: &[f64]) {
    let Some(first) = values.first() else {
        return;
    };
    out.write(first.to_bits(), 64);
    let mut previous = first.to_bits();
    let (mut leading, mut trailing) = (u32::MAX, 0u32);
    for value in &values[1..] {
        let bits = value.to_bits();
        let xor = bits ^ previous;
        previous = bits;
        if xor == 0 {
            out.write(0, 1);
            continue;
        }
        let (lz, tz) = (xor.leading_zeros(), xor.trailing_zeros());
        if leading != u32::MAX && lz >= leading && tz >= trailing {
            out.write(0b10, 2);
            out.write(xor >> trailing, 64 - leading - trailing);
        } else {
            leading = lz;
            trailing = tz;
            let length = 64 - lz - tz;
            out.write(0b11, 2);
            out.write(u64::from(lz), 6);
            out.write(u64::from(length - 1), 6);
            out.write(xor >> tz, length);
        }
    }
}

fn read_xor_into(reader: &mut BitReader<'_>, n: usize, out: &mut Vec<f64>) -> Result<()> {
    out.reserve(n.min(4_096));
    if n == 0 {
        return Ok(());
    }
    let mut previous = reader.read(64)?;
    out.push(f64::from_bits(previous));
    let (mut leading, mut trailing) = (u32::MAX, 0u32);
    for _ in 1..n {
        if reader.read_short(1)? == 1 {
            if reader.read_short(1)? == 1 {
                leading = reader.read_short(6)? as u32;
                let length = reader.read_short(6)? as u32 + 1;
                if leading + length > 64 {
                    return Err(CodecError("bad XOR window"));
                }
                trailing = 64 - leading - length;
            } else if leading == u32::MAX {
                return Err(CodecError("XOR window before any"));
            }
            let meaningful = reader.read(64 - leading - trailing)?;
            previous ^= meaningful << trailing;
        }
        out.push(f64::from_bits(previous));
    }
    Ok(())
}

// ---- integer columns ----

/// First (`order` 1) or second (`order` 2) differences; order 2 starts after the first
/// difference, which is written on its own.
fn residuals(ints: &[i64], order: u8) -> Vec<u64> {
    let mut out = Vec::with_capacity(ints.len().saturating_sub(1));
    let mut previous_delta = None;
    for pair in ints.windows(2) {
        let delta = pair[1].wrapping_sub(pair[0]);
        match (order, previous_delta) {
            (2, None) => {}
            (2, Some(previous)) => out.push(zigzag(delta.wrapping_sub(previous))),
            _ => out.push(zigzag(delta)),
        }
        previous_delta = Some(delta);
    }
    out
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn bit_length(value: u64) -> u32 {
    64 - value.leading_zeros()
}

/// The width that makes the residuals smallest, and their size in bits at that width.
fn int_cost(residuals: &[u64]) -> (u32, u64) {
    let mut lengths = [0u64; 65];
    for &r in residuals {
        lengths[bit_length(r) as usize] += 1;
    }
    if residuals.iter().all(|&r| r == 0) {
        return (0, 7);
    }
    let mut best = (64, u64::MAX);
    for width in 1..=64u32 {
        let mut bits = 7u64;
        for (length, &count) in lengths.iter().enumerate() {
            if count == 0 {
                continue;
            }
            // Values of `width` bits fit unless they are all ones (rare; the estimate ignores it).
            let each = if length as u32 <= width {
                u64::from(width)
            } else {
                u64::from(width) + 6 + length as u64
            };
            bits += each * count;
        }
        if bits < best.1 {
            best = (width, bits);
        }
    }
    best
}

fn write_ints(out: &mut BitWriter, ints: &[i64], order: u8) {
    let Some(first) = ints.first() else {
        return;
    };
    out.write(*first as u64, 64);
    if ints.len() == 1 {
        return;
    }
    out.write(u64::from(order - 1), 1);
    if order == 2 {
        let first_delta = zigzag(ints[1].wrapping_sub(ints[0]));
        let length = bit_length(first_delta);
        out.write(u64::from(length), 7);
        out.write(first_delta, length);
    }
    let residuals = residuals(ints, order);
    let (width, _) = int_cost(&residuals);
    out.write(u64::from(width), 7);
    if width == 0 {
        return;
    }
    let escape = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    for r in residuals {
        if r < escape {
            out.write(r, width);
        } else {
            out.write(escape, width);
            let length = bit_length(r);
            out.write(u64::from(length - 1), 6);
            out.write(r, length);
        }
    }
}

/// Reads `n` integers; `order` 0 means the order is in the stream (value columns).
fn read_ints(reader: &mut BitReader<'_>, n: usize, order: u8) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    read_ints_into(reader, n, order, &mut out)?;
    Ok(out)
}

/// [`read_ints`] into `out`.
fn read_ints_into(
    reader: &mut BitReader<'_>,
    n: usize,
    order: u8,
    out: &mut Vec<i64>,
) -> Result<()> {
    out.clear();
    out.reserve(n.min(4_096));
    if n == 0 {
        return Ok(());
    }
    let first = reader.read(64)? as i64;
    out.push(first);
    if n == 1 {
        return Ok(());
    }
    let stored_order = reader.read(1)? as u8 + 1;
    if order != 0 && stored_order != order {
        return Err(CodecError("unexpected difference order"));
    }
    let mut delta = 0i64;
    if stored_order == 2 {
        let length = reader.read(7)? as u32;
        if length > 64 {
            return Err(CodecError("bad length"));
        }
        delta = unzigzag(reader.read(length)?);
        out.push(first.wrapping_add(delta));
    }
    let width = reader.read(7)? as u32;
    if width > 64 {
        return Err(CodecError("bad width"));
    }
    let escape = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let mut value = *out.last().unwrap_or(&first);
    for _ in out.len()..n {
        let residual = if width == 0 {
            0
        } else {
            let r = if width <= 56 {
                reader.read_short(width)?
            } else {
                reader.read(width)?
            };
            if r == escape {
                let length = reader.read(6)? as u32 + 1;
                reader.read(length)?
            } else {
                r
            }
        };
        let residual = unzigzag(residual);
        delta = if stored_order == 2 {
            delta.wrapping_add(residual)
        } else {
            residual
        };
        value = value.wrapping_add(delta);
        out.push(value);
    }
    Ok(())
}

// ---- bits ----

struct BitWriter {
    buf: Vec<u8>,
    acc: u128,
    pending: u32,
    /// Bits written, for cost estimates that keep no output.
    total: u64,
    counting: bool,
}

impl BitWriter {
    fn with_header(version: u8, n: usize) -> BitWriter {
        let mut buf = Vec::with_capacity(16 + n * 2);
        buf.push(version);
        let mut n = n as u64;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                buf.push(byte);
                break;
            }
            buf.push(byte | 0x80);
        }
        BitWriter {
            buf,
            acc: 0,
            pending: 0,
            total: 0,
            counting: false,
        }
    }

    fn plain() -> BitWriter {
        BitWriter {
            buf: Vec::new(),
            acc: 0,
            pending: 0,
            total: 0,
            counting: false,
        }
    }

    fn counting() -> BitWriter {
        BitWriter {
            buf: Vec::new(),
            acc: 0,
            pending: 0,
            total: 0,
            counting: true,
        }
    }

    fn bits(&self) -> u64 {
        self.total
    }

    /// Appends the low `n` bits of `value` (n ≤ 64), most significant first.
    fn write(&mut self, value: u64, n: u32) {
        if n == 0 {
            return;
        }
        self.total += u64::from(n);
        if self.counting {
            return;
        }
        let value = if n == 64 {
            value
        } else {
            value & ((1u64 << n) - 1)
        };
        self.acc = (self.acc << n) | u128::from(value);
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.buf.push((self.acc >> self.pending) as u8);
        }
        self.acc &= (1u128 << self.pending) - 1;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.pending > 0 {
            self.buf.push((self.acc << (8 - self.pending)) as u8);
        }
        self.buf
    }
}

/// Reads bits most significant first through a 64-bit buffer.
struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load.
    next: usize,
    /// Loaded bits, left-aligned.
    buffer: u64,
    loaded: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader {
            data,
            next: 0,
            buffer: 0,
            loaded: 0,
        }
    }

    fn refill(&mut self) {
        if self.loaded <= 56
            && let Some(bytes) = self.data.get(self.next..self.next + 8)
        {
            let word = u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8]));
            let take = (64 - self.loaded) / 8;
            // The top `take` bytes of the word, below what is loaded.
            self.buffer |= (word >> (64 - take * 8)) << (64 - self.loaded - take * 8);
            self.loaded += take * 8;
            self.next += take as usize;
            return;
        }
        while self.loaded <= 56 {
            let Some(&byte) = self.data.get(self.next) else {
                return;
            };
            self.buffer |= u64::from(byte) << (56 - self.loaded);
            self.loaded += 8;
            self.next += 1;
        }
    }

    /// The next `n` bits, 1 ≤ n ≤ 56 (the hot path of every column).
    #[inline(always)]
    fn read_short(&mut self, n: u32) -> Result<u64> {
        if self.loaded < n {
            self.refill();
            if self.loaded < n {
                return Err(CodecError("truncated"));
            }
        }
        let value = self.buffer >> (64 - n);
        self.buffer <<= n;
        self.loaded -= n;
        Ok(value)
    }

    /// The next `n` bits (n ≤ 64).
    #[inline]
    fn read(&mut self, n: u32) -> Result<u64> {
        if n == 0 {
            return Ok(0);
        }
        if n > 56 {
            let high = self.read_short(n - 32)?;
            return Ok((high << 32) | self.read_short(32)?);
        }
        self.read_short(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(points: &[(i64, f64)]) {
        let blob = encode_raw(points);
        let back = decode_raw(&blob).unwrap();
        assert_eq!(back.len(), points.len());
        for (a, b) in points.iter().zip(&back) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "{} vs {}", a.1, b.1);
        }
    }

    #[test]
    fn log_rows_read_back_bit_for_bit_and_damage_is_an_error() {
        let samples = [
            (7, 1_764_000_000_000, 1.5),
            (3, 1_764_000_000_000, f64::NAN),
            (33_600, 1_763_999_999_990, -0.0),
            (7, 1_764_000_010_003, 1e300),
        ];
        let blob = encode_log(&samples);
        let back = decode_log(&blob).unwrap();
        assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!((a.0, a.1, a.2.to_bits()), (b.0, b.1, b.2.to_bits()));
        }
        for cut in 0..blob.len() {
            assert!(decode_log(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(decode_log(&longer).is_err());
    }

    #[test]
    fn a_regular_integer_series_takes_a_few_bits_a_sample() {
        // An octet counter polled every 10 s with a few ms of jitter.
        let mut counter = 1_000_000_000u64;
        let points: Vec<(i64, f64)> = (0..360)
            .map(|i| {
                counter += 12_000 + (i * 7919 % 300);
                (
                    1_700_000_000_000 + i as i64 * 10_000 + (i as i64 * 31 % 4),
                    counter as f64,
                )
            })
            .collect();
        round_trip(&points);
        let bytes = encode_raw(&points).len();
        assert!(bytes < 360 * 2, "{bytes} bytes for 360 samples");
        // A constant gauge at a perfect interval costs almost nothing.
        let flat: Vec<(i64, f64)> = (0..360).map(|i| (i * 10_000, 42.0)).collect();
        round_trip(&flat);
        assert!(encode_raw(&flat).len() < 30);
    }

    #[test]
    fn decimals_noise_and_special_values_survive() {
        round_trip(&[(0, 12.34), (10, 12.35), (20, -0.0), (30, 0.1 + 0.2)]);
        round_trip(&[(0, f64::NAN), (1, f64::INFINITY), (2, f64::MIN_POSITIVE)]);
        round_trip(&[(i64::MIN, 1e300), (i64::MAX, -1e-300)]);
        round_trip(&[(5, 1.0)]);
        round_trip(&[]);
    }

    #[test]
    fn rollups_round_trip() {
        let points: Vec<Rollup> = (0..288)
            .map(|i| Rollup {
                ts: i * 300_000,
                min: i as f64,
                max: i as f64 * 1.5,
                sum: i as f64 * 30.25,
                count: 30,
                last: 0.1 * i as f64,
            })
            .collect();
        let back = decode_rollups(&encode_rollups(&points)).unwrap();
        assert_eq!(back, points);
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let points: Vec<(i64, f64)> = (0..100).map(|i| (i * 1000, i as f64 * 0.37)).collect();
        let blob = encode_raw(&points);
        for cut in 0..blob.len() {
            let _ = decode_raw(&blob[..cut]);
        }
        let mut wrong = blob.clone();
        wrong[0] = 9;
        assert!(decode_raw(&wrong).is_err());
        assert!(decode_rollups(&blob).is_err());
        for i in 1..blob.len() {
            let mut flipped = blob.clone();
            flipped[i] ^= 0xA5;
            let _ = decode_raw(&flipped);
        }
    }

    #[test]
    fn hour_long_chunks_at_one_second_round_trip() {
        let ints: Vec<(i64, f64)> = (0..3_600)
            .map(|i| (i * 1_000 + (i * 7) % 3, ((i * 7_919) % 5_000) as f64))
            .collect();
        round_trip(&ints);
        let floats: Vec<(i64, f64)> = (0..3_600)
            .map(|i| (i * 1_000, (i as f64 * 0.37).sin()))
            .collect();
        round_trip(&floats);
    }

    proptest! {
        #[test]
        fn any_points_round_trip(
            start in any::<i64>(),
            steps in proptest::collection::vec((0i64..100_000, any::<f64>()), 0..400),
            ints in any::<bool>(),
        ) {
            let mut ts = start;
            let points: Vec<(i64, f64)> = steps
                .into_iter()
                .map(|(dt, v)| {
                    ts = ts.wrapping_add(dt);
                    (ts, if ints { (v % 1e6).round() } else { v })
                })
                .collect();
            round_trip(&points);
        }
    }
}
