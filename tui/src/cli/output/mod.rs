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
