//! Backslash meta-commands of the shell: `\d`, `\d NAME`, `\h [FUNCTION]`,
//! `\timing on|off`, `\format F`, `\o [FILE]`, `\i FILE`, `\rules [R]`, `\q`.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::Documentation;

use super::Repl;
use crate::config::parse_rules;
use crate::error::{Result, WaError};
use crate::output::Format;

const HELP: &str = "\
Meta-commands:
  \\d               list tables and views
  \\d NAME          columns and types of a table or view
  \\h               list wausage's functions;  \\h NAME  one function's documentation
  \\timing on|off   print rows and elapsed time after each statement
  \\format F        table, csv, json, ndjson, html (parquet needs \\o FILE)
  \\o FILE / \\o     send the next result to FILE (written atomically) / back to the screen;
                   a second result needs \\o FILE again, so that none replaces another unseen
  \\i FILE          run the statements in a .sql file
  \\rules [R]       which rule set prices messages; with R, price by auto, cbp, pmp
                   or pmp26 (also SET wausage.rules = 'pmp26')
  \\q               quit
SQL statements end with ';' and may span lines. Ctrl-C cancels a running query.";

pub async fn run(repl: &mut Repl, input: &str) -> Result<()> {
    let mut parts = input.trim_end_matches(';').split_whitespace();
    let command = parts.next().unwrap_or_default();
    let arg = parts.next();
    match (command, arg) {
        ("\\q" | "\\quit", _) => repl.quit = true,
        ("\\?" | "\\help", _) => println!("{HELP}"),
        ("\\d", None) => list_tables(repl).await?,
        ("\\d", Some(name)) => describe(repl, name).await?,
        ("\\h", None) => list_functions(repl)?,
        ("\\h", Some(name)) => println!("{}", function_help(repl, name)?),
        ("\\timing", setting @ (None | Some("on") | Some("off"))) => {
            repl.timing = match setting {
                Some(on_off) => on_off == "on",
                None => !repl.timing,
            };
            println!("timing is {}", if repl.timing { "on" } else { "off" });
        }
        ("\\format", Some(f)) => {
            let format: Format = f
                .parse()
                .map_err(|e: crate::output::ParseFormatError| WaError::Usage(e.to_string()))?;
            if format == Format::Parquet && repl.config.output.is_none() {
                return Err(WaError::Usage(
                    "parquet output needs a file: \\o FILE first".into(),
                ));
            }
            repl.config.format = format;
        }
        ("\\o", None) => repl.config.output = None,
        ("\\o", Some(file)) => {
            repl.config.output = Some(file.into());
            repl.output_armed = true;
        }
        ("\\i", Some(file)) => {
            let sql = std::fs::read_to_string(file).map_err(|e| WaError::io(file, e))?;
            repl.run_sql(&sql).await?;
        }
        ("\\rules", None) => {
            let rules = crate::engine::settings::current_rules(&repl.ctx);
            println!("{}", rules.describe());
        }
        ("\\rules", Some(r)) => {
            let rules = parse_rules(r)?;
            repl.run_sql(&format!("SET wausage.rules = '{}';", rules.as_str()))
                .await?;
        }
        _ => {
            return Err(WaError::Usage(format!(
                "unknown or incomplete meta-command {input:?}; \\? lists them"
            )))
        }
    }
    Ok(())
}

fn strings(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn print_columns(repl: &Repl, columns: Vec<(&str, Vec<String>)>) -> Result<()> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, _)| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays = columns.into_iter().map(|(_, v)| strings(v)).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let mut sink = repl.config.destination().sink(schema)?;
    sink.write_batch(&batch)?;
    sink.finish()?;
    Ok(())
}

async fn list_tables(repl: &Repl) -> Result<()> {
    let mut names = repl
        .ctx
        .catalog("datafusion")
        .and_then(|c| c.schema("public"))
        .map(|s| s.table_names())
        .unwrap_or_default();
    names.retain(|n| n != "wa_pairs");
    names.sort();
    let about = names
        .iter()
        .map(|n| {
            crate::engine::views::VIEWS
                .iter()
                .find(|(v, _)| v == n)
                .map(|(_, d)| d.to_string())
                .unwrap_or_else(|| {
                    if n == "messages_raw" {
                        "the log's rows as stored".into()
                    } else {
                        String::new()
                    }
                })
        })
        .collect();
    print_columns(repl, vec![("name", names), ("about", about)])
}

async fn describe(repl: &Repl, name: &str) -> Result<()> {
    let table =
        repl.ctx.table_provider(name).await.map_err(|_| {
            WaError::Usage(format!("no table or view named {name:?}; \\d lists them"))
        })?;
    let schema = table.schema();
    let fields = schema.fields();
    print_columns(
        repl,
        vec![
            ("column", fields.iter().map(|f| f.name().clone()).collect()),
            (
                "type",
                fields.iter().map(|f| f.data_type().to_string()).collect(),
            ),
            (
                "nullable",
                fields
                    .iter()
                    .map(|f| if f.is_nullable() { "YES" } else { "NO" }.to_string())
                    .collect(),
            ),
        ],
    )
}

fn documentation(repl: &Repl, name: &str) -> Option<Documentation> {
    let state = repl.ctx.state();
    if let Some(f) = state.scalar_functions().get(name) {
        return f.documentation().cloned();
    }
    if let Some(f) = state.aggregate_functions().get(name) {
        return f.documentation().cloned();
    }
    if let Some(f) = state.window_functions().get(name) {
        return f.documentation().cloned();
    }
    None
}

fn list_functions(repl: &Repl) -> Result<()> {
    let names: Vec<String> = wausage_udfs::function_names();
    let about = names
        .iter()
        .map(|n| {
            documentation(repl, n)
                .map(|d| {
                    d.description
                        .split(". ")
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .unwrap_or_default()
        })
        .collect();
    print_columns(repl, vec![("function", names), ("about", about)])?;
    println!("\\h NAME shows one function; SHOW FUNCTIONS lists every function.");
    Ok(())
}

/// One function's documentation as text.
pub fn function_help(repl: &Repl, name: &str) -> Result<String> {
    let doc = documentation(repl, name).ok_or_else(|| {
        WaError::Usage(format!(
            "no documented function named {name:?}; \\h lists ours"
        ))
    })?;
    let mut s = format!(
        "{name}\n\n{}\n\nSyntax: {}\n",
        doc.description, doc.syntax_example
    );
    if let Some(args) = &doc.arguments {
        s.push_str("\nArguments:\n");
        for (arg, text) in args {
            s.push_str(&format!("  {arg}: {text}\n"));
        }
    }
    if let Some(example) = &doc.sql_example {
        s.push_str(&format!("\nExample:\n{example}\n"));
    }
    Ok(s)
}
