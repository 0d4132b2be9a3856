//! A log's traffic as the Cloud API's webhooks would have brought it
//! (`generate --webhooks DIR`), so that `ingest` and the reconcile queries
//! can be tried on the sample: one gzip NDJSON file a day
//! (`webhooks-YYYY-MM-DD.ndjson.gz`, by each event's own time, so a late
//! delivery lands in the next day's file) and the sends file (`sends.csv`)
//! the business's sending code would have kept.
//!
//! The platform's labels are the ones our rules give (`message_pricing`):
//! a reconcile of the result against itself differs nowhere, and a test
//! that changes labels knows exactly which messages must differ.
//!
//! Each outbound message gets a `sent` status at its send, a `delivered`
//! (and a `read`) at its delivery, or a `failed` at its send; inbound
//! messages a `messages` event. Webhook times are whole seconds, and so
//! are the sends file's (a delivery in the second of its send stays after
//! it).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use datafusion::prelude::SessionContext;
use flate2::write::GzEncoder;
use futures::StreamExt;
use serde_json::json;

use crate::error::{Result, WaError};

/// Every message with our labels (a free entry point conversation is the
/// platform's `referral_conversion`). Under `cbp` the platform's conversation
/// of a message is the last conversation of its pair and category opened
/// at or before it: a billable message opens one and names it.
const TRAFFIC: &str = "
WITH priced AS (
  SELECT message_id, rule_set, billable,
         CASE pricing_category WHEN 'free_entry' THEN 'referral_conversion'
              ELSE pricing_category END AS pricing_category,
         CASE WHEN rule_set = 'cbp' THEN
           last_value(CASE WHEN billable THEN 'conv.' || message_id END) IGNORE NULLS
             OVER (PARTITION BY account_id, customer_id, pricing_category
                   ORDER BY event_at, message_id
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
         END AS conversation_id
  FROM message_pricing)
SELECT m.message_id, m.account_id, substr(m.customer_id, 2) AS customer,
       m.direction, m.message_type, m.category, m.status,
       CAST(to_timestamp_micros(m.sent_at) AS BIGINT) AS sent_at,
       CAST(to_timestamp_micros(m.delivered_at) AS BIGINT) AS delivered_at,
       m.entry_point, PHONE AS phone_number_id, TEMPLATE AS template_name,
       p.rule_set, p.pricing_category, p.billable, p.conversation_id
FROM messages m LEFT JOIN priced p ON p.message_id = m.message_id";

/// What [`write_webhooks`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    pub messages: u64,
    pub events: u64,
    pub files: Vec<PathBuf>,
}

/// Writes the traffic of the log registered in `ctx` into `dir`.
pub async fn write_webhooks(ctx: &SessionContext, dir: &Path) -> Result<Emitted> {
    fs::create_dir_all(dir).map_err(|e| WaError::io(dir.display().to_string(), e))?;
    let columns = ctx.table("messages").await?.schema().clone();
    let has = |c: &str| columns.field_with_unqualified_name(c).is_ok();
    let sql = TRAFFIC
        .replace(
            "PHONE",
            if has("phone_number_id") {
                "m.phone_number_id"
            } else {
                "CAST(NULL AS VARCHAR)"
            },
        )
        .replace(
            "TEMPLATE",
            if has("template_name") {
                "m.template_name"
            } else {
                "CAST(NULL AS VARCHAR)"
            },
        );
    let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
    let mut out = Writers::new(dir)?;
    while let Some(batch) = stream.next().await {
        out.write_batch(&batch?)?;
    }
    out.finish()
}

/// The open day files and the sends file, written aside until finished.
struct Writers {
    dir: PathBuf,
    days: BTreeMap<String, (tempfile::NamedTempFile, GzEncoder<BufWriter<File>>)>,
    sends: (tempfile::NamedTempFile, BufWriter<File>),
    messages: u64,
    events: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WaError + '_ {
    move |e| WaError::io(path.display().to_string(), e)
}

impl Writers {
    fn new(dir: &Path) -> Result<Writers> {
        let tmp = tempfile::Builder::new()
            .prefix(".sends.csv.")
            .tempfile_in(dir)
            .map_err(io(dir))?;
        let mut w = BufWriter::new(tmp.as_file().try_clone().map_err(io(dir))?);
        writeln!(w, "message_id,message_type,category,template_name,sent_at").map_err(io(dir))?;
        Ok(Writers {
            dir: dir.to_path_buf(),
            days: BTreeMap::new(),
            sends: (tmp, w),
            messages: 0,
            events: 0,
        })
    }

    fn line(&mut self, at_micros: i64, body: serde_json::Value) -> Result<()> {
        let day = chrono::DateTime::from_timestamp_micros(at_micros)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "1970-01-01".into());
        if !self.days.contains_key(&day) {
            let tmp = tempfile::Builder::new()
                .prefix(".webhooks.")
                .tempfile_in(&self.dir)
                .map_err(io(&self.dir))?;
            let file = BufWriter::new(tmp.as_file().try_clone().map_err(io(&self.dir))?);
            let gz = GzEncoder::new(file, flate2::Compression::fast());
            self.days.insert(day.clone(), (tmp, gz));
        }
        let (_, gz) = self.days.get_mut(&day).expect("opened");
        serde_json::to_writer(&mut *gz, &body).map_err(|e| WaError::Input(e.to_string()))?;
        gz.write_all(b"\n").map_err(io(&self.dir))?;
        self.events += 1;
        Ok(())
    }

    fn write_batch(&mut self, b: &RecordBatch) -> Result<()> {
        // The views' strings may be views or large strings: read them as Utf8.
        let schema = b.schema();
        let columns: std::collections::HashMap<&str, arrow::array::ArrayRef> = schema
            .fields()
            .iter()
            .zip(b.columns())
            .filter(|(f, _)| !matches!(f.data_type(), DataType::Int64 | DataType::Boolean))
            .map(|(f, c)| Ok((f.name().as_str(), cast(c, &DataType::Utf8)?)))
            .collect::<std::result::Result<_, arrow::error::ArrowError>>()?;
        let text = |name: &str| columns[name].as_string::<i32>();
        let int = |name: &str| {
            b.column_by_name(name)
                .expect("selected")
                .as_primitive::<Int64Type>()
        };
        let opt = |a: &arrow::array::StringArray, i: usize| {
            (!a.is_null(i)).then(|| a.value(i).to_string())
        };
        let (id, account, customer) = (text("message_id"), text("account_id"), text("customer"));
        let (direction, kind, category, status) = (
            text("direction"),
            text("message_type"),
            text("category"),
            text("status"),
        );
        let (sent, delivered) = (int("sent_at"), int("delivered_at"));
        let (entry, phone, template) = (
            text("entry_point"),
            text("phone_number_id"),
            text("template_name"),
        );
        let (rule_set, pricing_category, conversation) = (
            text("rule_set"),
            text("pricing_category"),
            text("conversation_id"),
        );
        let billable = b.column_by_name("billable").expect("selected").as_boolean();
        for i in 0..b.num_rows() {
            self.messages += 1;
            let metadata = json!({
                "display_phone_number": "15550000000",
                "phone_number_id": opt(phone, i).unwrap_or_else(|| format!("pn-{}", account.value(i))),
            });
            let body = |value: serde_json::Value| {
                json!({"object": "whatsapp_business_account", "entry": [{
                    "id": account.value(i),
                    "changes": [{"field": "messages", "value": value}],
                }]})
            };
            let secs = |micros: i64| (micros.div_euclid(1_000_000)).to_string();
            if direction.value(i) == "inbound" {
                let mut message = json!({
                    "from": customer.value(i),
                    "id": id.value(i),
                    "timestamp": secs(sent.value(i)),
                    "type": "text",
                    "text": {"body": "…"},
                });
                let source = match opt(entry, i).as_deref() {
                    Some("ctwa_ad") => Some("ad"),
                    Some("page_cta") => Some("post"),
                    _ => None,
                };
                if let Some(source) = source {
                    message["referral"] = json!({"source_type": source, "source_id": "1"});
                }
                self.line(
                    sent.value(i),
                    body(json!({
                        "messaging_product": "whatsapp",
                        "metadata": metadata,
                        "contacts": [{"wa_id": customer.value(i)}],
                        "messages": [message],
                    })),
                )?;
                continue;
            }
            let is_template = kind.value(i) == "template";
            writeln!(
                self.sends.1,
                "{},{},{},{},{}",
                id.value(i),
                kind.value(i),
                opt(category, i).unwrap_or_default(),
                opt(template, i).unwrap_or_default(),
                chrono::DateTime::from_timestamp(sent.value(i).div_euclid(1_000_000), 0)
                    .expect("a time")
                    .format("%Y-%m-%dT%H:%M:%SZ"),
            )
            .map_err(io(&self.dir))?;
            // Our labels for a delivered message; an undelivered one is
            // labelled as it was sent, and not billable.
            let (label, is_billable, model) = match opt(rule_set, i) {
                Some(set) => (
                    opt(pricing_category, i).unwrap_or_else(|| "service".into()),
                    billable.value(i),
                    if set == "cbp" { "CBP" } else { "PMP" },
                ),
                None => (
                    if is_template {
                        opt(category, i).unwrap_or_else(|| "utility".into())
                    } else {
                        "service".into()
                    },
                    false,
                    "PMP",
                ),
            };
            let pricing = json!({
                "billable": is_billable,
                "pricing_model": model,
                "type": if is_billable { "regular" } else { "free_customer_service" },
                "category": label,
            });
            let conv = opt(conversation, i);
            let status_event = |name: &str, at: i64| {
                let mut s = json!({
                    "id": id.value(i),
                    "status": name,
                    "timestamp": secs(at),
                    "recipient_id": customer.value(i),
                    "pricing": pricing,
                });
                if let Some(c) = &conv {
                    s["conversation"] = json!({"id": c, "origin": {"type": label}});
                }
                if name == "failed" {
                    s["errors"] = json!([{"code": 131026, "title": "Message undeliverable"}]);
                }
                body(json!({
                    "messaging_product": "whatsapp",
                    "metadata": metadata,
                    "statuses": [s],
                }))
            };
            let sent_at = sent.value(i);
            self.line(sent_at, status_event("sent", sent_at))?;
            if !delivered.is_null(i) {
                let at = delivered.value(i);
                self.line(at, status_event("delivered", at))?;
                if status.value(i) == "read" {
                    self.line(at, status_event("read", at))?;
                }
            } else if status.value(i) == "failed" {
                self.line(sent_at, status_event("failed", sent_at))?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Emitted> {
        let mut files = vec![];
        for (day, (tmp, gz)) in self.days {
            let mut file = gz.finish().map_err(io(&self.dir))?;
            file.flush().map_err(io(&self.dir))?;
            let path = self.dir.join(format!("webhooks-{day}.ndjson.gz"));
            tmp.persist(&path)
                .map_err(|e| WaError::io(path.display().to_string(), e.error))?;
            files.push(path);
        }
        let (tmp, mut w) = self.sends;
        w.flush().map_err(io(&self.dir))?;
        let path = self.dir.join("sends.csv");
        tmp.persist(&path)
            .map_err(|e| WaError::io(path.display().to_string(), e.error))?;
        files.push(path);
        Ok(Emitted {
            messages: self.messages,
            events: self.events,
            files,
        })
    }
}
