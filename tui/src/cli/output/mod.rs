//! Output formats of the listing commands: aligned tables for people, JSON for scripts.

pub mod csv;
pub mod json;
pub mod table;

use clap::ValueEnum;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Aligned columns with a header.
    #[default]
    Table,
    /// The API's JSON documents, pretty-printed.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

/// Formats a timestamp for a table cell: RFC 3339 in UTC, to the second
/// (`2026-12-03T16:15:07Z`), like the JSON output and the emails.
pub fn time_cell(at: Option<time::OffsetDateTime>) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| "-".to_owned())
}
