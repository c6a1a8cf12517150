//! How alerts speak: series names, interface labels, threshold messages and numbers as a
//! person reads them.

use plantwatch_shared::api::{RuleSpec, Severity};

/// `metric{tags}`, or the metric alone when it has no tags.
pub fn series_name(metric: &str, tags: &str) -> String {
    if tags.is_empty() {
        metric.to_owned()
    } else {
        format!("{metric}{{{tags}}}")
    }
}

/// An interface by its ifName (else ifIndex, else its tags).
pub fn interface_label(tags: &str) -> String {
    let map = plantwatch_shared::api::tags_from_canonical(tags);
    map.get("ifName")
        .or_else(|| map.get("ifIndex"))
        .cloned()
        .unwrap_or_else(|| tags.to_owned())
}

/// A threshold rule's message: `series: aggregation value comparison threshold` while it
/// breaches, and that the value is back once it does not.
pub fn threshold_message(
    series: &str,
    spec: &RuleSpec,
    value: f64,
    severity: Option<Severity>,
) -> String {
    let threshold = match severity {
        Some(Severity::Critical) => spec.critical,
        _ => spec.warning.or(spec.critical),
    }
    .map(threshold_text)
    .unwrap_or_default();
    let value_text = value_text(value);
    match severity {
        Some(_) => format!(
            "{series}: {} {value_text} {} {threshold}",
            spec.aggregation, spec.comparison
        ),
        None => format!(
            "{series}: {} {value_text}, back to normal (no longer {} {threshold})",
            spec.aggregation,
            spec.comparison.words()
        ),
    }
}

/// A threshold as it was set: the shortest text that reads back as the same number, so
/// 0.001 is "0.001", not "0".
pub fn threshold_text(value: f64) -> String {
    format!("{value}")
}

/// A measured value for a person: two decimals from 1 up, three significant digits below
/// (0.000123 stays 0.000123), trailing zeros dropped.
pub fn value_text(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs();
    let decimals = if magnitude >= 1.0 || magnitude == 0.0 {
        2
    } else {
        // Digits after the point up to the third significant one.
        (2 - magnitude.log10().floor() as i32).clamp(2, 12) as usize
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_values_keep_their_precision() {
        assert_eq!(threshold_text(0.001), "0.001");
        assert_eq!(threshold_text(90.0), "90");
        assert_eq!(threshold_text(2.5), "2.5");
        assert_eq!(value_text(97.2345), "97.23");
        assert_eq!(value_text(1.0), "1");
        assert_eq!(value_text(0.0), "0");
        assert_eq!(value_text(0.000_123_4), "0.000123");
        assert_eq!(value_text(0.0015), "0.0015");
        assert_eq!(value_text(-0.0001), "-0.0001");
    }

    #[test]
    fn messages_name_the_series_and_say_when_the_value_is_back() {
        let spec = RuleSpec {
            comparison: plantwatch_shared::api::Comparison::AtLeast,
            warning: Some(0.001),
            ..RuleSpec::new("t", "x.err")
        };
        let firing = threshold_message("x.err{port=1}", &spec, 0.0042, Some(Severity::Warning));
        assert_eq!(firing, "x.err{port=1}: last 0.0042 >= 0.001");
        let back = threshold_message("x.err{port=1}", &spec, 0.0, None);
        assert_eq!(
            back,
            "x.err{port=1}: last 0, back to normal (no longer at or above 0.001)"
        );
    }
}
