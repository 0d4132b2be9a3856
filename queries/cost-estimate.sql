-- name: cost-estimate
-- description: Estimated cost of the month's billable units from a rate card (--table rates=FILE with country, pricing_category, price, currency), then one total per currency
-- param: month month required The month: YYYY-MM, current or previous
-- param: allow_missing_rates bool default=false Report units without a rate (price NULL) without failing
-- table: rates
-- require-non-null: price where pricing_category unless allow_missing_rates
--
-- Before 2024-11-01 each account's first 1,000 service conversations of
-- the month were free: they are billable in message_pricing and the
-- allowance is applied here, in order of opening.
WITH priced AS (
  SELECT account_id, country, pricing_category, rule_set, event_at, message_id
  FROM message_pricing
  WHERE billable AND event_at >= $month_start AND event_at < $month_end
),
ranked AS (
  SELECT *,
         CASE WHEN rule_set = 'cbp' AND pricing_category = 'service'
                   AND event_at < TIMESTAMP '2024-11-01T00:00:00Z'
              THEN row_number() OVER (PARTITION BY account_id, rule_set, pricing_category
                                      ORDER BY event_at, message_id)
         END AS free_service_rank
  FROM priced
),
units AS (
  SELECT account_id, country, pricing_category,
         count(*) FILTER (WHERE free_service_rank IS NULL OR free_service_rank > 1000) AS billable_messages
  FROM ranked
  GROUP BY account_id, country, pricing_category
),
lines AS (
  SELECT u.account_id, u.country, u.pricing_category, u.billable_messages,
         CAST(r.price AS DECIMAL(24, 10)) AS price,
         r.currency,
         CAST(u.billable_messages AS DECIMAL(20, 0)) * CAST(r.price AS DECIMAL(24, 10)) AS cost
  FROM units u
  LEFT JOIN rates r ON r.country = u.country AND r.pricing_category = u.pricing_category
  WHERE u.billable_messages > 0
)
SELECT account_id, country, pricing_category, billable_messages, price, currency, cost
FROM (
  SELECT 0 AS total_row, * FROM lines
  UNION ALL
  SELECT 1, NULL, NULL, NULL, sum(billable_messages), NULL, currency, sum(cost)
  FROM lines WHERE currency IS NOT NULL GROUP BY currency
)
ORDER BY total_row, currency NULLS FIRST, account_id, country, pricing_category;
