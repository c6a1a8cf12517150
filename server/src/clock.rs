//! The wall clock in the units the server stores: UNIX seconds in every timestamp column,
//! UNIX milliseconds in metric samples.

use time::OffsetDateTime;

/// The current time as UNIX seconds.
pub fn unix_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The current time as UNIX milliseconds.
pub fn unix_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
