//! The two state machines of the spec, one step per message in event order.
//!
//! Every window is half-open, `[start, start + length)`: "open at `t`"
//! is `t < until`. Times are microseconds; `NEVER` marks a closed window.

use super::types::{
    ConversationCategory, Kind, Pricing, PricingCategory, RuleSet, TemplateCategory,
};
use super::{DAY, FREE_ENTRY_LENGTH, FREE_SERVICE_START};

/// A window end that no time is before.
const NEVER: i64 = i64::MIN;

/// What a `cbp` step did to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CbpStep {
    /// The conversation the message opened, with its expiry.
    pub opened: Option<(ConversationCategory, i64)>,
    /// Rule 4's last case: a free-form message with nothing open and no window.
    pub outside_window: bool,
}

/// Rule set `cbp` for one (account, customer) pair: the open conversations
/// (one per category at most), the customer service window (CSW) and a
/// pending free entry point.
#[derive(Clone, Debug)]
pub struct CbpState {
    /// End of the open conversation of each category, by `ConversationCategory as usize`.
    open_until: [i64; 5],
    csw_until: i64,
    entry_point_until: i64,
}

impl Default for CbpState {
    fn default() -> Self {
        Self {
            open_until: [NEVER; 5],
            csw_until: NEVER,
            entry_point_until: NEVER,
        }
    }
}

impl CbpState {
    fn is_open(&self, c: ConversationCategory, t: i64) -> bool {
        t < self.open_until[c as usize]
    }

    fn any_open(&self, t: i64) -> bool {
        self.open_until.iter().any(|&until| t < until)
    }

    fn open(&mut self, c: ConversationCategory, t: i64) -> CbpStep {
        let length = if c == ConversationCategory::FreeEntry {
            self.entry_point_until = NEVER; // the entry point is used up
            FREE_ENTRY_LENGTH
        } else {
            DAY
        };
        self.open_until[c as usize] = t + length;
        CbpStep {
            opened: Some((c, t + length)),
            outside_window: false,
        }
    }

    /// One message at its event time `t` (inbound: sent; outbound: delivered).
    pub fn step(&mut self, kind: Kind, t: i64) -> CbpStep {
        const NOTHING: CbpStep = CbpStep {
            opened: None,
            outside_window: false,
        };
        let entry_point_pending = t < self.entry_point_until;
        match kind {
            // Rule 1.
            Kind::Inbound { entry_point } => {
                self.csw_until = t + DAY;
                if entry_point {
                    self.entry_point_until = t + DAY;
                }
                NOTHING
            }
            // Rule 3 (and rule 2 for templates).
            Kind::Template(c) => {
                let category = ConversationCategory::of_template(c);
                if self.is_open(ConversationCategory::FreeEntry, t) {
                    NOTHING
                } else if entry_point_pending {
                    self.open(ConversationCategory::FreeEntry, t)
                } else if self.is_open(category, t) {
                    NOTHING
                } else {
                    self.open(category, t)
                }
            }
            // Rule 4 (and rule 2 for free-form messages).
            Kind::FreeForm => {
                if self.any_open(t) {
                    NOTHING
                } else if entry_point_pending {
                    self.open(ConversationCategory::FreeEntry, t)
                } else if t < self.csw_until {
                    self.open(ConversationCategory::Service, t)
                } else {
                    CbpStep {
                        opened: None,
                        outside_window: true,
                    }
                }
            }
        }
    }

    /// The state `pmp` continues from at the switch: the CSW, a pending entry
    /// point and an open free entry conversation carry over; other
    /// conversations cover nothing under `pmp`.
    pub fn to_pmp(&self) -> PmpState {
        PmpState {
            csw_until: self.csw_until,
            entry_point_until: self.entry_point_until,
            free_entry_until: self.open_until[ConversationCategory::FreeEntry as usize],
        }
    }
}

/// How `cbp` prices an outbound message from the conversation it opened.
pub fn cbp_pricing(step: CbpStep, t: i64) -> Pricing {
    let (category, billable) = match step.opened {
        None => (None, false),
        Some((c, _)) => {
            let billable = match c {
                ConversationCategory::Marketing
                | ConversationCategory::Utility
                | ConversationCategory::Authentication => true,
                ConversationCategory::Service => t < FREE_SERVICE_START,
                ConversationCategory::FreeEntry => false,
            };
            (Some(PricingCategory::of_conversation(c)), billable)
        }
    };
    Pricing {
        rule_set: RuleSet::Cbp,
        category,
        billable,
        outside_window: step.outside_window,
    }
}

/// Rule sets `pmp` and `pmp26` for one pair: the CSW, a pending free entry
/// point and an open free entry point window. The two differ only in what
/// a message outside a free entry point window costs (P2 against P2'), so
/// one state serves both and carries over the switch between them as is.
#[derive(Clone, Debug)]
pub struct PmpState {
    csw_until: i64,
    entry_point_until: i64,
    free_entry_until: i64,
}

impl Default for PmpState {
    fn default() -> Self {
        Self {
            csw_until: NEVER,
            entry_point_until: NEVER,
            free_entry_until: NEVER,
        }
    }
}

impl PmpState {
    /// One message at its event time, priced by `rule_set` (`Pmp` or
    /// `Pmp26`); `Some` pricing for outbound messages.
    pub fn step(&mut self, kind: Kind, t: i64, rule_set: RuleSet) -> Option<Pricing> {
        debug_assert!(rule_set != RuleSet::Cbp, "cbp prices by conversations");
        let revised = rule_set == RuleSet::Pmp26;
        let category = match kind {
            // P1.
            Kind::Inbound { entry_point } => {
                self.csw_until = t + DAY;
                if entry_point {
                    self.entry_point_until = t + DAY;
                }
                return None;
            }
            Kind::Template(c) => c,
            Kind::FreeForm => TemplateCategory::Marketing, // unused below
        };
        let inside_csw = t < self.csw_until;
        // P3: judged by the CSW alone, whatever the pricing category.
        let outside_window = kind == Kind::FreeForm && !inside_csw;
        // P2 (P2' under pmp26), first match wins.
        let (pricing_category, billable) = if t < self.free_entry_until {
            (PricingCategory::ReferralConversion, false)
        } else if t < self.entry_point_until {
            self.entry_point_until = NEVER;
            self.free_entry_until = t + FREE_ENTRY_LENGTH;
            (PricingCategory::ReferralConversion, false)
        } else if let Kind::Template(_) = kind {
            // P2.3: a utility template inside the CSW is free; P2'.3: no longer.
            let free = !revised && category == TemplateCategory::Utility && inside_csw;
            (PricingCategory::of_template(category), !free)
        } else {
            // P2.4: service is free; P2'.4 and P2'.5: billable inside the CSW
            // only, as nothing the platform refuses is charged.
            (PricingCategory::Service, revised && inside_csw)
        };
        Some(Pricing {
            rule_set,
            category: Some(pricing_category),
            billable,
            outside_window,
        })
    }
}
