//! Message lists written as JSON straight from their Postgres rows.
//!
//! A list page holds up to 500 messages and listing is the service's busiest read. Decoding every
//! column of every row into an owned `String` and serialising it again through serde cost most of
//! the service's time per page. Here each row's raw (binary) column values are written as the
//! message's JSON object directly: one buffer per row, no per-column allocation.
//!
//! Single messages (GET, POST, PATCH, the event stream) still go through [`Message`]'s serde
//! derive, which stays the definition of a message's JSON: the tests below hold this writer to the
//! same bytes for awkward values, and an integration test holds every listed message equal to
//! its GET.
//!
//! [`Message`]: crate::messages::Message

use chrono::{SecondsFormat, Utc};
use diesel::deserialize::{self, FromSql, QueryableByName};
use diesel::pg::{Pg, PgValue};
use diesel::row::{Field, NamedRow, Row};
use diesel::sql_types;
use uuid::Uuid;

/// How a column is written.
#[derive(Clone, Copy)]
enum Kind {
    Uuid,
    Instant,
    Text,
    MessageType,
}

/// Each column of [`MESSAGE_COLUMNS`](crate::messages::MESSAGE_COLUMNS), in order: its name, the JSON written before its value (the
/// key, after the comma or the opening brace) and how the value is written.
const FIELDS: [(&str, &[u8], Kind); 16] = [
    ("uuid", b"{\"uuid\":", Kind::Uuid),
    ("created", b",\"created\":", Kind::Instant),
    ("modified", b",\"modified\":", Kind::Instant),
    ("created_by", b",\"created_by\":", Kind::Text),
    ("sender", b",\"sender\":", Kind::Text),
    ("sender_type", b",\"sender_type\":", Kind::Text),
    ("receiver", b",\"receiver\":", Kind::Text),
    ("receiver_type", b",\"receiver_type\":", Kind::Text),
    ("message_type", b",\"message_type\":", Kind::MessageType),
    ("content", b",\"content\":", Kind::Text),
    ("related_message", b",\"related_message\":", Kind::Uuid),
    ("retrieved_text", b",\"retrieved\":", Kind::Text),
    ("confirmed_text", b",\"confirmed\":", Kind::Text),
    ("confirmed_by", b",\"confirmed_by\":", Kind::Text),
    ("cancelled_text", b",\"cancelled\":", Kind::Text),
    ("cancelled_by", b",\"cancelled_by\":", Kind::Text),
];

/// One message's JSON object, written from its row.
#[derive(Debug)]
pub struct MessageJson(Vec<u8>);

/// Read by position from a statement selecting exactly
/// [`MESSAGE_COLUMNS`](crate::messages::MESSAGE_COLUMNS) (a test holds [`FIELDS`] to it).
impl QueryableByName<Pg> for MessageJson {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        if row.field_count() != FIELDS.len() {
            return Err(format!("a message row has {} columns, not {}", FIELDS.len(), row.field_count()).into());
        }
        // A typical message is some 430 bytes of JSON.
        let mut out = Vec::with_capacity(512);
        for (idx, (_, prefix, kind)) in FIELDS.iter().enumerate() {
            let field = Row::get(row, idx).ok_or(diesel::result::UnexpectedEndOfRow)?;
            out.extend_from_slice(prefix);
            match field.value() {
                None => out.extend_from_slice(b"null"),
                Some(value) => write_value(&mut out, *kind, value)?,
            }
        }
        out.push(b'}');
        Ok(MessageJson(out))
    }
}

fn write_value(out: &mut Vec<u8>, kind: Kind, value: PgValue<'_>) -> deserialize::Result<()> {
    match kind {
        Kind::Uuid => write_uuid(out, <Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(value)?),
        Kind::Instant => write_instant(out, <i64 as FromSql<sql_types::BigInt, Pg>>::from_sql(value)?)?,
        Kind::Text => write_str(out, std::str::from_utf8(value.as_bytes())?),
        Kind::MessageType => {
            let type_value = <i32 as FromSql<sql_types::Integer, Pg>>::from_sql(value)?;
            out.extend_from_slice(b"{\"value\":");
            out.extend_from_slice(itoa::Buffer::new().format(type_value).as_bytes());
            out.push(b'}');
        }
    }
    Ok(())
}

/// A JSON array of messages, built row by row as they are read.
pub struct JsonArray {
    json: Vec<u8>,
    len: usize,
}

impl JsonArray {
    /// An empty array with room for about `expected` messages.
    pub fn with_capacity(expected: usize) -> Self {
        let mut json = Vec::with_capacity(2 + expected * 450);
        json.push(b'[');
        JsonArray { json, len: 0 }
    }

    pub fn push(&mut self, message: &MessageJson) {
        if self.len > 0 {
            self.json.push(b',');
        }
        self.json.extend_from_slice(&message.0);
        self.len += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.json.push(b']');
        self.json
    }
}

fn write_uuid(out: &mut Vec<u8>, id: Uuid) {
    let mut buffer = Uuid::encode_buffer();
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buffer).as_bytes());
    out.push(b'"');
}

/// Microseconds from the Unix epoch to Postgres's (2000-01-01T00:00:00Z), which binary
/// `timestamptz` values count from.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A `timestamptz` (microseconds since 2000-01-01 UTC) as RFC 3339 in UTC with `Z` and as many
/// fraction digits as it needs (none, 3 or 6): exactly what chrono's serde writes for the same
/// `DateTime<Utc>`, without building one.
fn write_instant(out: &mut Vec<u8>, pg_micros: i64) -> deserialize::Result<()> {
    let unix_micros = pg_micros.checked_add(PG_EPOCH_MICROS).ok_or("timestamp out of range")?;
    let (days, micros_of_day) = (unix_micros.div_euclid(MICROS_PER_DAY), unix_micros.rem_euclid(MICROS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        // Years that need a sign: chrono's own formatter, as serde would.
        let instant = chrono::DateTime::<Utc>::from_timestamp_micros(unix_micros).ok_or("timestamp out of range")?;
        out.push(b'"');
        out.extend_from_slice(instant.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
        out.push(b'"');
        return Ok(());
    }
    let seconds = micros_of_day / 1_000_000;
    let micros = micros_of_day % 1_000_000;
    // Two digits at a time, by constant divisors (which compile to multiplications).
    let two = |value: i64| [b'0' + (value / 10) as u8, b'0' + (value % 10) as u8];
    let [y1, y2] = two(year / 100);
    let [y3, y4] = two(year % 100);
    let [mo1, mo2] = two(month);
    let [d1, d2] = two(day);
    let [h1, h2] = two(seconds / 3600);
    let [mi1, mi2] = two(seconds / 60 % 60);
    let [s1, s2] = two(seconds % 60);
    out.extend_from_slice(&[b'"', y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2, b'T']);
    out.extend_from_slice(&[h1, h2, b':', mi1, mi2, b':', s1, s2]);
    if micros % 1000 == 0 && micros != 0 {
        let millis = micros / 1000;
        let [m2, m3] = two(millis % 100);
        out.extend_from_slice(&[b'.', b'0' + (millis / 100) as u8, m2, m3]);
    } else if micros != 0 {
        let [m1, m2] = two(micros / 10_000);
        let [m3, m4] = two(micros / 100 % 100);
        let [m5, m6] = two(micros % 100);
        out.extend_from_slice(&[b'.', m1, m2, m3, m4, m5, m6]);
    }
    out.extend_from_slice(b"Z\"");
    Ok(())
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// A JSON string, escaped as serde_json escapes: `"`, `\` and the control characters below
/// U+0020; everything else, non-ASCII included, is written as it is.
fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Eight bytes at a time while none needs escaping: most text has nothing to escape.
        if let Some(chunk) = bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            if !needs_escape(word) {
                at += 8;
                continue;
            }
        }
        let byte = bytes[at];
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => &[b'\\', b'u', b'0', b'0', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]],
            _ => {
                at += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..at]);
        out.extend_from_slice(escape);
        at += 1;
        start = at;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const HEX: [u8; 16] = *b"0123456789abcdef";

/// Whether any of the eight bytes in `word` is `"`, `\` or below 0x20 (the classic "has a zero
/// byte" test, exact for bytes that are all at most 0x7f or whose high bit it masks out).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH != 0;
    below_space || has_zero(word ^ (ONES * u64::from(b'"'))) || has_zero(word ^ (ONES * u64::from(b'\\')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::MESSAGE_COLUMNS;

    #[test]
    fn the_fields_are_the_message_columns() {
        let names: Vec<&str> = FIELDS.iter().map(|(column, _, _)| *column).collect();
        assert_eq!(names.join(", "), MESSAGE_COLUMNS);
    }

    fn serde_str(text: &str) -> String {
        serde_json::to_string(text).unwrap()
    }

    fn written_str(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        let mut awkward: Vec<String> = [
            "",
            "plain",
            "exactly8",
            "sixteen bytes ok",
            "quote \" and backslash \\ inside a longer run of text",
            "\"",
            "\\",
            "tab\there\nnew line\r\u{8}\u{c}",
            "ünïcödé – 日本語 – emoji 🩺 past the eighth byte",
            "\u{7f} delete is not escaped, \u{1f} unit separator is",
            "/slashes/ stay",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // Every control character at every position of an eight-byte window.
        for byte in 0u8..0x20 {
            for at in 0..9 {
                let mut text = "abcdefghijklmnop".to_owned();
                text.insert(at, char::from(byte));
                awkward.push(text);
            }
        }
        for text in &awkward {
            assert_eq!(written_str(text), serde_str(text), "{text:?}");
        }
    }

    #[test]
    fn escape_detection_is_exact_for_every_byte_in_every_lane() {
        for byte in 0u8..=255 {
            for lane in 0..8 {
                let mut bytes = *b"aaaaaaaa";
                bytes[lane] = byte;
                let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
                assert_eq!(needs_escape(u64::from_le_bytes(bytes)), expected, "byte {byte:#x} lane {lane}");
            }
        }
    }

    #[test]
    fn instants_are_written_as_chrono_serialises_them() {
        let written = |instant: chrono::DateTime<Utc>| {
            let mut out = Vec::new();
            write_instant(&mut out, instant.timestamp_micros() - PG_EPOCH_MICROS).unwrap();
            String::from_utf8(out).unwrap()
        };
        let named = [
            "2026-12-01T09:00:00Z",
            "2026-12-01T09:00:00.100Z",
            "2026-12-01T09:00:00.120Z",
            "2026-12-01T09:00:00.123400Z",
            "2026-12-01T09:00:00.000001Z",
            "1999-12-31T23:59:59.999999Z",
            "2000-01-01T00:00:00Z",
            "2000-02-29T12:34:56.5+05:30",
            "1900-03-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
        ];
        let named = named.iter().map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc());
        // Years that need a sign.
        let signed = [(10_000, 1, 1), (-1, 12, 31)].map(|(y, m, d)| {
            chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(23, 59, 59).unwrap().and_utc()
        });
        // And a day-by-day walk across four centuries, each at a different time of day.
        let start = chrono::DateTime::parse_from_rfc3339("1890-01-01T00:00:00Z").unwrap().to_utc();
        let walk = (0..146_097 + 400).map(|n| start + chrono::Duration::microseconds(n * (86_400_000_000 + 7_654_321)));
        for instant in named.chain(signed).chain(walk) {
            assert_eq!(written(instant), serde_json::to_string(&instant).unwrap());
        }
    }
}
