//! The vocabulary of the rules: what kind of message a row is, its status,
//! the categories of conversations and of per-message pricing, and which
//! rule set prices a message.

use std::fmt;

/// A template's category, as the business chose it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
}

impl TemplateCategory {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "marketing" => Some(Self::Marketing),
            "utility" => Some(Self::Utility),
            "authentication" => Some(Self::Authentication),
            _ => None,
        }
    }
}

/// What a message is, which decides how the rules treat it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Customer → business; `entry_point` when it came through a free entry point.
    Inbound { entry_point: bool },
    /// Business → customer template message.
    Template(TemplateCategory),
    /// Business → customer free-form message.
    FreeForm,
}

impl Kind {
    /// Classifies a row from its log columns; the error says which value is wrong.
    pub fn classify(
        direction: &str,
        message_type: &str,
        category: Option<&str>,
        entry_point: Option<&str>,
    ) -> Result<Self, String> {
        match direction {
            "inbound" => match message_type {
                "free_form" | "template" => Ok(Kind::Inbound {
                    entry_point: entry_point.is_some_and(|e| !e.is_empty()),
                }),
                other => Err(format!("unknown message_type {other:?}")),
            },
            "outbound" => match message_type {
                "free_form" => Ok(Kind::FreeForm),
                "template" => match category {
                    None => Err("template without category".to_string()),
                    Some(c) => TemplateCategory::parse(c)
                        .map(Kind::Template)
                        .ok_or_else(|| format!("unknown template category {c:?}")),
                },
                other => Err(format!("unknown message_type {other:?}")),
            },
            other => Err(format!("unknown direction {other:?}")),
        }
    }

    pub fn is_outbound(self) -> bool {
        !matches!(self, Kind::Inbound { .. })
    }

    /// Same-instant order: inbound, then templates, then free-form.
    pub(crate) fn tie_rank(self) -> u8 {
        match self {
            Kind::Inbound { .. } => 0,
            Kind::Template(_) => 1,
            Kind::FreeForm => 2,
        }
    }

    /// The parts of a kind that all rows of one message must agree on
    /// (the entry point is merged, not compared).
    pub(crate) fn shape(self) -> Kind {
        match self {
            Kind::Inbound { .. } => Kind::Inbound { entry_point: false },
            k => k,
        }
    }
}

/// A row's status, ordered as rows of one message merge: the furthest wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Sent,
    Failed,
    Delivered,
    Read,
    Received,
}

impl Status {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            "delivered" => Some(Self::Delivered),
            "read" => Some(Self::Read),
            "received" => Some(Self::Received),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Received => "received",
        }
    }
}

/// The category of a 24-hour (or 72-hour free entry) conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConversationCategory {
    Marketing = 0,
    Utility = 1,
    Authentication = 2,
    Service = 3,
    FreeEntry = 4,
}

impl ConversationCategory {
    pub const ALL: [Self; 5] = [
        Self::Marketing,
        Self::Utility,
        Self::Authentication,
        Self::Service,
        Self::FreeEntry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "marketing",
            Self::Utility => "utility",
            Self::Authentication => "authentication",
            Self::Service => "service",
            Self::FreeEntry => "free_entry",
        }
    }

    pub(crate) fn of_template(c: TemplateCategory) -> Self {
        match c {
            TemplateCategory::Marketing => Self::Marketing,
            TemplateCategory::Utility => Self::Utility,
            TemplateCategory::Authentication => Self::Authentication,
        }
    }
}

impl fmt::Display for ConversationCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a delivered outbound message is priced as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PricingCategory {
    Marketing,
    Utility,
    Authentication,
    Service,
    ReferralConversion,
}

impl PricingCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "marketing",
            Self::Utility => "utility",
            Self::Authentication => "authentication",
            Self::Service => "service",
            Self::ReferralConversion => "referral_conversion",
        }
    }

    pub(crate) fn of_conversation(c: ConversationCategory) -> Self {
        match c {
            ConversationCategory::Marketing => Self::Marketing,
            ConversationCategory::Utility => Self::Utility,
            ConversationCategory::Authentication => Self::Authentication,
            ConversationCategory::Service => Self::Service,
            ConversationCategory::FreeEntry => Self::ReferralConversion,
        }
    }

    pub(crate) fn of_template(c: TemplateCategory) -> Self {
        Self::of_conversation(ConversationCategory::of_template(c))
    }
}

impl fmt::Display for PricingCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule set that priced a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleSet {
    /// Conversation-based pricing (until June 2025).
    Cbp,
    /// Per-message pricing (from July 2025).
    Pmp,
    /// Per-message pricing as revised (from October 2026): service messages
    /// and utility templates inside the CSW are billable.
    Pmp26,
}

impl RuleSet {
    pub const ALL: [Self; 3] = [Self::Cbp, Self::Pmp, Self::Pmp26];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cbp => "cbp",
            Self::Pmp => "pmp",
            Self::Pmp26 => "pmp26",
        }
    }

    /// The rule set in force at `t` (microseconds, UTC): what `auto` uses.
    pub fn in_force_at(t: i64) -> Self {
        if t >= super::PMP26_START {
            Self::Pmp26
        } else if t >= super::PMP_START {
            Self::Pmp
        } else {
            Self::Cbp
        }
    }
}

impl fmt::Display for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RuleChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rule set prices messages: the one in force at each message's
/// event time (`Auto`), or one forced for the whole log (what-if).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RuleChoice {
    #[default]
    Auto,
    Cbp,
    Pmp,
    Pmp26,
}

impl RuleChoice {
    pub const ALL: [Self; 4] = [Self::Auto, Self::Cbp, Self::Pmp, Self::Pmp26];
    pub const NAMES: &'static str = "auto, cbp, pmp, pmp26";

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Cbp => "cbp",
            Self::Pmp => "pmp",
            Self::Pmp26 => "pmp26",
        }
    }

    /// The rule set that prices a message with its event at `t`.
    pub fn rule_set_at(self, t: i64) -> RuleSet {
        match self {
            Self::Auto => RuleSet::in_force_at(t),
            Self::Cbp => RuleSet::Cbp,
            Self::Pmp => RuleSet::Pmp,
            Self::Pmp26 => RuleSet::Pmp26,
        }
    }

    /// What the choice means, in a line for `\rules` and the usage page.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Auto => {
                "auto: each message by the rule set in force at its event time \
                 (cbp before 2025-07-01, pmp from 2025-07-01, pmp26 from 2026-10-01, UTC)"
            }
            Self::Cbp => "cbp: conversation-based pricing for the whole log (what-if)",
            Self::Pmp => "pmp: per-message pricing of July 2025 for the whole log (what-if)",
            Self::Pmp26 => "pmp26: per-message pricing of October 2026 for the whole log (what-if)",
        }
    }
}

/// How one delivered outbound message is priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pricing {
    pub rule_set: RuleSet,
    /// Under `cbp`, null when the message opened no conversation.
    pub category: Option<PricingCategory>,
    pub billable: bool,
    /// A free-form message the platform would have refused (outside the window).
    pub outside_window: bool,
}

/// A customer is its phone number's digits: `+6281…`, `6281…` and
/// ` +6281…\n` are one customer. The key is the number with surrounding
/// ASCII blanks trimmed and its leading `+` (one or more) removed; outputs
/// write it back in E.164 as `+` followed by the key, and the customer's
/// country is read from it. This is the one definition: the SQL function
/// `wa_customer_key`, the windowing operator's key coder and
/// `phone_country` all call [`customer_key_bytes`].
pub fn customer_key(customer_id: &str) -> &str {
    // SAFETY: only ASCII bytes are removed from the ends of a `str`.
    unsafe { std::str::from_utf8_unchecked(customer_key_bytes(customer_id.as_bytes())) }
}

/// [`customer_key`] on bytes: always a sub-slice of `number`.
#[inline]
pub fn customer_key_bytes(number: &[u8]) -> &[u8] {
    let trimmed = number.trim_ascii();
    let plus = trimmed.iter().take_while(|&&b| b == b'+').count();
    &trimmed[plus..]
}
