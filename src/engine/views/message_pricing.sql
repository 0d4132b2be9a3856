-- One row per delivered outbound message, priced by the rule set chosen
-- (--rules / SET wausage.rules): auto (cbp before 2025-07-01, pmp from
-- then on, pmp26 from 2026-10-01), cbp, pmp or pmp26. The charged units
-- are the rows with billable true.
SELECT m['message_id'] AS message_id,
       account_id, customer_id, country,
       m['event_at'] AS event_at,
       m['category'] AS template_category,
       m['rule_set'] AS rule_set,
       m['pricing_category'] AS pricing_category,
       m['billable'] AS billable,
       m['outside_window'] AS outside_window
FROM (SELECT account_id, customer_id, country, unnest(msgs) AS m FROM wa_pairs)
WHERE m['rule_set'] IS NOT NULL
