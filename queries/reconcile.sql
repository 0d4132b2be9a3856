-- name: reconcile
-- description: Our pricing of the month's delivered messages against the platform's own labels (a log written by ingest), by account, country and our pricing category, then a total; months priced by cbp compare conversations
-- param: month month required The month: YYYY-MM, current or previous
-- param: account text optional Only this account
--
-- A message differs when the platform's pricing category or billable flag
-- is not ours, or when it has no label (authentication_international is
-- an authentication message at another rate). The platform calls a free
-- entry point conversation referral_conversion; cbp's category is free_entry. Under cbp the charged units
-- are conversations: ours (the billable ones, by category) against the
-- platform's distinct billable conversation ids by origin, and the rows'
-- messages_differing is the gap between the two counts. differing_pct
-- (messages_differing of messages) is what --alert-at watches.
WITH labelled AS (
  SELECT p.account_id, p.country, p.pricing_category, p.rule_set, p.billable,
         CASE m.meta_pricing_category WHEN 'authentication_international' THEN 'authentication'
              ELSE m.meta_pricing_category END AS meta_category,
         m.meta_billable, m.meta_conversation_id,
         CASE m.meta_conversation_origin WHEN 'authentication_international' THEN 'authentication'
              WHEN 'referral_conversion' THEN 'free_entry'
              ELSE m.meta_conversation_origin END AS meta_origin
  FROM message_pricing p JOIN messages m ON m.message_id = p.message_id
  WHERE p.event_at >= $month_start AND p.event_at < $month_end
    AND ($account IS NULL OR p.account_id = $account)
),
by_message AS (
  SELECT account_id, country, pricing_category,
         count(*) AS messages,
         count(*) FILTER (WHERE billable) AS billable_messages,
         count(*) FILTER (WHERE meta_billable) AS meta_billable_messages,
         count(*) FILTER (WHERE (meta_category IS DISTINCT FROM pricing_category)
                             OR (meta_billable IS DISTINCT FROM billable)) AS messages_differing
  FROM labelled WHERE rule_set <> 'cbp'
  GROUP BY account_id, country, pricing_category
),
ours_cbp AS (
  SELECT account_id, country, pricing_category, count(*) AS conversations
  FROM labelled WHERE rule_set = 'cbp' AND billable
  GROUP BY account_id, country, pricing_category
),
platform_cbp AS (
  SELECT account_id, country, meta_origin AS pricing_category,
         count(DISTINCT meta_conversation_id) AS conversations
  FROM labelled WHERE rule_set = 'cbp' AND meta_billable AND meta_conversation_id IS NOT NULL
  GROUP BY account_id, country, meta_origin
),
by_conversation AS (
  SELECT coalesce(o.account_id, t.account_id) AS account_id,
         coalesce(o.country, t.country) AS country,
         coalesce(o.pricing_category, t.pricing_category) AS pricing_category,
         coalesce(o.conversations, 0) AS messages,
         coalesce(o.conversations, 0) AS billable_messages,
         coalesce(t.conversations, 0) AS meta_billable_messages,
         abs(coalesce(o.conversations, 0) - coalesce(t.conversations, 0)) AS messages_differing
  FROM ours_cbp o FULL JOIN platform_cbp t
    ON o.account_id = t.account_id AND o.country = t.country
   AND o.pricing_category = t.pricing_category
),
compared AS (
  SELECT * FROM by_message UNION ALL SELECT * FROM by_conversation
)
SELECT account_id, country, pricing_category, messages, billable_messages,
       meta_billable_messages, messages_differing,
       round(100.0 * messages_differing / nullif(messages, 0), 2) AS differing_pct
FROM (
  SELECT 0 AS total_row, * FROM compared
  UNION ALL
  SELECT 1, NULL, NULL, NULL, sum(messages), sum(billable_messages),
         sum(meta_billable_messages), sum(messages_differing)
  FROM compared
)
ORDER BY total_row, account_id, country, pricing_category;
