//! The platform's own daily numbers (`--table meta_analytics=FILE.json`):
//! a WABA's `pricing_analytics` response as the Graph API returns it,
//! `{"pricing_analytics": {"data": [{"data_points": [...]}]}, "id": …}` (or
//! its inner `{"data": [...]}`), as a table of one row per data point:
//! `day` (the UTC day of `start`), `start`, `end`, `country`,
//! `pricing_type` and `pricing_category` (lower case, as our rules spell
//! them), `volume`, `cost`.

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, Float64Builder, Int64Builder, StringBuilder};
use arrow::array::{RecordBatch, TimestampSecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde_json::Value;

use crate::error::{Result, WaError};

const EXPECTED: &str = "a pricing_analytics response: {\"pricing_analytics\": {\"data\": \
     [{\"data_points\": [{\"start\", \"end\", \"country\", \"pricing_type\", \
     \"pricing_category\", \"volume\", \"cost\"}]}]}}";

/// Registers the response at `path` as table `name`.
pub fn register(ctx: &SessionContext, name: &str, path: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| WaError::io(path, e))?;
    let batch = parse(&text)
        .map_err(|what| WaError::Input(format!("{path}: {what}; expected {EXPECTED}")))?;
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(())
}

fn seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn parse(text: &str) -> std::result::Result<RecordBatch, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let response = root.get("pricing_analytics").unwrap_or(&root);
    let Some(data) = response.get("data").and_then(Value::as_array) else {
        return Err("no `data` list".into());
    };
    let mut day = Date32Builder::new();
    let (mut start, mut end) = (TimestampSecondBuilder::new(), TimestampSecondBuilder::new());
    let (mut country, mut kind, mut category) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut volume, mut cost) = (Int64Builder::new(), Float64Builder::new());
    for (d, entry) in data.iter().enumerate() {
        let Some(points) = entry.get("data_points").and_then(Value::as_array) else {
            return Err(format!("data[{d}] has no `data_points` list"));
        };
        for (p, point) in points.iter().enumerate() {
            let at = |field: &str| format!("data[{d}].data_points[{p}].{field}");
            let s = point
                .get("start")
                .and_then(seconds)
                .ok_or_else(|| format!("{} is not Unix seconds", at("start")))?;
            let e = point
                .get("end")
                .and_then(seconds)
                .ok_or_else(|| format!("{} is not Unix seconds", at("end")))?;
            let text = |field: &str| point.get(field).and_then(Value::as_str);
            day.append_value(s.div_euclid(86_400) as i32);
            start.append_value(s);
            end.append_value(e);
            country.append_option(text("country"));
            kind.append_option(text("pricing_type").map(str::to_ascii_lowercase));
            category.append_option(text("pricing_category").map(str::to_ascii_lowercase));
            volume.append_value(
                point
                    .get("volume")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| format!("{} is not a whole number", at("volume")))?,
            );
            cost.append_option(point.get("cost").and_then(Value::as_f64));
        }
    }
    let utc =
        |b: &mut TimestampSecondBuilder| Arc::new(b.finish().with_timezone("UTC")) as ArrayRef;
    let ts = DataType::Timestamp(TimeUnit::Second, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("day", DataType::Date32, false),
        Field::new("start", ts.clone(), false),
        Field::new("end", ts, false),
        Field::new("country", DataType::Utf8, true),
        Field::new("pricing_type", DataType::Utf8, true),
        Field::new("pricing_category", DataType::Utf8, true),
        Field::new("volume", DataType::Int64, false),
        Field::new("cost", DataType::Float64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(day.finish()),
        utc(&mut start),
        utc(&mut end),
        Arc::new(country.finish()),
        Arc::new(kind.finish()),
        Arc::new(category.finish()),
        Arc::new(volume.finish()),
        Arc::new(cost.finish()),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_a_row_per_data_point() {
        let text = r#"{"pricing_analytics":{"data":[{"data_points":[
            {"start":1793664000,"end":1793750400,"country":"ID","pricing_type":"REGULAR",
             "pricing_category":"MARKETING","volume":12,"cost":0.66},
            {"start":"1793664000","end":"1793750400","country":"ID",
             "pricing_type":"FREE_CUSTOMER_SERVICE","pricing_category":"SERVICE","volume":3,"cost":0}
        ]}]},"id":"123"}"#;
        let batch = parse(text).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let kind = batch
            .column(4)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!(kind.value(1), "free_customer_service");
    }

    #[test]
    fn anything_else_says_what_was_expected() {
        assert!(parse("[1, 2]").unwrap_err().contains("no `data` list"));
        assert!(parse(r#"{"data":[{"x":1}]}"#)
            .unwrap_err()
            .contains("data_points"));
        let no_volume = r#"{"data":[{"data_points":[{"start":1,"end":2}]}]}"#;
        assert!(parse(no_volume).unwrap_err().contains("volume"));
    }
}
