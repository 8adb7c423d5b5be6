//! Output of `fleet list` and `fleet update`: JSON, an aligned text table, or CSV (RFC 4180).

use serde_json::Value;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    Csv,
}

/// A cell of a row: JSON strings as they are, null as empty, everything else as JSON text.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell, two spaces apart; the header first.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// RFC 4180: a header record, then one record per row, each ending in CRLF; a field with a
/// comma, a double quote, CR or LF is quoted, its quotes doubled. A field starting with a space
/// is quoted too, so that readers that trim do not lose it.
pub(crate) fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let record = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let fields: Vec<String> = cells.map(csv_field).collect();
        fields.join(",") + "\r\n"
    };
    let mut out = record(&mut header.iter().copied());
    for row in rows {
        out.push_str(&record(&mut row.iter().map(String::as_str)));
    }
    out
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) || field.starts_with(' ') || field.ends_with(' ') {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_rfc_4180_needs() {
        let rows = vec![
            vec!["plain".to_owned(), "a,b".to_owned()],
            vec!["say \"hi\"".to_owned(), "two\r\nlines".to_owned()],
            vec![" lead".to_owned(), String::new()],
        ];
        assert_eq!(
            csv(&["x", "y"], &rows),
            "x,y\r\nplain,\"a,b\"\r\n\"say \"\"hi\"\"\",\"two\r\nlines\"\r\n\" lead\",\r\n"
        );
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![vec!["room-1".to_owned(), "ok".to_owned()]];
        assert_eq!(
            table(&["room", "health"], &rows),
            "room    health\nroom-1  ok\n"
        );
    }

    #[test]
    fn cells_of_json_values() {
        assert_eq!(cell(&Value::Null), "");
        assert_eq!(cell(&serde_json::json!("x")), "x");
        assert_eq!(cell(&serde_json::json!(true)), "true");
    }
}
