//! The `html` format: a report to open in a browser, mail or print. The
//! page is self-contained (inline CSS, nothing fetched), escapes every
//! value, and streams: the head and the table header are written up front
//! and each batch appends its rows, so a large result is never held whole.

use std::io::Write;

use arrow::array::Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::rows_phrase;
use super::tap::{ErrorSlot, Tap};
use super::BatchSink;
use crate::error::Result;

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="wausage">
<title>wausage result</title>
<style>
body { margin: 1rem; color: #1f2328; background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
.wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3em 0.7em; text-align: left; vertical-align: top;
  border-bottom: 1px solid #d0d7de; }
th { background: #f6f8fa; font-weight: 600; white-space: nowrap;
  border-bottom: 2px solid #8c959f; }
td { max-width: 40em; overflow-wrap: break-word; }
tbody tr:nth-child(even) { background: #f6f8fa; }
.num { text-align: right; white-space: nowrap; }
td.null { background: repeating-linear-gradient(135deg, transparent 0 4px, #eaeef2 4px 5px); }
.count { color: #59636e; font-size: 0.9em; }
@media (max-width: 600px) { body { margin: 0.5rem; font-size: 13px; } th, td { padding: 0.25em 0.45em; } }
@media print {
  body { margin: 0; font-size: 9pt; }
  .wrap { overflow: visible; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  th, td.null, tbody tr:nth-child(even) { background: none; }
  td { max-width: none; }
}
</style>
</head>
<body>
<div class="wrap">
<table>
<thead>
<tr>"#;

const TAIL_OPEN: &str = "</tbody>\n</table>\n</div>\n<p class=\"count\">";
const TAIL_CLOSE: &str = "</p>\n</body>\n</html>\n";

pub(super) struct HtmlSink<W: Write> {
    out: Tap<W>,
    slot: ErrorSlot,
    /// Right-align these columns (and their headers).
    numeric: Vec<bool>,
    rows: u64,
    /// Reused for each batch's markup and each cell's text.
    page: String,
    cell: String,
}

impl<W: Write> HtmlSink<W> {
    pub(super) fn try_new(schema: SchemaRef, out: Tap<W>, slot: ErrorSlot) -> Result<Self> {
        let numeric: Vec<bool> = schema
            .fields()
            .iter()
            .map(|f| is_numeric(f.data_type()))
            .collect();
        let mut page = String::from(HEAD);
        for (field, &num) in schema.fields().iter().zip(&numeric) {
            page.push_str(if num { "<th class=\"num\"" } else { "<th" });
            page.push_str(" title=\"");
            escape_into(&mut page, &field.data_type().to_string());
            page.push_str("\">");
            escape_into(&mut page, field.name());
            page.push_str("</th>");
        }
        page.push_str("</tr>\n</thead>\n<tbody>\n");
        let mut sink = HtmlSink {
            out,
            slot,
            numeric,
            rows: 0,
            page,
            cell: String::new(),
        };
        sink.emit()?;
        Ok(sink)
    }

    /// Writes out and clears the markup built so far.
    fn emit(&mut self) -> Result<()> {
        self.out
            .write_all(self.page.as_bytes())
            .map_err(|e| self.slot.io_err(e))?;
        self.page.clear();
        Ok(())
    }
}

impl<W: Write + Send> BatchSink for HtmlSink<W> {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let options = FormatOptions::default().with_display_error(true);
        let columns = batch.columns();
        let formatters = columns
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        let nulls: Vec<_> = columns.iter().map(|c| c.logical_nulls()).collect();
        for row in 0..batch.num_rows() {
            self.page.push_str("<tr>");
            for (col, formatter) in formatters.iter().enumerate() {
                if nulls[col].as_ref().is_some_and(|n| n.is_null(row)) {
                    self.page.push_str("<td class=\"null\"></td>");
                    continue;
                }
                let num = self.numeric.get(col).copied().unwrap_or(false);
                self.page
                    .push_str(if num { "<td class=\"num\">" } else { "<td>" });
                self.cell.clear();
                formatter.value(row).write(&mut self.cell)?;
                escape_into(&mut self.page, &self.cell);
                self.page.push_str("</td>");
            }
            self.page.push_str("</tr>\n");
            if self.page.len() >= 64 * 1024 {
                self.emit()?;
            }
        }
        self.rows += batch.num_rows() as u64;
        self.emit()
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        let count = rows_phrase(self.rows);
        self.page.push_str(TAIL_OPEN);
        self.page.push_str(&count);
        self.page.push_str(TAIL_CLOSE);
        self.emit()?;
        self.out.flush().map_err(|e| self.slot.io_err(e))?;
        Ok(self.rows)
    }
}

/// Numbers read best right-aligned; dictionary-encoded ones too.
fn is_numeric(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => is_numeric(value),
        other => other.is_numeric(),
    }
}

/// Appends `text` with the characters that are special in HTML escaped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

pub(super) fn escape(text: &str) -> String {
    let mut out = String::new();
    escape_into(&mut out, text);
    out
}
