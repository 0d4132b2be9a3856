-- name: cost-estimate
-- description: Estimated cost of the month's billable units from a rate card (--table rates=FILE with country, pricing_category, price, currency, optionally effective_from), the free allowances as their own negative rows, then one total per currency
-- param: month month required The month: YYYY-MM, current or previous
-- param: allow_missing_rates bool default=false Report units without a rate (price NULL) without failing
-- setting: service_allowance
-- table: rates
-- require-non-null: price where pricing_category unless allow_missing_rates
--
-- Each unit takes the rate card row in force on its event date (UTC), per
-- currency of the card: the latest effective_from on or before it; a row
-- without effective_from applies to every date. Under pmp26 a service
-- message takes the country's utility rate unless a service row for the
-- country is in force in that currency.
--
-- Allowances (their own rows, negative billable_messages and cost, so that
-- the total row is the bill):
-- - pmp26 (rule P5): each business phone number's first
--   wausage.service_allowance billable service messages of a UTC month
--   (per phone_number_id when the log has it, else per account);
-- - cbp before 2024-11-01: each account's first 1,000 service
--   conversations of a month.
-- Both in order of event time, ties by message id.
WITH priced AS (
  -- From the start of the UTC month the window begins in, so that the
  -- allowance ranks count from the month's first message whatever tz says.
  SELECT p.account_id, p.country, p.pricing_category, p.rule_set, p.event_at, p.message_id,
         CASE
           WHEN p.rule_set = 'pmp26' AND p.pricing_category = 'service' THEN 'pmp26'
           WHEN p.rule_set = 'cbp' AND p.pricing_category = 'service'
                AND p.event_at < TIMESTAMP '2024-11-01T00:00:00Z' THEN 'cbp'
         END AS allowance
  FROM message_pricing p
  WHERE p.billable AND p.event_at >= date_trunc('month', $month_start) AND p.event_at < $month_end
),
ranked AS (
  SELECT *, CAST(NULL AS BOOLEAN) AS free FROM priced WHERE allowance IS NULL
  UNION ALL
  SELECT account_id, country, pricing_category, rule_set, event_at, message_id, allowance,
         allowance_rank <= CASE allowance WHEN 'cbp' THEN 1000 ELSE service_allowance END
  FROM (
    SELECT p.*, w.service_allowance,
           row_number() OVER (
             PARTITION BY p.allowance, p.account_id,
                          CASE WHEN p.allowance = 'pmp26' THEN n.phone_number_id END,
                          date_trunc('month', p.event_at)
             ORDER BY p.event_at, p.message_id) AS allowance_rank
    FROM priced p
    CROSS JOIN wa_settings w
    LEFT JOIN wa_phone_numbers n ON p.allowance = 'pmp26' AND n.message_id = p.message_id
    WHERE p.allowance IS NOT NULL
  )
),
daily AS (
  SELECT account_id, country, pricing_category,
         rule_set = 'pmp26' AND pricing_category = 'service' AS utility_fallback,
         CAST(event_at AS DATE) AS event_date,
         count(*) AS messages,
         count(*) FILTER (WHERE free) AS free_messages
  FROM ranked
  WHERE event_at >= $month_start
  GROUP BY 1, 2, 3, 4, 5
),
rated AS (
  -- Per currency of the card, the row in force on the day: the unit's own
  -- category first (a pmp26 service message falls back to utility), then
  -- the latest effective_from. No row in force leaves the price NULL.
  SELECT d.*, c.price, c.currency,
         row_number() OVER (
           PARTITION BY d.account_id, d.country, d.pricing_category, d.utility_fallback,
                        d.event_date, c.currency
           ORDER BY CASE WHEN c.pricing_category = d.pricing_category THEN 0 ELSE 1 END,
                    c.effective_from DESC NULLS LAST) AS latest
  FROM daily d
  LEFT JOIN rate_card c
    ON c.country = d.country
   AND (c.pricing_category = d.pricing_category
        OR (d.utility_fallback AND c.pricing_category = 'utility'))
   AND (c.effective_from IS NULL OR c.effective_from <= d.event_date)
),
lines AS (
  SELECT account_id, country, pricing_category, 0 AS allowance_line,
         sum(messages) AS billable_messages, price, currency
  FROM rated WHERE latest = 1
  GROUP BY account_id, country, pricing_category, price, currency
  UNION ALL
  SELECT account_id, country, pricing_category, 1,
         -sum(free_messages), price, currency
  FROM rated WHERE latest = 1 AND free_messages > 0
  GROUP BY account_id, country, pricing_category, price, currency
),
costed AS (
  SELECT account_id, country, pricing_category, allowance_line,
         CAST(billable_messages AS BIGINT) AS billable_messages, price, currency,
         CAST(billable_messages AS DECIMAL(20, 0)) * price AS cost
  FROM lines
  WHERE billable_messages <> 0
)
SELECT account_id, country, pricing_category, billable_messages, price, currency, cost
FROM (
  SELECT 0 AS total_row, * FROM costed
  UNION ALL
  SELECT 1, NULL, NULL, NULL, 0, sum(billable_messages), NULL, currency, sum(cost)
  FROM costed WHERE currency IS NOT NULL GROUP BY currency
)
ORDER BY total_row, currency NULLS FIRST, account_id, country, pricing_category, allowance_line, price;
