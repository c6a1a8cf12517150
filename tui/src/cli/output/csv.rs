//! CSV output: a header row and one record per row, quoted where needed.

/// Renders rows under `headers` as CSV; cells a spreadsheet would run as a formula are
/// neutralised with a leading `'` (OWASP CSV injection).
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(headers)?;
    for row in rows {
        writer.write_record(
            row.iter()
                .map(|cell| plantwatch_shared::rules::escape_cell(cell).into_owned()),
        )?;
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

    #[test]
    fn formulas_are_neutralised() {
        let out = render(&["NOTES"], &[vec!["=cmd|' /C calc'!A0".into()]]).unwrap();
        assert_eq!(out, "NOTES\n'=cmd|' /C calc'!A0\n");
    }
}
