//! The types results travel in. DataFusion's plans use string views and
//! dictionaries; clients differ in what they read (the Flight SQL JDBC
//! driver's Arrow Java predates views), and ADBC checks that every
//! endpoint's batches have exactly the schema its FlightInfo announced.
//! So one wire schema is derived from the plan's and used for both: views
//! as plain strings and binaries, dictionaries as their values, every
//! field nullable, no metadata.

use std::sync::Arc;

use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// The wire schema of a plan's schema.
pub fn wire_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema.fields().iter().map(wire_field).collect::<Vec<_>>(),
    ))
}

fn wire_field(f: &FieldRef) -> Field {
    Field::new(f.name(), wire_type(f.data_type()), true)
}

fn wire_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, values) => wire_type(values),
        DataType::List(f) => DataType::List(Arc::new(wire_field(f))),
        DataType::LargeList(f) => DataType::LargeList(Arc::new(wire_field(f))),
        DataType::ListView(f) => DataType::List(Arc::new(wire_field(f))),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| Arc::new(wire_field(f))).collect())
        }
        other => other.clone(),
    }
}

/// A batch in the wire schema (its columns in the same order).
pub fn to_wire(batch: &RecordBatch, wire: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(wire.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(Arc::clone(c))
            } else {
                cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(wire), columns)
}

#[cfg(test)]
mod tests {
    use arrow::array::{DictionaryArray, Int32Array, StringViewArray};
    use arrow::datatypes::Int32Type;

    use super::*;

    #[test]
    fn views_and_dictionaries_travel_as_plain_values() {
        let dict: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
        let batch = RecordBatch::try_from_iter([
            (
                "v",
                Arc::new(StringViewArray::from(vec!["x", "y", "z"])) as _,
            ),
            ("d", Arc::new(dict) as _),
            ("n", Arc::new(Int32Array::from(vec![1, 2, 3])) as _),
        ])
        .unwrap();
        let wire = wire_schema(&batch.schema());
        let types: Vec<DataType> = wire
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(types, [DataType::Utf8, DataType::Utf8, DataType::Int32]);
        assert!(wire.fields().iter().all(|f| f.is_nullable()));
        let sent = to_wire(&batch, &wire).unwrap();
        assert_eq!(sent.schema(), wire);
        assert_eq!(
            arrow::util::pretty::pretty_format_batches(&[sent])
                .unwrap()
                .to_string(),
            arrow::util::pretty::pretty_format_batches(&[batch])
                .unwrap()
                .to_string()
        );
    }
}
