//! InfluxDB line protocol: the strict parser the server's ingest uses and the writer the
//! collector and agent use, so both ends agree on escapes and field types.
//!
//! `measurement[,tag=value…] field=value[,field=value…] [timestamp]`. Measurement names escape
//! `,` and space; tag keys, tag values and field keys escape `,`, `=` and space; string field
//! values are double-quoted with `"` and `\` escaped. Field values are floats (`1`, `1.5`,
//! `-2e3`), integers (`1i`), unsigned integers (`1u`), booleans (`t`, `true`, `F`, …) or
//! strings. Blank lines and `#` comments are skipped.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Bytes that end a measurement name unless escaped.
const MEASUREMENT_STOPS: &[u8] = b", ";
/// Bytes that end a tag key, tag value or field key unless escaped.
const KEY_STOPS: &[u8] = b",= ";

/// Longest line the parser accepts, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One field value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(Cow<'a, str>),
}

impl FieldValue<'_> {
    /// The value as a number to store: booleans as 0/1, strings not at all.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Float(v) => Some(*v),
            FieldValue::Int(v) => Some(*v as f64),
            FieldValue::UInt(v) => Some(*v as f64),
            FieldValue::Bool(v) => Some(if *v { 1.0 } else { 0.0 }),
            FieldValue::Str(_) => None,
        }
    }
}

/// One parsed line. Text borrows from the input unless it had escapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    pub measurement: Cow<'a, str>,
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// In the precision of the request; `None` means "when received".
    pub timestamp: Option<i64>,
}

impl Line<'_> {
    /// The value of tag `key`, if present.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }
}

/// Timestamp precision of a write request (`precision=` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
}

impl Precision {
    /// Parses the InfluxDB names (`ns`, `n`, `us`, `u`, `µs`, `ms`, `s`).
    pub fn parse(value: &str) -> Option<Precision> {
        match value {
            "ns" | "n" => Some(Precision::Nanoseconds),
            "us" | "u" | "µs" => Some(Precision::Microseconds),
            "ms" => Some(Precision::Milliseconds),
            "s" => Some(Precision::Seconds),
            _ => None,
        }
    }

    /// A timestamp of this precision in milliseconds (what the store keeps), if it fits.
    pub fn to_millis(self, timestamp: i64) -> Option<i64> {
        match self {
            Precision::Nanoseconds => Some(timestamp.div_euclid(1_000_000)),
            Precision::Microseconds => Some(timestamp.div_euclid(1_000)),
            Precision::Milliseconds => Some(timestamp),
            Precision::Seconds => timestamp.checked_mul(1_000),
        }
    }
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct ParseError {
    pub offset: usize,
    pub message: &'static str,
}

type Parsed<'a, T> = Result<(T, usize), ParseError>;

fn fail<T>(offset: usize, message: &'static str) -> Result<T, ParseError> {
    Err(ParseError { offset, message })
}

/// Parses one line (without its newline). Blank lines and comments are the caller's to skip.
pub fn parse_line(line: &str) -> Result<Line<'_>, ParseError> {
    if line.len() > MAX_LINE_BYTES {
        return fail(0, "line too long");
    }
    let bytes = line.as_bytes();
    let (measurement, mut at) = identifier(line, 0, MEASUREMENT_STOPS)?;
    if measurement.is_empty() {
        return fail(0, "missing measurement");
    }
    let mut tags = Vec::new();
    while at < bytes.len() && bytes[at] == b',' {
        let (key, next) = identifier(line, at + 1, KEY_STOPS)?;
        if key.is_empty() {
            return fail(at + 1, "empty tag key");
        }
        if bytes.get(next) != Some(&b'=') {
            return fail(next, "tag without '='");
        }
        let (value, next) = identifier(line, next + 1, KEY_STOPS)?;
        if value.is_empty() {
            return fail(next, "empty tag value");
        }
        tags.push((key, value));
        at = next;
    }
    if bytes.get(at) != Some(&b' ') {
        return fail(at, "missing fields");
    }
    at += 1;
    let mut fields = Vec::new();
    loop {
        let (key, next) = identifier(line, at, KEY_STOPS)?;
        if key.is_empty() {
            return fail(at, "empty field key");
        }
        if bytes.get(next) != Some(&b'=') {
            return fail(next, "field without '='");
        }
        let (value, next) = field_value(line, next + 1)?;
        fields.push((key, value));
        at = next;
        match bytes.get(at) {
            Some(b',') => at += 1,
            _ => break,
        }
    }
    let timestamp = match bytes.get(at) {
        None => None,
        Some(b' ') => {
            let text = &line[at + 1..];
            if text.is_empty() {
                None
            } else {
                match text.parse::<i64>() {
                    Ok(value) if !text.starts_with('+') => Some(value),
                    _ => return fail(at + 1, "invalid timestamp"),
                }
            }
        }
        Some(_) => return fail(at, "unexpected character after the fields"),
    };
    Ok(Line {
        measurement,
        tags,
        fields,
        timestamp,
    })
}

/// Reads a measurement, tag or field-key token until an unescaped stop byte.
fn identifier<'a>(line: &'a str, start: usize, stops: &[u8]) -> Parsed<'a, Cow<'a, str>> {
    let bytes = line.as_bytes();
    let mut at = start;
    let mut escaped = false;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'\\' && at + 1 < bytes.len() && is_escapable(bytes[at + 1], stops) {
            escaped = true;
            at += 2;
            continue;
        }
        if stops.contains(&byte) {
            break;
        }
        if byte == b'\n' || byte == b'\r' {
            return fail(at, "line break inside a name");
        }
        at += 1;
    }
    let raw = &line[start..at];
    if !escaped {
        return Ok((Cow::Borrowed(raw), at));
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && next.is_ascii()
            && is_escapable(next as u8, stops)
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    Ok((Cow::Owned(out), at))
}

fn is_escapable(byte: u8, stops: &[u8]) -> bool {
    stops.contains(&byte) || byte == b'\\'
}

fn field_value(line: &str, start: usize) -> Parsed<'_, FieldValue<'_>> {
    let bytes = line.as_bytes();
    if bytes.get(start) == Some(&b'"') {
        let mut at = start + 1;
        let mut escaped = false;
        loop {
            match bytes.get(at) {
                None => return fail(start, "unterminated string"),
                Some(b'\\') if matches!(bytes.get(at + 1), Some(b'"' | b'\\')) => {
                    escaped = true;
                    at += 2;
                }
                Some(b'"') => break,
                Some(_) => at += 1,
            }
        }
        let raw = &line[start + 1..at];
        let text = if escaped {
            Cow::Owned(raw.replace("\\\"", "\"").replace("\\\\", "\\"))
        } else {
            Cow::Borrowed(raw)
        };
        return Ok((FieldValue::Str(text), at + 1));
    }
    let end = bytes[start..]
        .iter()
        .position(|b| *b == b',' || *b == b' ')
        .map_or(bytes.len(), |p| start + p);
    let text = &line[start..end];
    let value = match text {
        "" => return fail(start, "missing field value"),
        "t" | "T" | "true" | "True" | "TRUE" => FieldValue::Bool(true),
        "f" | "F" | "false" | "False" | "FALSE" => FieldValue::Bool(false),
        _ => {
            if let Some(digits) = text.strip_suffix('i') {
                match digits.parse::<i64>() {
                    Ok(v) if plain_integer(digits) => FieldValue::Int(v),
                    _ => return fail(start, "invalid integer"),
                }
            } else if let Some(digits) = text.strip_suffix('u') {
                match digits.parse::<u64>() {
                    Ok(v) if plain_integer(digits) => FieldValue::UInt(v),
                    _ => return fail(start, "invalid unsigned integer"),
                }
            } else {
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() && plain_float(text) => FieldValue::Float(v),
                    _ => return fail(start, "invalid field value"),
                }
            }
        }
    };
    Ok((value, end))
}

fn plain_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Rust accepts `inf`, `NaN` and a leading `+`; line protocol does not.
fn plain_float(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    body.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

/// Splits a body into (1-based line number, line), skipping blank lines and comments.
pub fn lines(body: &str) -> impl Iterator<Item = (usize, &str)> {
    body.split('\n').enumerate().filter_map(|(index, line)| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start();
        (!trimmed.is_empty() && !trimmed.starts_with('#')).then_some((index + 1, line))
    })
}

/// Appends lines to a buffer with the escapes the parser expects.
#[derive(Debug, Default)]
pub struct Writer {
    buf: String,
    lines: usize,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Starts a line: measurement and tags (tags with an empty value are left out, as line
    /// protocol cannot carry them). Finish it with [`LineBuilder::finish`].
    pub fn line<'w>(&'w mut self, measurement: &str, tags: &[(&str, &str)]) -> LineBuilder<'w> {
        let start = self.buf.len();
        escape_into(&mut self.buf, measurement, &[',', ' ']);
        for (key, value) in tags {
            if value.is_empty() {
                continue;
            }
            self.buf.push(',');
            escape_into(&mut self.buf, key, &[',', '=', ' ']);
            self.buf.push('=');
            escape_into(&mut self.buf, value, &[',', '=', ' ']);
        }
        LineBuilder {
            writer: self,
            start,
            fields: 0,
        }
    }

    /// Number of complete lines written.
    pub fn len(&self) -> usize {
        self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The text written so far, and a fresh writer.
    pub fn take(&mut self) -> String {
        self.lines = 0;
        std::mem::take(&mut self.buf)
    }

    pub fn as_str(&self) -> &str {
        &self.buf
    }

    /// Adds the lines of `other` after these.
    pub fn append(&mut self, other: Writer) {
        self.buf.push_str(&other.buf);
        self.lines += other.lines;
    }
}

/// One line being written; a line without fields is dropped.
#[derive(Debug)]
pub struct LineBuilder<'w> {
    writer: &'w mut Writer,
    start: usize,
    fields: usize,
}

impl LineBuilder<'_> {
    fn key(&mut self, key: &str) {
        self.writer
            .buf
            .push(if self.fields == 0 { ' ' } else { ',' });
        escape_into(&mut self.writer.buf, key, &[',', '=', ' ']);
        self.writer.buf.push('=');
        self.fields += 1;
    }

    /// A float field; non-finite values are skipped (line protocol has no NaN).
    pub fn float(mut self, key: &str, value: f64) -> Self {
        if value.is_finite() {
            self.key(key);
            let _ = write!(self.writer.buf, "{value:?}");
        }
        self
    }

    pub fn int(mut self, key: &str, value: i64) -> Self {
        self.key(key);
        let _ = write!(self.writer.buf, "{value}i");
        self
    }

    pub fn uint(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.writer.buf, "{value}u");
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.writer
            .buf
            .push_str(if value { "true" } else { "false" });
        self
    }

    pub fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        self.writer.buf.push('"');
        for c in value.chars() {
            if c == '"' || c == '\\' {
                self.writer.buf.push('\\');
            }
            // A raw newline would end the line.
            self.writer.buf.push(if c == '\n' { ' ' } else { c });
        }
        self.writer.buf.push('"');
        self
    }

    /// Ends the line with a timestamp in milliseconds (written as nanoseconds).
    pub fn finish(self, timestamp_ms: i64) {
        if self.fields == 0 {
            self.writer.buf.truncate(self.start);
            return;
        }
        let _ = writeln!(self.writer.buf, " {}", i128::from(timestamp_ms) * 1_000_000);
        self.writer.lines += 1;
    }
}

fn escape_into(out: &mut String, text: &str, specials: &[char]) {
    for c in text.chars() {
        if c == '\n' || c == '\r' {
            out.push(' ');
            continue;
        }
        if specials.contains(&c) || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_field_type_and_the_timestamp() {
        let line =
            parse_line(r#"ping,node_id=3,host=plc\ 1 rtt=1.5,loss=0i,sent=3u,up=t,note="a \"b\"" 1700000000000000000"#)
                .unwrap();
        assert_eq!(line.measurement, "ping");
        assert_eq!(line.tag("node_id"), Some("3"));
        assert_eq!(line.tag("host"), Some("plc 1"));
        assert_eq!(
            line.fields,
            vec![
                ("rtt".into(), FieldValue::Float(1.5)),
                ("loss".into(), FieldValue::Int(0)),
                ("sent".into(), FieldValue::UInt(3)),
                ("up".into(), FieldValue::Bool(true)),
                ("note".into(), FieldValue::Str(r#"a "b""#.into())),
            ]
        );
        assert_eq!(line.timestamp, Some(1_700_000_000_000_000_000));
    }

    #[test]
    fn escapes_in_names_and_strings_round_trip_through_the_writer() {
        let mut writer = Writer::new();
        writer
            .line(
                "if table, x",
                &[("ifName", "Gi0/1, uplink=a"), ("empty", "")],
            )
            .float("in=bytes", 2.0)
            .string("descr", "quote \" and \\ back")
            .finish(1_000);
        let text = writer.take();
        let line = parse_line(text.trim_end()).unwrap();
        assert_eq!(line.measurement, "if table, x");
        assert_eq!(line.tags.len(), 1);
        assert_eq!(line.tag("ifName"), Some("Gi0/1, uplink=a"));
        assert_eq!(line.fields[0], ("in=bytes".into(), FieldValue::Float(2.0)));
        assert_eq!(
            line.fields[1].1,
            FieldValue::Str("quote \" and \\ back".into())
        );
        assert_eq!(line.timestamp, Some(1_000_000_000));
    }

    #[test]
    fn a_line_without_fields_is_not_written() {
        let mut writer = Writer::new();
        writer.line("cpu", &[]).float("x", f64::NAN).finish(1);
        assert!(writer.is_empty() && writer.as_str().is_empty());
    }

    #[test]
    fn refuses_malformed_lines_with_a_reason() {
        for (line, reason) in [
            ("cpu", "missing fields"),
            ("cpu ", "empty field key"),
            ("cpu value", "field without '='"),
            ("cpu value=", "missing field value"),
            ("cpu value=abc", "invalid field value"),
            ("cpu value=1.5i", "invalid integer"),
            ("cpu value=-1u", "invalid unsigned integer"),
            ("cpu value=NaN", "invalid field value"),
            ("cpu value=inf", "invalid field value"),
            ("cpu value=\"open", "unterminated string"),
            ("cpu,host value=1", "tag without '='"),
            ("cpu,host= value=1", "empty tag value"),
            (",host=a value=1", "missing measurement"),
            ("cpu value=1 12a", "invalid timestamp"),
            ("cpu value=1 +12", "invalid timestamp"),
            ("cpu value=1x", "invalid field value"),
        ] {
            let error = parse_line(line).expect_err(line);
            assert_eq!(error.message, reason, "{line}");
        }
    }

    #[test]
    fn precisions_convert_to_milliseconds() {
        assert_eq!(
            Precision::parse("ns").unwrap().to_millis(1_500_000_000),
            Some(1_500)
        );
        assert_eq!(
            Precision::parse("u").unwrap().to_millis(1_500_000),
            Some(1_500)
        );
        assert_eq!(
            Precision::parse("ms").unwrap().to_millis(1_500),
            Some(1_500)
        );
        assert_eq!(Precision::parse("s").unwrap().to_millis(2), Some(2_000));
        assert_eq!(Precision::parse("s").unwrap().to_millis(i64::MAX), None);
        assert_eq!(Precision::parse("h"), None);
    }

    #[test]
    fn lines_skip_blanks_and_comments_and_keep_numbers() {
        let body = "# header\r\ncpu v=1\r\n\n  \nmem v=2\n";
        let found: Vec<_> = lines(body).collect();
        assert_eq!(found, vec![(2, "cpu v=1"), (5, "mem v=2")]);
    }

    proptest! {
        // The parser is fed whatever arrives over the network: it must never panic.
        #[test]
        fn never_panics_on_arbitrary_input(input in "\\PC{0,200}") {
            let _ = parse_line(&input);
        }

        #[test]
        fn never_panics_on_line_protocol_like_input(input in "[a-z\\\\,= \"0-9.iutfTF-]{0,80}") {
            let _ = parse_line(&input);
        }

        #[test]
        fn written_lines_parse_back(
            measurement in "[^\n\r]{1,20}",
            tag in "[^\n\r]{1,20}",
            value in -1e12f64..1e12,
            count in any::<u64>(),
        ) {
            let mut writer = Writer::new();
            writer.line(&measurement, &[("t", &tag)]).float("v", value).uint("n", count).finish(5);
            let text = writer.take();
            let line = parse_line(text.trim_end_matches('\n')).unwrap();
            prop_assert_eq!(line.measurement.as_ref(), measurement.as_str());
            prop_assert_eq!(line.tag("t"), Some(tag.as_str()));
            prop_assert_eq!(&line.fields[0].1, &FieldValue::Float(value));
            prop_assert_eq!(&line.fields[1].1, &FieldValue::UInt(count));
        }
    }
}
