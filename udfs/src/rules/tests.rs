//! The spec's test vectors, one test each, named after the vector.

use super::*;

const H: f64 = MICROS_PER_HOUR as f64;
/// 2024-02-01T00:00Z, the origin of the `cbp` vectors.
const FEB_2024: i64 = 1_706_745_600 * 1_000_000;
/// 2025-08-01T00:00Z, the origin of the `pmp` vectors.
const AUG_2025: i64 = 1_754_006_400 * 1_000_000;
/// 2026-11-02T00:00Z, the origin of the `pmp26` vectors.
const NOV_2026: i64 = 1_793_577_600 * 1_000_000;

fn at(origin: i64, hours: f64) -> i64 {
    origin + (hours * H).round() as i64
}

/// A pair's log written in the spec's notation; ids are given in order
/// (`m001`, `m002`, ...) unless a vector names them.
struct Log {
    origin: i64,
    rows: Vec<Row>,
    ids: Vec<String>,
}

impl Log {
    fn new(origin: i64) -> Self {
        Self {
            origin,
            rows: vec![],
            ids: vec![],
        }
    }

    fn push(
        &mut self,
        id: Option<&str>,
        kind: Kind,
        sent: f64,
        delivered: Option<f64>,
    ) -> &mut Self {
        let id = id.map_or_else(|| format!("m{:03}", self.ids.len() + 1), str::to_string);
        let status = match (kind, delivered) {
            (Kind::Inbound { .. }, _) => Status::Received,
            (_, Some(_)) => Status::Delivered,
            (_, None) => Status::Sent,
        };
        self.rows.push(Row {
            kind,
            status,
            sent_at: at(self.origin, sent),
            delivered_at: delivered.map(|d| at(self.origin, d)),
            id_hash: id_hash(id.as_bytes()),
        });
        self.ids.push(id);
        self
    }

    /// `in@t`
    fn inb(&mut self, t: f64) -> &mut Self {
        self.push(None, Kind::Inbound { entry_point: false }, t, None)
    }
    /// `in*@t`
    fn inb_ep(&mut self, t: f64) -> &mut Self {
        self.push(None, Kind::Inbound { entry_point: true }, t, None)
    }
    /// `T:c@t`, delivered at t
    fn t(&mut self, c: TemplateCategory, t: f64) -> &mut Self {
        self.push(None, Kind::Template(c), t, Some(t))
    }
    /// `T:c@t x`, never delivered
    fn tx(&mut self, c: TemplateCategory, t: f64) -> &mut Self {
        self.push(None, Kind::Template(c), t, None)
    }
    /// `F@t`
    fn f(&mut self, t: f64) -> &mut Self {
        self.push(None, Kind::FreeForm, t, Some(t))
    }
    /// `F@t x`
    fn fx(&mut self, t: f64) -> &mut Self {
        self.push(None, Kind::FreeForm, t, None)
    }

    fn run(&self, choice: RuleChoice) -> Vec<MessageOutcome> {
        let mut w = Windowing::new(choice);
        let mut out = vec![];
        w.run_pair(&self.rows, |i| self.ids[i as usize].as_bytes(), &mut out)
            .expect("valid log");
        out
    }

    fn hours(&self, t: i64) -> f64 {
        (t - self.origin) as f64 / H
    }

    /// Conversations as (category, opened at, expires at), in hours.
    fn conversations(&self) -> Vec<(&'static str, f64, f64)> {
        self.run(RuleChoice::Auto)
            .iter()
            .filter_map(|m| {
                m.conversation.map(|(c, expires)| {
                    (
                        c.as_str(),
                        self.hours(m.event_at.unwrap()),
                        self.hours(expires),
                    )
                })
            })
            .collect()
    }

    fn categories(&self) -> Vec<&'static str> {
        let mut c: Vec<_> = self.conversations().iter().map(|c| c.0).collect();
        c.sort();
        c
    }

    fn outside_window(&self) -> usize {
        self.run(RuleChoice::Auto)
            .iter()
            .filter(|m| m.conversation_outside_window)
            .count()
    }
}

use TemplateCategory::{Authentication as A, Marketing as M, Utility as U};

#[test]
fn v01_one_template() {
    assert_eq!(Log::new(FEB_2024).t(M, 0.0).categories(), ["marketing"]);
}
#[test]
fn v02_same_category_within_24h() {
    assert_eq!(
        Log::new(FEB_2024).t(M, 0.0).t(M, 23.99).categories(),
        ["marketing"]
    );
}
#[test]
fn v03_end_is_exclusive() {
    assert_eq!(
        Log::new(FEB_2024).t(M, 0.0).t(M, 24.0).categories(),
        ["marketing", "marketing"]
    );
}
#[test]
fn v04_concurrent_categories() {
    assert_eq!(
        Log::new(FEB_2024).t(M, 0.0).t(U, 1.0).categories(),
        ["marketing", "utility"]
    );
}
#[test]
fn v05_authentication_then_marketing() {
    assert_eq!(
        Log::new(FEB_2024).t(A, 0.0).t(M, 2.0).categories(),
        ["authentication", "marketing"]
    );
}
#[test]
fn v06_service() {
    assert_eq!(Log::new(FEB_2024).inb(0.0).f(1.0).categories(), ["service"]);
}
#[test]
fn v07_service_covers_replies() {
    assert_eq!(
        Log::new(FEB_2024).inb(0.0).f(1.0).f(20.0).categories(),
        ["service"]
    );
}
#[test]
fn v08_template_inside_service() {
    assert_eq!(
        Log::new(FEB_2024).inb(0.0).f(1.0).t(M, 2.0).categories(),
        ["marketing", "service"]
    );
}
#[test]
fn v09_free_form_inside_open_conversation() {
    assert_eq!(
        Log::new(FEB_2024).t(U, 0.0).inb(1.0).f(2.0).categories(),
        ["utility"]
    );
}
#[test]
fn v10_outside_window() {
    let mut log = Log::new(FEB_2024);
    log.inb(0.0).f(25.0);
    assert!(log.categories().is_empty());
    assert_eq!(log.outside_window(), 1);
}
#[test]
fn v11_two_service_conversations() {
    assert_eq!(
        Log::new(FEB_2024)
            .inb(0.0)
            .f(1.0)
            .inb(30.0)
            .f(31.0)
            .categories(),
        ["service", "service"]
    );
}
#[test]
fn v12_covered_after_csw_ended() {
    let mut log = Log::new(FEB_2024);
    log.inb(0.0).f(1.0).f(24.5);
    assert_eq!(log.categories(), ["service"]);
    assert_eq!(log.outside_window(), 0);
}
#[test]
fn v13_csw_restarted() {
    assert_eq!(
        Log::new(FEB_2024)
            .inb(0.0)
            .f(1.0)
            .inb(20.0)
            .f(26.0)
            .categories(),
        ["service", "service"]
    );
}
#[test]
fn v14_undelivered_takes_no_part() {
    assert_eq!(
        Log::new(FEB_2024).tx(M, 0.0).t(M, 1.0).conversations(),
        [("marketing", 1.0, 25.0)]
    );
}
#[test]
fn v15_window_runs_from_delivery() {
    let mut log = Log::new(FEB_2024);
    log.push(None, Kind::Template(M), 0.0, Some(0.5));
    log.push(None, Kind::Template(M), 24.1, Some(24.2));
    assert_eq!(log.conversations(), [("marketing", 0.5, 24.5)]);
}
#[test]
fn v16_free_entry() {
    assert_eq!(
        Log::new(FEB_2024).inb_ep(0.0).f(1.0).conversations(),
        [("free_entry", 1.0, 73.0)]
    );
}
#[test]
fn v17_free_entry_covers_everything() {
    let mut log = Log::new(FEB_2024);
    log.inb_ep(0.0).f(1.0).t(M, 50.0).f(70.0);
    assert_eq!(log.categories(), ["free_entry"]);
    assert_eq!(log.outside_window(), 0);
}
#[test]
fn v18_after_free_entry() {
    assert_eq!(
        Log::new(FEB_2024)
            .inb_ep(0.0)
            .f(1.0)
            .t(M, 73.0)
            .categories(),
        ["free_entry", "marketing"]
    );
}
#[test]
fn v19_entry_point_lapsed() {
    let mut log = Log::new(FEB_2024);
    log.inb_ep(0.0).f(25.0);
    assert!(log.categories().is_empty());
    assert_eq!(log.outside_window(), 1);
}
#[test]
fn v20_template_uses_entry_point() {
    assert_eq!(
        Log::new(FEB_2024).inb_ep(0.0).t(U, 2.0).categories(),
        ["free_entry"]
    );
}
#[test]
fn v21_logged_twice() {
    let mut log = Log::new(FEB_2024);
    log.push(Some("A"), Kind::Template(M), 0.0, Some(0.0));
    log.push(Some("B"), Kind::Template(M), 30.0, Some(30.0));
    log.push(Some("B"), Kind::Template(M), 30.0, Some(30.0));
    assert_eq!(log.categories(), ["marketing", "marketing"]);
    assert_eq!(log.run(RuleChoice::Auto).len(), 2);
}
#[test]
fn v22_inbound_first_at_same_instant() {
    let mut log = Log::new(FEB_2024);
    log.f(0.0).inb(0.0); // logged in the other order
    assert_eq!(log.categories(), ["service"]);
}
#[test]
fn v23_template_before_free_form() {
    let mut log = Log::new(FEB_2024);
    log.inb(-1.0).f(0.0).t(M, 0.0);
    assert_eq!(log.categories(), ["marketing"]);
}
#[test]
fn v24_v25_pairs_are_independent() {
    // Each pair runs on its own: customers A and B, or accounts X and Y.
    for _pair in 0..2 {
        assert_eq!(Log::new(FEB_2024).t(M, 0.0).categories(), ["marketing"]);
    }
    assert_eq!(Log::new(FEB_2024).t(M, 1.0).categories(), ["marketing"]);
}
#[test]
fn v26_opened_in_january() {
    assert_eq!(
        Log::new(FEB_2024).t(M, -1.0).t(M, 10.0).conversations(),
        [("marketing", -1.0, 23.0)]
    );
}
#[test]
fn v27_inbound_only() {
    assert!(Log::new(FEB_2024).inb(0.0).inb(5.0).categories().is_empty());
}
#[test]
fn v28_authentication_twice() {
    assert_eq!(
        Log::new(FEB_2024)
            .t(A, 0.0)
            .t(A, 10.0)
            .t(A, 30.0)
            .categories(),
        ["authentication", "authentication"]
    );
}
#[test]
fn v29_marketing_expired_and_csw_over() {
    let mut log = Log::new(FEB_2024);
    log.inb(0.0).t(M, 1.0).f(2.0).f(30.0);
    assert_eq!(log.categories(), ["marketing"]);
    assert_eq!(log.outside_window(), 1);
}
#[test]
fn v30_undelivered_free_form() {
    assert_eq!(
        Log::new(FEB_2024).inb(0.0).fx(1.0).f(2.0).conversations(),
        [("service", 2.0, 26.0)]
    );
}
#[test]
fn v31_covered_free_form_leaves_entry_point() {
    let mut log = Log::new(FEB_2024);
    log.t(M, 0.0).inb_ep(1.0).f(2.0).t(U, 3.0);
    assert_eq!(
        log.conversations(),
        [("marketing", 0.0, 24.0), ("free_entry", 3.0, 75.0)]
    );
}
#[test]
fn v32_entry_point_beats_open_marketing() {
    assert_eq!(
        Log::new(FEB_2024)
            .t(M, 0.0)
            .inb_ep(1.0)
            .t(M, 2.0)
            .categories(),
        ["free_entry", "marketing"]
    );
}
#[test]
fn v33_same_instant_message_id_order() {
    let mut log = Log::new(FEB_2024);
    log.inb_ep(0.0);
    log.push(Some("b"), Kind::Template(M), 1.0, Some(1.0));
    log.push(Some("a"), Kind::Template(U), 1.0, Some(1.0));
    let out = log.run(RuleChoice::Auto);
    let opened: Vec<_> = out.iter().filter(|m| m.conversation.is_some()).collect();
    assert_eq!(opened.len(), 1);
    assert_eq!(
        opened[0].conversation.unwrap().0,
        ConversationCategory::FreeEntry
    );
    assert_eq!(log.ids[opened[0].row as usize], "a");
}
#[test]
fn v34_inbound_without_entry_point_keeps_it() {
    assert_eq!(
        Log::new(FEB_2024)
            .inb_ep(0.0)
            .inb(10.0)
            .f(11.0)
            .categories(),
        ["free_entry"]
    );
}
#[test]
fn v35_second_free_entry() {
    let mut log = Log::new(FEB_2024);
    log.inb_ep(0.0).f(1.0).inb_ep(60.0).f(61.0).f(74.0);
    assert_eq!(
        log.conversations(),
        [("free_entry", 1.0, 73.0), ("free_entry", 74.0, 146.0)]
    );
}
#[test]
fn v36_entry_point_and_csw_end_exclusive() {
    let mut log = Log::new(FEB_2024);
    log.inb_ep(0.0).f(24.0);
    assert!(log.categories().is_empty());
    assert_eq!(log.outside_window(), 1);
}
#[test]
fn v37_template_at_entry_point_end() {
    assert_eq!(
        Log::new(FEB_2024).inb_ep(0.0).t(M, 24.0).categories(),
        ["marketing"]
    );
}
#[test]
fn v38_entry_point_replaced() {
    assert_eq!(
        Log::new(FEB_2024)
            .inb_ep(0.0)
            .inb_ep(10.0)
            .f(30.0)
            .conversations(),
        [("free_entry", 30.0, 102.0)]
    );
}
#[test]
fn v39_chained_conversations() {
    let mut log = Log::new(FEB_2024);
    for h in [-90.0, -70.0, -50.0, -30.0, -10.0, 5.0] {
        log.t(M, h);
    }
    let opened: Vec<f64> = log.conversations().iter().map(|c| c.1).collect();
    assert_eq!(opened, [-90.0, -50.0, -10.0]);
}
#[test]
fn v40_customer_forms_are_one_customer() {
    assert_eq!(
        customer_key("+6281200000001"),
        customer_key("6281200000001")
    );
    // Both rows then fall in one pair.
    assert_eq!(
        Log::new(FEB_2024).t(M, 0.0).t(M, 1.0).categories(),
        ["marketing"]
    );
}
#[test]
fn v41_rows_of_one_message_merge() {
    let mut log = Log::new(FEB_2024);
    log.push(Some("A"), Kind::Template(M), 0.0, None);
    log.push(Some("A"), Kind::Template(M), 0.0, Some(0.5));
    log.rows[1].status = Status::Delivered;
    let out = log.run(RuleChoice::Auto);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, Status::Delivered);
    assert_eq!(log.conversations(), [("marketing", 0.5, 24.5)]);
}

#[test]
fn merge_rejects_rows_that_disagree() {
    let mut log = Log::new(FEB_2024);
    log.push(Some("A"), Kind::Template(M), 0.0, None);
    log.push(Some("A"), Kind::Template(U), 0.0, Some(0.5));
    let mut w = Windowing::new(RuleChoice::Auto);
    let err = w
        .run_pair(&log.rows, |i| log.ids[i as usize].as_bytes(), &mut vec![])
        .unwrap_err();
    assert_eq!(err.message_id, "A");
}

#[test]
fn classify_reports_bad_values() {
    assert!(Kind::classify("sideways", "template", Some("marketing"), None).is_err());
    assert!(Kind::classify("outbound", "template", None, None)
        .unwrap_err()
        .contains("without category"));
    assert!(Kind::classify("outbound", "template", Some("promo"), None).is_err());
    assert_eq!(
        Kind::classify("inbound", "free_form", None, Some("ctwa_ad")),
        Ok(Kind::Inbound { entry_point: true })
    );
}

// ---- Rule set `pmp` (hours after 2025-08-01) ----

/// (pricing category, messages, billable, outside_window) per category, sorted.
fn priced(log: &Log, choice: RuleChoice) -> (Vec<(&'static str, usize)>, usize, usize) {
    let out = log.run(choice);
    let mut cats: Vec<(&'static str, usize)> = vec![];
    let (mut billable, mut outside) = (0, 0);
    for p in out.iter().filter_map(|m| m.pricing) {
        if let Some(c) = p.category {
            match cats.iter_mut().find(|(n, _)| *n == c.as_str()) {
                Some(e) => e.1 += 1,
                None => cats.push((c.as_str(), 1)),
            }
        }
        billable += p.billable as usize;
        outside += p.outside_window as usize;
    }
    cats.sort();
    (cats, billable, outside)
}

fn pmp(log: &Log) -> (Vec<(&'static str, usize)>, usize, usize) {
    let auto = priced(log, RuleChoice::Auto);
    assert_eq!(
        auto,
        priced(log, RuleChoice::Pmp),
        "auto prices August by pmp"
    );
    auto
}

#[test]
fn p01_marketing_twice() {
    assert_eq!(
        pmp(Log::new(AUG_2025).t(M, 0.0).t(M, 1.0)),
        (vec![("marketing", 2)], 2, 0)
    );
}
#[test]
fn p02_utility_free_inside_csw() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb(0.0).t(U, 1.0)),
        (vec![("utility", 1)], 0, 0)
    );
}
#[test]
fn p03_utility_billable() {
    assert_eq!(
        pmp(Log::new(AUG_2025).t(U, 0.0)),
        (vec![("utility", 1)], 1, 0)
    );
}
#[test]
fn p04_utility_after_csw() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb(0.0).t(U, 25.0)),
        (vec![("utility", 1)], 1, 0)
    );
}
#[test]
fn p05_service_free() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb(0.0).f(1.0).f(2.0)),
        (vec![("service", 2)], 0, 0)
    );
}
#[test]
fn p06_service_outside_window() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb(0.0).f(25.0)),
        (vec![("service", 1)], 0, 1)
    );
}
#[test]
fn p07_free_entry_window() {
    let mut log = Log::new(AUG_2025);
    log.inb_ep(0.0).f(1.0).t(M, 50.0).t(U, 70.0).t(M, 73.0);
    assert_eq!(
        pmp(&log),
        (vec![("marketing", 1), ("referral_conversion", 3)], 1, 0)
    );
}
#[test]
fn p08_entry_point_lapsed() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb_ep(0.0).t(M, 25.0)),
        (vec![("marketing", 1)], 1, 0)
    );
}
#[test]
fn p09_authentication() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb(0.0).t(A, 1.0)),
        (vec![("authentication", 1)], 1, 0)
    );
}
#[test]
fn p10_marketing_inside_csw() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb(0.0).t(M, 1.0)),
        (vec![("marketing", 1)], 1, 0)
    );
}
#[test]
fn p11_undelivered() {
    assert_eq!(pmp(Log::new(AUG_2025).tx(M, 0.0)), (vec![], 0, 0));
}
#[test]
fn p12_entry_point_replaced() {
    let mut log = Log::new(AUG_2025);
    log.inb_ep(0.0).inb_ep(10.0).f(11.0).t(M, 82.0).t(M, 83.0);
    // The window is [11, 83): T:m@82 is inside it, T:m@83 is not.
    assert_eq!(
        pmp(&log),
        (vec![("marketing", 1), ("referral_conversion", 2)], 1, 0)
    );
}
#[test]
fn p13_csw_restarted() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb(0.0).inb(20.0).t(U, 30.0)),
        (vec![("utility", 1)], 0, 0)
    );
}
#[test]
fn p14_undelivered_does_not_use_entry_point() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb_ep(0.0).fx(1.0).f(2.0)),
        (vec![("referral_conversion", 1)], 0, 0)
    );
}
#[test]
fn p15_referral_outside_csw() {
    assert_eq!(
        pmp(Log::new(AUG_2025).inb_ep(0.0).f(1.0).f(30.0)),
        (vec![("referral_conversion", 2)], 0, 1)
    );
}

// ---- Across the switch, `auto` (hours after 2025-07-01) ----

/// Pricing of each priced message as (hours, rule set, category, billable).
fn pricing_rows(log: &Log) -> Vec<(f64, &'static str, Option<&'static str>, bool)> {
    log.run(RuleChoice::Auto)
        .iter()
        .filter_map(|m| {
            m.pricing.map(|p| {
                (
                    log.hours(m.event_at.unwrap()),
                    p.rule_set.as_str(),
                    p.category.map(|c| c.as_str()),
                    p.billable,
                )
            })
        })
        .collect()
}

#[test]
fn b1_marketing_across_switch() {
    let mut log = Log::new(PMP_START);
    log.t(M, -1.0).t(M, 1.0);
    assert_eq!(
        pricing_rows(&log),
        [
            (-1.0, "cbp", Some("marketing"), true),
            (1.0, "pmp", Some("marketing"), true)
        ]
    );
    assert_eq!(
        log.categories(),
        ["marketing"],
        "the 24-hour metric goes on"
    );
}
#[test]
fn b2_free_entry_carries_over() {
    let mut log = Log::new(PMP_START);
    log.inb_ep(-2.0).f(-1.0).t(M, 10.0);
    assert_eq!(
        pricing_rows(&log),
        [
            (-1.0, "cbp", Some("referral_conversion"), false),
            (10.0, "pmp", Some("referral_conversion"), false)
        ]
    );
    assert_eq!(log.categories(), ["free_entry"]);
}
#[test]
fn b3_csw_carries_over() {
    assert_eq!(
        pricing_rows(Log::new(PMP_START).inb(-2.0).t(U, 1.0)),
        [(1.0, "pmp", Some("utility"), false)]
    );
}
#[test]
fn b4_service_across_switch() {
    let mut log = Log::new(PMP_START);
    log.inb(-3.0).f(-2.0).f(5.0);
    assert_eq!(
        pricing_rows(&log),
        [
            (-2.0, "cbp", Some("service"), false),
            (5.0, "pmp", Some("service"), false)
        ]
    );
}

// ---- Rule set `pmp26` (hours after 2026-11-02) ----

fn pmp26(log: &Log) -> (Vec<(&'static str, usize)>, usize, usize) {
    let auto = priced(log, RuleChoice::Auto);
    assert_eq!(
        auto,
        priced(log, RuleChoice::Pmp26),
        "auto prices November 2026 by pmp26"
    );
    assert!(log
        .run(RuleChoice::Auto)
        .iter()
        .filter_map(|m| m.pricing)
        .all(|p| p.rule_set == RuleSet::Pmp26));
    auto
}

#[test]
fn q1_service_billable() {
    assert_eq!(
        pmp26(Log::new(NOV_2026).inb(0.0).f(1.0)),
        (vec![("service", 1)], 1, 0)
    );
}
#[test]
fn q2_utility_inside_csw_billable() {
    assert_eq!(
        pmp26(Log::new(NOV_2026).inb(0.0).t(U, 1.0)),
        (vec![("utility", 1)], 1, 0)
    );
}
#[test]
fn q3_service_outside_window_not_billable() {
    assert_eq!(
        pmp26(Log::new(NOV_2026).inb(0.0).f(25.0)),
        (vec![("service", 1)], 0, 1)
    );
}
#[test]
fn q4_free_entry_window_unchanged() {
    let mut log = Log::new(NOV_2026);
    log.inb_ep(0.0).f(1.0).t(U, 30.0).t(M, 72.0).t(M, 73.0);
    assert_eq!(
        pmp26(&log),
        (vec![("marketing", 1), ("referral_conversion", 3)], 1, 0)
    );
}
#[test]
fn q5_templates_and_service() {
    let mut log = Log::new(NOV_2026);
    log.t(M, 0.0).inb(1.0).f(2.0).t(A, 3.0);
    assert_eq!(
        pmp26(&log),
        (
            vec![("authentication", 1), ("marketing", 1), ("service", 1)],
            3,
            0
        )
    );
}
#[test]
fn q6_entry_point_lapsed_then_outside_window() {
    let mut log = Log::new(NOV_2026);
    log.inb_ep(0.0).t(M, 25.0).f(26.0);
    assert_eq!(pmp26(&log), (vec![("marketing", 1), ("service", 1)], 1, 1));
}
#[test]
fn q7_undelivered_free_form() {
    assert_eq!(
        pmp26(Log::new(NOV_2026).inb(0.0).fx(1.0).f(2.0)),
        (vec![("service", 1)], 1, 0)
    );
}

// ---- Across the second switch, `auto` (hours after 2026-10-01) ----

#[test]
fn b5_utility_and_service_across_second_switch() {
    let mut log = Log::new(PMP26_START);
    log.inb(-2.0).t(U, -1.0).t(U, 1.0).f(2.0);
    assert_eq!(
        pricing_rows(&log),
        [
            (-1.0, "pmp", Some("utility"), false),
            (1.0, "pmp26", Some("utility"), true),
            (2.0, "pmp26", Some("service"), true)
        ]
    );
}
#[test]
fn b6_free_entry_window_carries_over_second_switch() {
    let mut log = Log::new(PMP26_START);
    log.inb_ep(-5.0).f(-4.0).f(10.0).t(M, 60.0);
    assert_eq!(
        pricing_rows(&log),
        [
            (-4.0, "pmp", Some("referral_conversion"), false),
            (10.0, "pmp26", Some("referral_conversion"), false),
            (60.0, "pmp26", Some("referral_conversion"), false)
        ]
    );
}

#[test]
fn forced_rule_sets_price_every_message_by_that_set() {
    // A log spanning both switches: a forced choice prices every message by
    // its one rule set, `auto` by the one in force at each event.
    let mut log = Log::new(PMP26_START);
    log.inb(-11_000.0)
        .t(U, -10_999.0)
        .inb(-3.0)
        .f(-2.0)
        .f(2.0)
        .t(U, 3.0);
    for (choice, expected) in [
        (RuleChoice::Pmp, ["pmp"; 4]),
        (RuleChoice::Pmp26, ["pmp26"; 4]),
        (RuleChoice::Cbp, ["cbp"; 4]),
        (RuleChoice::Auto, ["cbp", "pmp", "pmp26", "pmp26"]),
    ] {
        let sets: Vec<&str> = log
            .run(choice)
            .iter()
            .filter_map(|m| m.pricing.map(|p| p.rule_set.as_str()))
            .collect();
        assert_eq!(sets, expected, "{choice:?}");
    }
    assert_eq!(
        priced(&log, RuleChoice::Pmp26).1,
        4,
        "all billable under pmp26"
    );
    assert_eq!(
        priced(&log, RuleChoice::Pmp).1,
        0,
        "utility inside the CSW and service are free under pmp"
    );
}

#[test]
fn rule_choices_parse_their_names_in_any_case() {
    for c in RuleChoice::ALL {
        assert_eq!(RuleChoice::parse(c.as_str()), Some(c));
        assert_eq!(RuleChoice::parse(&c.as_str().to_uppercase()), Some(c));
    }
    assert_eq!(RuleChoice::parse("pmp2026"), None);
    assert_eq!(RuleSet::in_force_at(PMP26_START - 1), RuleSet::Pmp);
    assert_eq!(RuleSet::in_force_at(PMP26_START), RuleSet::Pmp26);
    assert_eq!(RuleSet::in_force_at(PMP_START - 1), RuleSet::Cbp);
}

#[test]
fn forced_cbp_prices_exactly_the_openers() {
    let mut log = Log::new(PMP_START);
    log.inb_ep(-30.0)
        .t(M, -1.0)
        .f(-0.5)
        .t(M, 1.0)
        .t(U, 2.0)
        .t(M, 30.0);
    for m in log.run(RuleChoice::Cbp) {
        if let Some(p) = m.pricing {
            assert_eq!(p.rule_set, RuleSet::Cbp);
            assert_eq!(p.category.is_some(), m.conversation.is_some());
        }
    }
}

#[test]
fn service_before_november_2024_is_billable() {
    let nov = FREE_SERVICE_START;
    let before = priced(Log::new(nov).inb(-3.0).f(-2.0), RuleChoice::Auto);
    let after = priced(Log::new(nov).inb(0.0).f(1.0), RuleChoice::Auto);
    assert_eq!(before, (vec![("service", 1)], 1, 0));
    assert_eq!(after, (vec![("service", 1)], 0, 0));
}

#[test]
fn merge_keeps_apart_ids_whose_hashes_collide() {
    // Two messages, three rows, every row with the same id hash: only the
    // ids themselves tell the messages apart.
    let mut log = Log::new(FEB_2024);
    log.push(Some("A"), Kind::Template(M), 0.0, None);
    log.push(Some("B"), Kind::Template(U), 1.0, Some(1.0));
    log.push(Some("A"), Kind::Template(M), 0.0, Some(0.5));
    for row in &mut log.rows {
        row.id_hash = 42;
    }
    let mut w = Windowing::new(RuleChoice::Auto);
    let mut out = vec![];
    w.run_pair(&log.rows, |i| log.ids[i as usize].as_bytes(), &mut out)
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].delivered_at, log.rows[2].delivered_at);
    assert_eq!(w.outcome_of_row(0), w.outcome_of_row(2));
    assert_ne!(w.outcome_of_row(0), w.outcome_of_row(1));
}

#[test]
fn undelivered_messages_come_last_in_id_order_whatever_the_row_order() {
    let order = |ids: [&str; 3]| -> Vec<String> {
        let mut log = Log::new(FEB_2024);
        for (n, id) in ids.iter().enumerate() {
            log.push(Some(id), Kind::Template(M), n as f64, None);
        }
        log.push(Some("D"), Kind::Template(U), 5.0, Some(5.0));
        let mut w = Windowing::new(RuleChoice::Auto);
        let mut out = vec![];
        w.run_pair(&log.rows, |i| log.ids[i as usize].as_bytes(), &mut out)
            .unwrap();
        out.iter()
            .map(|m| log.ids[m.row as usize].clone())
            .collect()
    };
    assert_eq!(order(["C", "A", "B"]), ["D", "A", "B", "C"]);
    assert_eq!(order(["B", "C", "A"]), ["D", "A", "B", "C"]);
}

#[test]
fn the_customer_key_is_the_number_without_blanks_and_plus() {
    for form in [
        "+6281234567890",
        "6281234567890",
        " +6281234567890 ",
        "+6281234567890\n",
        "++6281234567890",
        "\t++6281234567890\r\n",
    ] {
        let key = customer_key(form);
        assert_eq!(key, "6281234567890", "{form:?}");
        assert_eq!(customer_key(key), key);
        assert_eq!(customer_key_bytes(form.as_bytes()), key.as_bytes());
    }
    assert_eq!(
        customer_key("62 81"),
        "62 81",
        "inner blanks stay: not a number"
    );
}
