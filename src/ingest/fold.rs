//! How one message's webhook events fold into its row of the log
//! (`docs/webhook-ingest.md`), with no Arrow or JSON types: the events are
//! parsed elsewhere ([`super::webhook`]) and the rows written elsewhere
//! ([`super::partitions`]).
//!
//! A message's [`Folded`] state is a merge of its events in which every
//! field is a minimum, a maximum or the one value both sides agree on, so
//! folding is commutative and idempotent: the same set of events in any
//! order, split over any files and runs, duplicated any number of times,
//! gives the same state and so the same row. `ingest` keeps the states
//! beside the log it writes, and a later run merges new events into them.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::text::Text;

/// An outbound message's status, in the order a message goes through them:
/// the furthest one seen is the row's status, and a delivery seen anywhere
/// beats `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    Sent,
    Failed,
    Delivered,
    Read,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "sent" => Status::Sent,
            "failed" => Status::Failed,
            "delivered" => Status::Delivered,
            "read" => Status::Read,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Delivered => "delivered",
            Status::Read => "read",
        }
    }

    /// Whether the customer's phone received the message.
    fn delivers(self) -> bool {
        matches!(self, Status::Delivered | Status::Read)
    }
}

/// The platform's `pricing` object of a status event.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pricing {
    pub category: Option<Text>,
    pub billable: Option<bool>,
    pub pricing_type: Option<Text>,
    pub pricing_model: Option<Text>,
}

/// The platform's `conversation` object of a status event.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Option<Text>,
    pub origin: Option<Text>,
}

/// A label and the event that carried it. The last event by timestamp
/// gives the label; between events of one timestamp, the further status,
/// then the greater label, so that the choice does not depend on the
/// order the events arrive in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Labelled<T> {
    pub at: i64,
    pub status: Status,
    pub label: T,
}

/// What the business's own sending code says of a message (the sends
/// file): the authority for its type, which statuses do not tell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Send {
    pub template: Option<TemplateCategory>,
    pub template_name: Option<Text>,
    pub sent_at: Option<i64>,
}

/// A template's category, as the log spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
}

impl TemplateCategory {
    /// The log's category of a platform label; `authentication_international`
    /// is an authentication template priced at another rate.
    pub fn from_label(s: &str) -> Option<TemplateCategory> {
        Some(match s {
            "marketing" => TemplateCategory::Marketing,
            "utility" => TemplateCategory::Utility,
            "authentication" | "authentication_international" => TemplateCategory::Authentication,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateCategory::Marketing => "marketing",
            TemplateCategory::Utility => "utility",
            TemplateCategory::Authentication => "authentication",
        }
    }
}

/// A free entry point an inbound message came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntryPoint {
    CtwaAd,
    PageCta,
}

impl EntryPoint {
    /// From `referral.source_type`: `ad` and `post`; anything else is no
    /// free entry point.
    pub fn from_referral(source_type: &str) -> Option<EntryPoint> {
        match source_type {
            "ad" => Some(EntryPoint::CtwaAd),
            "post" => Some(EntryPoint::PageCta),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryPoint::CtwaAd => "ctwa_ad",
            EntryPoint::PageCta => "page_cta",
        }
    }
}

/// One event of a message, as the fold reads it. Times are microseconds
/// since the epoch, UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Inbound {
        at: i64,
        entry_point: Option<EntryPoint>,
    },
    Status {
        status: Status,
        at: i64,
        pricing: Option<Pricing>,
        conversation: Option<Conversation>,
    },
}

/// An event as the parser hands it over, its strings borrowed from the
/// line: [`Folded::add`] copies only what the fold keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    pub message_id: &'a str,
    pub account_id: &'a str,
    pub phone_number_id: Option<&'a str>,
    /// The customer's digits, without `+`.
    pub customer: &'a str,
    pub kind: EventRefKind<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRefKind<'a> {
    Inbound {
        at: i64,
        entry_point: Option<EntryPoint>,
    },
    Status {
        status: Status,
        at: i64,
        pricing: Option<PricingRef<'a>>,
        conversation: Option<ConversationRef<'a>>,
    },
}

impl EventRefKind<'_> {
    /// The event's time.
    pub fn at(&self) -> i64 {
        match *self {
            EventRefKind::Inbound { at, .. } | EventRefKind::Status { at, .. } => at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricingRef<'a> {
    pub category: Option<&'a str>,
    pub billable: Option<bool>,
    pub pricing_type: Option<&'a str>,
    pub pricing_model: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationRef<'a> {
    pub id: Option<&'a str>,
    pub origin: Option<&'a str>,
}

impl PricingRef<'_> {
    pub fn to_owned(self) -> Pricing {
        Pricing {
            category: self.category.map(Text::from),
            billable: self.billable,
            pricing_type: self.pricing_type.map(Text::from),
            pricing_model: self.pricing_model.map(Text::from),
        }
    }
}

impl ConversationRef<'_> {
    pub fn to_owned(self) -> Conversation {
        Conversation {
            id: self.id.map(Text::from),
            origin: self.origin.map(Text::from),
        }
    }
}

impl EventRef<'_> {
    pub fn parties(&self) -> Parties {
        Parties {
            account_id: Text::from(self.account_id),
            phone_number_id: self.phone_number_id.map(Text::from),
            customer: Text::from(self.customer),
        }
    }

    pub fn event(&self) -> Event {
        match self.kind {
            EventRefKind::Inbound { at, entry_point } => Event::Inbound { at, entry_point },
            EventRefKind::Status {
                status,
                at,
                pricing,
                conversation,
            } => Event::Status {
                status,
                at,
                pricing: pricing.map(PricingRef::to_owned),
                conversation: conversation.map(ConversationRef::to_owned),
            },
        }
    }
}

/// Keeps the later of a kept label and an event's, copying the event's
/// only when it wins: by time, then status, then the label itself.
fn later_label<T: Ord, R: Copy>(
    kept: &mut Option<T>,
    at: i64,
    status: Status,
    label: R,
    key: impl Fn(&T) -> (i64, Status),
    owned: impl Fn(i64, Status, R) -> T,
) {
    match kept {
        Some(k) if key(k) > (at, status) => {}
        Some(k) if key(k) == (at, status) => {
            let candidate = owned(at, status, label);
            if candidate > *k {
                *k = candidate;
            }
        }
        _ => *kept = Some(owned(at, status, label)),
    }
}

/// Who a message is between, as an event names them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Parties {
    pub account_id: Text,
    pub phone_number_id: Option<Text>,
    /// The customer's number as the platform writes it (digits, no `+`).
    pub customer: Text,
}

/// The fold of every event of one message seen so far.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Folded {
    /// The least of the parties the events name; [`Folded::conflict`] says
    /// when they disagree.
    pub parties: Parties,
    /// Another account or customer that an event named, the greatest.
    pub other_parties: Option<Box<Parties>>,
    pub received_at: Option<i64>,
    /// The earliest inbound event that came through an entry point.
    pub entry_point: Option<(i64, EntryPoint)>,
    pub sent_status_at: Option<i64>,
    pub first_status_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub furthest: Option<Status>,
    pub pricing: Option<Labelled<Pricing>>,
    pub conversation: Option<Box<Labelled<Conversation>>>,
    pub send: Option<Box<Send>>,
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    a.max(b)
}

impl Folded {
    /// The state of a message that has seen only `event`.
    pub fn of(parties: Parties, event: Event) -> Folded {
        let mut f = Folded {
            parties,
            other_parties: None,
            received_at: None,
            entry_point: None,
            sent_status_at: None,
            first_status_at: None,
            delivered_at: None,
            furthest: None,
            pricing: None,
            conversation: None,
            send: None,
        };
        match event {
            Event::Inbound { at, entry_point } => {
                f.received_at = Some(at);
                f.entry_point = entry_point.map(|e| (at, e));
            }
            Event::Status {
                status,
                at,
                pricing,
                conversation,
            } => {
                f.first_status_at = Some(at);
                f.sent_status_at = (status == Status::Sent).then_some(at);
                f.delivered_at = status.delivers().then_some(at);
                f.furthest = Some(status);
                f.pricing = pricing.map(|label| Labelled { at, status, label });
                f.conversation = conversation.map(|label| Box::new(Labelled { at, status, label }));
            }
        }
        f
    }

    /// The state of a message that has seen only `event`.
    pub fn of_ref(event: &EventRef) -> Folded {
        Folded::of(event.parties(), event.event())
    }

    /// Merges one event, as `merge(Folded::of_ref(event))` does, copying
    /// only what the fold keeps of it.
    pub fn add(&mut self, event: &EventRef) {
        let same_parties = self.parties.account_id == event.account_id
            && self.parties.phone_number_id.as_deref() == event.phone_number_id
            && self.parties.customer == event.customer;
        if !same_parties {
            self.merge(Folded::of_ref(event));
            return;
        }
        match event.kind {
            EventRefKind::Inbound { at, entry_point } => {
                self.received_at = min_opt(self.received_at, Some(at));
                self.entry_point = min_opt(self.entry_point, entry_point.map(|e| (at, e)));
            }
            EventRefKind::Status {
                status,
                at,
                pricing,
                conversation,
            } => {
                self.first_status_at = min_opt(self.first_status_at, Some(at));
                if status == Status::Sent {
                    self.sent_status_at = min_opt(self.sent_status_at, Some(at));
                }
                if status.delivers() {
                    self.delivered_at = min_opt(self.delivered_at, Some(at));
                }
                self.furthest = max_opt(self.furthest, Some(status));
                if let Some(p) = pricing {
                    later_label(
                        &mut self.pricing,
                        at,
                        status,
                        p,
                        |k| (k.at, k.status),
                        |at, status, p| Labelled {
                            at,
                            status,
                            label: p.to_owned(),
                        },
                    );
                }
                if let Some(c) = conversation {
                    later_label(
                        &mut self.conversation,
                        at,
                        status,
                        c,
                        |k| (k.at, k.status),
                        |at, status, c| {
                            Box::new(Labelled {
                                at,
                                status,
                                label: c.to_owned(),
                            })
                        },
                    );
                }
            }
        }
    }

    /// Merges `other`, another fold of the same message id.
    pub fn merge(&mut self, other: Folded) {
        let (low, high) = match self.parties.cmp(&other.parties) {
            Ordering::Greater => (other.parties, Some(self.parties.clone())),
            Ordering::Less => (self.parties.clone(), Some(other.parties)),
            Ordering::Equal => (other.parties, None),
        };
        self.parties = low;
        let others = max_opt(self.other_parties.take(), other.other_parties);
        self.other_parties = max_opt(others, high.map(Box::new));
        self.received_at = min_opt(self.received_at, other.received_at);
        self.entry_point = min_opt(self.entry_point, other.entry_point);
        self.sent_status_at = min_opt(self.sent_status_at, other.sent_status_at);
        self.first_status_at = min_opt(self.first_status_at, other.first_status_at);
        self.delivered_at = min_opt(self.delivered_at, other.delivered_at);
        self.furthest = max_opt(self.furthest, other.furthest);
        self.pricing = max_opt(self.pricing.take(), other.pricing);
        self.conversation = max_opt(self.conversation.take(), other.conversation);
        self.send = max_opt(self.send.take(), other.send);
    }

    /// Takes what the sends file says of this message.
    pub fn with_send(&mut self, send: Send) {
        self.send = Some(Box::new(send));
    }

    /// Why the message has no row, if it has none.
    pub fn check(&self) -> Result<(), Unfolded> {
        self.row().map(|_| ())
    }

    /// The row, or why there is none; it borrows its strings from the fold.
    pub fn row(&self) -> Result<Row<'_>, Unfolded> {
        if let Some(other) = &self.other_parties {
            let what = if other.account_id != self.parties.account_id {
                ("account", &self.parties.account_id, &other.account_id)
            } else if other.customer != self.parties.customer {
                ("customer", &self.parties.customer, &other.customer)
            } else {
                (
                    "phone number",
                    self.parties
                        .phone_number_id
                        .as_ref()
                        .unwrap_or(&self.parties.customer),
                    other.phone_number_id.as_ref().unwrap_or(&other.customer),
                )
            };
            return Err(Unfolded::PartiesDisagree(format!(
                "its events name two of one {}: {} and {}",
                what.0, what.1, what.2
            )));
        }
        let customer = self.parties.customer.trim_start_matches('+');
        let parties = &self.parties;
        if let (Some(received_at), None) = (self.received_at, self.furthest) {
            return Ok(Row {
                account_id: &parties.account_id,
                phone_number_id: parties.phone_number_id.as_deref(),
                customer,
                inbound: true,
                template: None,
                template_name: None,
                status: "received",
                sent_at: received_at,
                delivered_at: None,
                entry_point: self.entry_point.map(|(_, e)| e),
                pricing: None,
                conversation: None,
            });
        }
        let (Some(furthest), None) = (self.furthest, self.received_at) else {
            return Err(Unfolded::DirectionsDisagree);
        };
        let send = self.send.as_ref();
        let label = self
            .pricing
            .as_ref()
            .and_then(|p| p.label.category.as_deref())
            .or_else(|| {
                let c = self.conversation.as_ref()?;
                c.label.origin.as_deref()
            });
        let template = match (send, label) {
            (Some(send), _) => send.template,
            (None, Some("service")) => None,
            (None, Some(label)) => match TemplateCategory::from_label(label) {
                Some(c) => Some(c),
                None => return Err(Unfolded::TypeUnknown(Some(label.to_string()))),
            },
            (None, None) => return Err(Unfolded::TypeUnknown(None)),
        };
        let sent_at = send
            .and_then(|s| s.sent_at)
            .or(self.sent_status_at)
            .or(self.first_status_at)
            .expect("a status event has a time");
        Ok(Row {
            account_id: &parties.account_id,
            phone_number_id: parties.phone_number_id.as_deref(),
            customer,
            inbound: false,
            template,
            template_name: send.and_then(|s| s.template_name.as_deref()),
            status: furthest.as_str(),
            sent_at,
            delivered_at: self.delivered_at,
            entry_point: None,
            pricing: self.pricing.as_ref().map(|p| &p.label),
            conversation: self.conversation.as_ref().map(|c| &c.label),
        })
    }

    /// Roughly the bytes this state holds on the heap, for the budget that
    /// decides when `ingest` spills folds to disk.
    pub fn heap_bytes(&self) -> usize {
        fn text(s: &Option<Text>) -> usize {
            s.as_ref().map_or(0, Text::heap_bytes)
        }
        fn parties(p: &Parties) -> usize {
            p.account_id.heap_bytes() + p.customer.heap_bytes() + text(&p.phone_number_id)
        }
        let pricing = self.pricing.as_ref().map_or(0, |p| {
            text(&p.label.category) + text(&p.label.pricing_type) + text(&p.label.pricing_model)
        });
        let conversation = self.conversation.as_ref().map_or(0, |c| {
            std::mem::size_of::<Labelled<Conversation>>()
                + 16
                + text(&c.label.id)
                + text(&c.label.origin)
        });
        let send = self.send.as_ref().map_or(0, |s| {
            std::mem::size_of::<Send>() + 16 + text(&s.template_name)
        });
        let others = self
            .other_parties
            .as_ref()
            .map_or(0, |p| std::mem::size_of::<Parties>() + 16 + parties(p));
        parties(&self.parties) + pricing + conversation + send + others
    }

    /// When the message happened, for the month it is kept in: its row's
    /// `sent_at` when it has a row, else its earliest time.
    pub fn event_at(&self) -> i64 {
        let sent = self.send.as_ref().and_then(|s| s.sent_at);
        let outbound = sent.or(self.sent_status_at).or(self.first_status_at);
        match (self.received_at, outbound) {
            (Some(received), None) => received,
            (None, Some(sent)) => sent,
            (a, b) => [a, b, self.first_status_at]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(0),
        }
    }
}

/// Why a message has no row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfolded {
    /// Neither the sends file nor the platform's labels say whether it was
    /// a template (the label, if there was one the fold does not know).
    TypeUnknown(Option<String>),
    /// Its id came both as an inbound message and with statuses.
    DirectionsDisagree,
    /// Its events name two accounts, customers or phone numbers.
    PartiesDisagree(String),
}

impl Unfolded {
    /// The reason the rejects give.
    pub fn reason(&self) -> &'static str {
        match self {
            Unfolded::TypeUnknown(_) => "type_unknown",
            Unfolded::DirectionsDisagree => "direction_conflict",
            Unfolded::PartiesDisagree(_) => "parties_conflict",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Unfolded::TypeUnknown(None) => {
                "no sends-file entry and no pricing or conversation label".to_string()
            }
            Unfolded::TypeUnknown(Some(label)) => format!(
                "no sends-file entry, and the platform's label {label:?} does not say \
                 whether it was a template"
            ),
            Unfolded::DirectionsDisagree => {
                "the id came as an inbound message and with statuses".to_string()
            }
            Unfolded::PartiesDisagree(detail) => detail.clone(),
        }
    }
}

/// A message's row of the log, less its id, borrowed from its fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    pub account_id: &'a str,
    pub phone_number_id: Option<&'a str>,
    /// The customer's digits; the log writes them after a `+` (E.164).
    pub customer: &'a str,
    pub inbound: bool,
    /// `Some` for a template; inbound and free-form messages have none.
    pub template: Option<TemplateCategory>,
    pub template_name: Option<&'a str>,
    pub status: &'static str,
    pub sent_at: i64,
    pub delivered_at: Option<i64>,
    pub entry_point: Option<EntryPoint>,
    pub pricing: Option<&'a Pricing>,
    pub conversation: Option<&'a Conversation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn parties() -> Parties {
        Parties {
            account_id: "waba-1".into(),
            phone_number_id: Some("pn-1".into()),
            customer: "6281234567890".into(),
        }
    }

    fn status(status: Status, at: i64, category: Option<&str>) -> Folded {
        Folded::of(
            parties(),
            Event::Status {
                status,
                at: at * S,
                pricing: category.map(|c| Pricing {
                    category: Some(c.into()),
                    billable: Some(c != "service"),
                    pricing_type: Some("regular".into()),
                    pricing_model: Some("PMP".into()),
                }),
                conversation: None,
            },
        )
    }

    /// A fold that outlives the test's statements, for rows that borrow it.
    fn leak(f: Folded) -> &'static Folded {
        Box::leak(Box::new(f))
    }

    fn fold(events: Vec<Folded>) -> Folded {
        let mut events = events.into_iter();
        let mut f = events.next().unwrap();
        for e in events {
            f.merge(e);
        }
        f
    }

    #[test]
    fn read_without_delivered_is_delivered_at_the_read() {
        let row = leak(fold(vec![
            status(Status::Sent, 100, Some("marketing")),
            status(Status::Read, 160, Some("marketing")),
        ]))
        .row()
        .unwrap();
        assert_eq!(row.status, "read");
        assert_eq!(row.delivered_at, Some(160 * S));
        assert_eq!(row.sent_at, 100 * S);
        assert_eq!(row.template, Some(TemplateCategory::Marketing));
    }

    #[test]
    fn a_delivery_beats_failed_in_either_order() {
        for events in [
            vec![
                status(Status::Failed, 110, Some("utility")),
                status(Status::Delivered, 120, Some("utility")),
            ],
            vec![
                status(Status::Delivered, 120, Some("utility")),
                status(Status::Failed, 130, Some("utility")),
            ],
        ] {
            let row = leak(fold(events)).row().unwrap();
            assert_eq!(row.status, "delivered");
            assert_eq!(row.delivered_at, Some(120 * S));
        }
        let failed = fold(vec![
            status(Status::Sent, 100, Some("utility")),
            status(Status::Failed, 110, Some("utility")),
        ]);
        assert_eq!(failed.row().unwrap().status, "failed");
        assert_eq!(failed.row().unwrap().delivered_at, None);
    }

    #[test]
    fn duplicates_fold_to_the_same_state() {
        let one = fold(vec![
            status(Status::Sent, 100, Some("marketing")),
            status(Status::Delivered, 105, Some("marketing")),
        ]);
        let twice = fold(vec![
            status(Status::Delivered, 105, Some("marketing")),
            status(Status::Sent, 100, Some("marketing")),
            status(Status::Delivered, 105, Some("marketing")),
            status(Status::Sent, 100, Some("marketing")),
        ]);
        assert_eq!(one, twice);
    }

    #[test]
    fn a_status_before_its_sent_keeps_the_sent_time() {
        let row = leak(fold(vec![
            status(Status::Delivered, 90, Some("utility")),
            status(Status::Sent, 100, Some("utility")),
        ]))
        .row()
        .unwrap();
        assert_eq!(row.sent_at, 100 * S);
        assert_eq!(row.delivered_at, Some(90 * S));
        let without_sent = leak(fold(vec![
            status(Status::Read, 95, Some("utility")),
            status(Status::Delivered, 90, Some("utility")),
        ]))
        .row()
        .unwrap();
        assert_eq!(without_sent.sent_at, 90 * S, "the earliest status");
    }

    #[test]
    fn the_sends_file_decides_type_and_sent_time() {
        let mut f = fold(vec![status(Status::Delivered, 100, Some("service"))]);
        assert_eq!(f.row().unwrap().template, None);
        f.with_send(Send {
            template: Some(TemplateCategory::Utility),
            template_name: Some("order_update".into()),
            sent_at: Some(99 * S),
        });
        let row = f.row().unwrap();
        assert_eq!(row.template, Some(TemplateCategory::Utility));
        assert_eq!(row.template_name, Some("order_update"));
        assert_eq!(row.sent_at, 99 * S);
    }

    #[test]
    fn a_type_neither_source_decides_is_not_guessed() {
        let no_label = fold(vec![status(Status::Delivered, 100, None)]);
        assert_eq!(no_label.row(), Err(Unfolded::TypeUnknown(None)));
        let conversion = fold(vec![status(
            Status::Delivered,
            100,
            Some("referral_conversion"),
        )]);
        assert_eq!(
            conversion.row().unwrap_err().reason(),
            "type_unknown",
            "{:?}",
            conversion.row()
        );
    }

    #[test]
    fn labels_come_from_the_last_event_that_carried_them() {
        let f = fold(vec![
            status(Status::Delivered, 120, Some("utility")),
            status(Status::Sent, 100, Some("marketing")),
            status(Status::Read, 130, None),
        ]);
        let row = f.row().unwrap();
        assert_eq!(row.pricing.unwrap().category.as_deref(), Some("utility"));
        assert_eq!(row.template, Some(TemplateCategory::Utility));
    }

    #[test]
    fn inbound_takes_its_entry_point_and_earliest_time() {
        let inbound = |at: i64, e: Option<EntryPoint>| {
            Folded::of(
                parties(),
                Event::Inbound {
                    at: at * S,
                    entry_point: e,
                },
            )
        };
        let row = leak(fold(vec![
            inbound(200, None),
            inbound(200, Some(EntryPoint::CtwaAd)),
        ]))
        .row()
        .unwrap();
        assert!(row.inbound);
        assert_eq!(row.status, "received");
        assert_eq!(row.entry_point, Some(EntryPoint::CtwaAd));
        assert_eq!(row.customer, "6281234567890");
        let both = fold(vec![
            inbound(200, None),
            status(Status::Sent, 100, Some("utility")),
        ]);
        assert_eq!(both.row(), Err(Unfolded::DirectionsDisagree));
    }

    #[test]
    fn adding_a_borrowed_event_is_merging_its_fold() {
        let pricing = |c| PricingRef {
            category: Some(c),
            billable: Some(true),
            pricing_type: Some("regular"),
            pricing_model: Some("PMP"),
        };
        let event = |account, status, at, c, conv: Option<&'static str>| EventRef {
            message_id: "m",
            account_id: account,
            phone_number_id: Some("pn-1"),
            customer: "6281234567890",
            kind: EventRefKind::Status {
                status,
                at,
                pricing: Some(pricing(c)),
                conversation: conv.map(|id| ConversationRef {
                    id: Some(id),
                    origin: Some(c),
                }),
            },
        };
        let events = [
            event("waba-1", Status::Delivered, 120, "utility", Some("c1")),
            event("waba-1", Status::Sent, 100, "marketing", None),
            event("waba-1", Status::Read, 120, "marketing", Some("c2")),
            event("waba-1", Status::Read, 120, "authentication", Some("c0")),
            event("waba-2", Status::Failed, 90, "service", None),
            event("waba-1", Status::Sent, 100, "marketing", None),
        ];
        let mut added = Folded::of_ref(&events[0]);
        let mut merged = Folded::of_ref(&events[0]);
        for e in &events[1..] {
            added.add(e);
            merged.merge(Folded::of_ref(e));
        }
        assert_eq!(added, merged);
    }

    #[test]
    fn two_accounts_for_one_id_are_named() {
        let mut other = status(Status::Delivered, 120, Some("utility"));
        other.parties.account_id = "waba-2".into();
        let mut f = status(Status::Sent, 100, Some("utility"));
        f.merge(other.clone());
        let mut g = other;
        g.merge(status(Status::Sent, 100, Some("utility")));
        assert_eq!(f, g, "order does not matter");
        let err = f.row().unwrap_err();
        assert_eq!(err.reason(), "parties_conflict");
        assert!(
            err.detail().contains("waba-1 and waba-2"),
            "{}",
            err.detail()
        );
    }
}
