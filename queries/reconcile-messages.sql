-- name: reconcile-messages
-- description: The month's delivered outbound messages whose pricing differs from the platform's own label (a log written by ingest), one row each, with the reason: category, billable or no_meta_label
-- param: month month required The month: YYYY-MM, current or previous
-- param: account text optional Only this account
--
-- No row when our pricing and the platform's label agree. The reason is
-- the first that applies: no_meta_label (the message has no pricing label),
-- category, billable. differing_pct is the share of the month's delivered
-- messages of the row's account that differ, which --alert-at watches.
WITH labelled AS (
  SELECT p.message_id, p.account_id, p.customer_id, p.event_at, p.rule_set,
         p.pricing_category, p.billable,
         m.meta_pricing_category, m.meta_billable,
         CASE
           WHEN m.meta_pricing_category IS NULL AND m.meta_billable IS NULL THEN 'no_meta_label'
           WHEN (CASE
                   WHEN m.meta_pricing_category = 'authentication_international' THEN 'authentication'
                   WHEN m.meta_pricing_category = 'referral_conversion' AND p.rule_set = 'cbp'
                     THEN 'free_entry'
                   ELSE m.meta_pricing_category END)
                IS DISTINCT FROM p.pricing_category THEN 'category'
           WHEN m.meta_billable IS DISTINCT FROM p.billable THEN 'billable'
         END AS reason
  FROM message_pricing p JOIN messages m ON m.message_id = p.message_id
  WHERE p.event_at >= $month_start AND p.event_at < $month_end
    AND ($account IS NULL OR p.account_id = $account)
),
shares AS (
  SELECT account_id,
         round(100.0 * count(reason) / count(*), 2) AS differing_pct
  FROM labelled GROUP BY account_id
)
SELECT l.message_id, l.account_id, l.customer_id, l.event_at, l.rule_set,
       l.pricing_category, l.billable, l.meta_pricing_category, l.meta_billable,
       l.reason, s.differing_pct
FROM labelled l JOIN shares s ON s.account_id = l.account_id
WHERE l.reason IS NOT NULL
ORDER BY l.event_at, l.message_id;
