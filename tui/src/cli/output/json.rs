//! JSON output.

use serde::Serialize;

/// Renders `value` as pretty JSON with a trailing newline.
pub fn render<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}
