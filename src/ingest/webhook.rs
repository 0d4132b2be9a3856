//! One line of a webhook file, a Cloud API POST body, into the events the
//! fold reads ([`super::fold`]), or the reason it is rejected.
//!
//! Strings are borrowed from the line where they hold no escapes, and a
//! change's `value` is parsed only when its field is `messages`: the other
//! fields (`account_update`, template status updates, …) have shapes of
//! their own and are only counted.

use std::borrow::Cow;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::fold::{
    ConversationRef, EntryPoint, Event, EventRef, EventRefKind, Parties, PricingRef, Status,
};

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow)]
    entry: Option<Vec<Entry<'a>>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    changes: Option<Vec<Change<'a>>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(borrow)]
    field: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

/// The body with every change's value parsed in the same pass, as its
/// `messages` shape: the common case. A body where some other field's
/// value does not fit that shape is parsed again with [`Body`].
#[derive(Deserialize)]
struct DirectBody<'a> {
    #[serde(borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow)]
    entry: Option<Vec<DirectEntry<'a>>>,
}

#[derive(Deserialize)]
struct DirectEntry<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    changes: Option<Vec<DirectChange<'a>>>,
}

#[derive(Deserialize)]
struct DirectChange<'a> {
    #[serde(borrow)]
    field: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Option<Value<'a>>,
}

/// A change's value: parsed with the body, or raw, to be parsed alone.
#[derive(Clone, Copy)]
enum ChangeValue<'v, 'a> {
    Parsed(&'v Value<'a>),
    Raw(&'v RawValue),
}

#[derive(Deserialize)]
struct Value<'a> {
    #[serde(borrow)]
    metadata: Option<Metadata<'a>>,
    #[serde(borrow)]
    messages: Option<Vec<Inbound<'a>>>,
    #[serde(borrow)]
    statuses: Option<Vec<StatusEvent<'a>>>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    phone_number_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Inbound<'a> {
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "seconds")]
    timestamp: Option<Seconds>,
    #[serde(borrow)]
    referral: Option<Referral<'a>>,
}

#[derive(Deserialize)]
struct Referral<'a> {
    #[serde(borrow)]
    source_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StatusEvent<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "seconds")]
    timestamp: Option<Seconds>,
    #[serde(borrow)]
    recipient_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    conversation: Option<ConversationObject<'a>>,
    #[serde(borrow)]
    pricing: Option<PricingObject<'a>>,
}

#[derive(Deserialize)]
struct ConversationObject<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    origin: Option<Origin<'a>>,
}

#[derive(Deserialize)]
struct Origin<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PricingObject<'a> {
    billable: Option<bool>,
    #[serde(borrow)]
    pricing_model: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
}

/// A timestamp as the platform writes it: a string of Unix seconds (or a
/// number); `Err` holds what it was instead.
type Seconds = std::result::Result<i64, String>;

fn seconds<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Seconds>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Seconds>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("Unix seconds, as a string or a number")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Self::Value, E> {
            Ok(Some(s.parse::<i64>().map_err(|_| s.to_string())))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Self::Value, E> {
            Ok(Some(Ok(n)))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Self::Value, E> {
            Ok(Some(i64::try_from(n).map_err(|_| n.to_string())))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> std::result::Result<Self::Value, E> {
            Ok(Some(Err(n.to_string())))
        }
        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> std::result::Result<Self::Value, E> {
            Ok(Some(Err(b.to_string())))
        }
    }
    d.deserialize_any(V)
}

/// Times the log can hold: 1970 up to 2200, in Unix seconds.
const LATEST_SECONDS: i64 = 7_258_118_400;

/// One event of a line: the message id, who it is between, what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    pub message_id: String,
    pub parties: Parties,
    pub event: Event,
}

/// Why a line, or one event of it, is not folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// `not_json`, `not_webhook`, `missing_field`, `bad_timestamp` or
    /// `unknown_status`.
    pub reason: &'static str,
    pub detail: String,
}

impl Rejected {
    fn new(reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected {
            reason,
            detail: detail.into(),
        }
    }
}

/// What one line holds.
#[derive(Debug, Default)]
pub struct Line {
    pub events: Vec<MessageEvent>,
    /// Changes of other fields than `messages`, skipped.
    pub other_changes: usize,
    /// Events of the line that cannot be folded; the others are.
    pub rejected: Vec<Rejected>,
}

/// Parses one line (not blank) into owned events. `Err` rejects the
/// whole line.
pub fn parse_line(line: &[u8]) -> std::result::Result<Line, Rejected> {
    let mut events = vec![];
    let mut out = parse_line_with(line, &mut |e| {
        events.push(MessageEvent {
            message_id: e.message_id.to_string(),
            parties: e.parties(),
            event: e.event(),
        })
    })?;
    out.events = events;
    Ok(out)
}

/// Parses one line (not blank), handing each event to `each` with its
/// strings borrowed from the line; the returned [`Line`] has no events.
/// `Err` rejects the whole line.
pub fn parse_line_with(
    line: &[u8],
    each: &mut dyn FnMut(EventRef<'_>),
) -> std::result::Result<Line, Rejected> {
    if let Ok(body) = serde_json::from_slice::<DirectBody>(line) {
        let entries = webhook_entries(body.object.as_deref(), body.entry.as_deref())?;
        let mut out = Line::default();
        for (e, entry) in entries.iter().enumerate() {
            for (c, change) in entry.changes.iter().flatten().enumerate() {
                let value = change.value.as_ref().map(ChangeValue::Parsed);
                let (account, field) = (entry.id.as_deref(), change.field.as_deref());
                change_events(&mut out, each, (e, c), account, field, value);
            }
        }
        return Ok(out);
    }
    let body: Body = serde_json::from_slice(line).map_err(|e| {
        let what = if std::str::from_utf8(line).is_err() {
            "not UTF-8".to_string()
        } else {
            e.to_string()
        };
        Rejected::new("not_json", what)
    })?;
    let entries = webhook_entries(body.object.as_deref(), body.entry.as_deref())?;
    let mut out = Line::default();
    for (e, entry) in entries.iter().enumerate() {
        for (c, change) in entry.changes.iter().flatten().enumerate() {
            let value = change.value.map(ChangeValue::Raw);
            let (account, field) = (entry.id.as_deref(), change.field.as_deref());
            change_events(&mut out, each, (e, c), account, field, value);
        }
    }
    Ok(out)
}

/// The entries of a body that is a webhook's.
fn webhook_entries<'e, T>(
    object: Option<&str>,
    entries: Option<&'e [T]>,
) -> std::result::Result<&'e [T], Rejected> {
    if object != Some("whatsapp_business_account") {
        return Err(Rejected::new(
            "not_webhook",
            "`object` is not \"whatsapp_business_account\"",
        ));
    }
    entries.ok_or_else(|| Rejected::new("not_webhook", "no `entry` list"))
}

/// The events of change `c` of entry `e`, handed to `each`; its rejects
/// go to `out`.
fn change_events(
    out: &mut Line,
    each: &mut dyn FnMut(EventRef<'_>),
    (e, c): (usize, usize),
    account: Option<&str>,
    field: Option<&str>,
    value: Option<ChangeValue>,
) {
    if field != Some("messages") {
        out.other_changes += 1;
        return;
    }
    let at = || format!("entry[{e}].changes[{c}]");
    let Some(account) = account.filter(|s| !s.is_empty()) else {
        out.rejected
            .push(Rejected::new("missing_field", format!("entry[{e}].id")));
        return;
    };
    let parsed;
    let value = match value {
        None => {
            out.rejected
                .push(Rejected::new("missing_field", format!("{}.value", at())));
            return;
        }
        Some(ChangeValue::Parsed(v)) => v,
        Some(ChangeValue::Raw(raw)) => match serde_json::from_str::<Value>(raw.get()) {
            Ok(v) => {
                parsed = v;
                &parsed
            }
            Err(err) => {
                out.rejected.push(Rejected::new(
                    "not_webhook",
                    format!("{}.value: {err}", at()),
                ));
                return;
            }
        },
    };
    let phone = value
        .metadata
        .as_ref()
        .and_then(|m| m.phone_number_id.as_deref());
    for (i, m) in value.messages.iter().flatten().enumerate() {
        let at = || format!("{}.value.messages[{i}]", at());
        match inbound(m, &at) {
            Ok((id, from, time, entry_point)) => each(EventRef {
                message_id: id,
                account_id: account,
                phone_number_id: phone,
                customer: from.trim_start_matches('+'),
                kind: EventRefKind::Inbound {
                    at: time,
                    entry_point,
                },
            }),
            Err(r) => out.rejected.push(r),
        }
    }
    for (i, s) in value.statuses.iter().flatten().enumerate() {
        let at = || format!("{}.value.statuses[{i}]", at());
        match status(s, &at) {
            Ok((id, recipient, kind)) => each(EventRef {
                message_id: id,
                account_id: account,
                phone_number_id: phone,
                customer: recipient.trim_start_matches('+'),
                kind,
            }),
            Err(r) => out.rejected.push(r),
        }
    }
}

/// Where in the line a value is, written only for a reject.
type At<'f> = &'f dyn Fn() -> String;

fn required<'s>(v: &'s Option<Cow<'_, str>>, at: At, name: &str) -> Result<&'s str, Rejected> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejected::new("missing_field", format!("{}.{name}", at())))
}

fn time(t: &Option<Seconds>, at: At) -> Result<i64, Rejected> {
    match t {
        None => Err(Rejected::new(
            "missing_field",
            format!("{}.timestamp", at()),
        )),
        Some(Ok(s)) if (0..=LATEST_SECONDS).contains(s) => Ok(s * 1_000_000),
        Some(Ok(s)) => Err(Rejected::new(
            "bad_timestamp",
            format!(
                "{}.timestamp: {s} is not a time from 1970 to 2200 in Unix seconds",
                at()
            ),
        )),
        Some(Err(s)) => Err(Rejected::new(
            "bad_timestamp",
            format!("{}.timestamp: {s:?} is not Unix seconds", at()),
        )),
    }
}

type InboundParts<'m> = (&'m str, &'m str, i64, Option<EntryPoint>);

fn inbound<'m>(m: &'m Inbound<'_>, at: At) -> Result<InboundParts<'m>, Rejected> {
    let id = required(&m.id, at, "id")?;
    let from = required(&m.from, at, "from")?;
    let time = time(&m.timestamp, at)?;
    let entry_point = m
        .referral
        .as_ref()
        .and_then(|r| r.source_type.as_deref())
        .and_then(EntryPoint::from_referral);
    Ok((id, from, time, entry_point))
}

type StatusParts<'m> = (&'m str, &'m str, EventRefKind<'m>);

fn status<'m>(s: &'m StatusEvent<'_>, at: At) -> Result<StatusParts<'m>, Rejected> {
    let id = required(&s.id, at, "id")?;
    let recipient = required(&s.recipient_id, at, "recipient_id")?;
    let name = required(&s.status, at, "status")?;
    let time = time(&s.timestamp, at)?;
    let Some(status) = Status::parse(name) else {
        return Err(Rejected::new(
            "unknown_status",
            format!(
                "{}.status: {name:?} is not sent, delivered, read or failed",
                at()
            ),
        ));
    };
    let pricing = s.pricing.as_ref().map(|p| PricingRef {
        category: p.category.as_deref(),
        billable: p.billable,
        pricing_type: p.kind.as_deref(),
        pricing_model: p.pricing_model.as_deref(),
    });
    let conversation = s.conversation.as_ref().map(|c| ConversationRef {
        id: c.id.as_deref(),
        origin: c.origin.as_ref().and_then(|o| o.kind.as_deref()),
    });
    Ok((
        id,
        recipient,
        EventRefKind::Status {
            status,
            at: time,
            pricing,
            conversation,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"waba-1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"pn-1"},"messages":[{"from":"6281234567890","id":"wamid.IN1","timestamp":"1730419200","type":"text","referral":{"source_type":"ad","source_id":"x","ctwa_clid":"y"}}],"statuses":[{"id":"wamid.OUT1","status":"delivered","timestamp":1730419230,"recipient_id":"6281234567890","conversation":{"id":"c1","origin":{"type":"marketing"},"expiration_timestamp":"1730505630"},"pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}]}},{"field":"account_update","value":{"event":"x"}}]}]}"#;

    #[test]
    fn a_body_gives_its_events_and_counts_other_fields() {
        let line = parse_line(BODY.as_bytes()).unwrap();
        assert_eq!(line.other_changes, 1);
        assert!(line.rejected.is_empty(), "{:?}", line.rejected);
        assert_eq!(line.events.len(), 2);
        let inbound = &line.events[0];
        assert_eq!(inbound.message_id, "wamid.IN1");
        assert_eq!(inbound.parties.phone_number_id.as_deref(), Some("pn-1"));
        assert_eq!(
            inbound.event,
            Event::Inbound {
                at: 1_730_419_200_000_000,
                entry_point: Some(EntryPoint::CtwaAd)
            }
        );
        let Event::Status {
            status, pricing, ..
        } = &line.events[1].event
        else {
            panic!("a status")
        };
        assert_eq!(*status, Status::Delivered);
        assert_eq!(
            pricing.as_ref().unwrap().category.as_deref(),
            Some("marketing")
        );
    }

    #[test]
    fn bad_lines_and_events_say_why() {
        assert_eq!(parse_line(b"{not json").unwrap_err().reason, "not_json");
        assert_eq!(parse_line(b"\xff\xfe").unwrap_err().detail, "not UTF-8");
        assert_eq!(
            parse_line(br#"{"object":"page","entry":[]}"#)
                .unwrap_err()
                .reason,
            "not_webhook"
        );
        let no_time = BODY.replace(r#","timestamp":1730419230"#, "");
        let line = parse_line(no_time.as_bytes()).unwrap();
        assert_eq!(line.events.len(), 1, "the inbound message stays");
        assert_eq!(line.rejected[0].reason, "missing_field");
        assert!(line.rejected[0].detail.ends_with("statuses[0].timestamp"));
        let bad_time = BODY.replace(r#""timestamp":"1730419200""#, r#""timestamp":"soon""#);
        let line = parse_line(bad_time.as_bytes()).unwrap();
        assert_eq!(line.rejected[0].reason, "bad_timestamp");
        let odd = BODY.replace(r#""status":"delivered""#, r#""status":"deleted""#);
        assert_eq!(
            parse_line(odd.as_bytes()).unwrap().rejected[0].reason,
            "unknown_status"
        );
    }

    #[test]
    fn another_fields_value_of_another_shape_leaves_the_messages() {
        let odd = BODY.replace(
            r#"{"field":"account_update","value":{"event":"x"}}"#,
            r#"{"field":"account_update","value":{"messages":"not a list"}}"#,
        );
        assert_ne!(odd, BODY);
        let line = parse_line(odd.as_bytes()).unwrap();
        assert_eq!(line.other_changes, 1);
        assert_eq!(line.events.len(), 2);
        assert!(line.rejected.is_empty());
        let broken = BODY
            .replace(r#""statuses":[{"#, r#""statuses":{"x":[{"#)
            .replace("}]}},{", "}]}}},{");
        let line = parse_line(broken.as_bytes()).unwrap();
        assert_eq!(line.rejected[0].reason, "not_webhook", "{broken}");
    }

    #[test]
    fn escaped_strings_are_read() {
        let escaped = BODY.replace("wamid.OUT1", r"wamid.OUT\u0031");
        let line = parse_line(escaped.as_bytes()).unwrap();
        assert_eq!(line.events[1].message_id, "wamid.OUT1");
    }
}
