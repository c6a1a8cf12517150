//! CSV output: a header row and one record per row, quoted where needed.

/// Renders rows under `headers` as CSV.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(headers)?;
    for row in rows {
        writer.write_record(row)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_separators_are_quoted() {
        let out = render(&["NAME", "NOTES"], &[vec!["a".into(), "x, \"y\"".into()]]).unwrap();
        assert_eq!(out, "NAME,NOTES\na,\"x, \"\"y\"\"\"\n");
    }
}
