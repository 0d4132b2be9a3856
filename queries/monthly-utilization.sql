-- name: monthly-utilization
-- description: Delivered messages against the monthly quota, per account then in total, with a linear month-end projection and the billable units by the rules in force
-- param: month month required The month: YYYY-MM, current or previous
-- param: quota int>0 optional The contract's monthly quota for all accounts (or give --table contracts=FILE with account_id, monthly_quota)
-- param: account text optional Only this account
--
-- A delivered message belongs to the month of its delivered_at; a
-- conversation to the month of its opened_at (conversations come from each
-- customer's whole history, so one carried over is not counted again).
WITH per_account AS (
  SELECT account_id,
         count(*) FILTER (WHERE direction = 'outbound'
                            AND delivered_at >= $month_start AND delivered_at < $month_end) AS delivered_messages,
         count(*) FILTER (WHERE opened_category IS NOT NULL
                            AND event_at >= $month_start AND event_at < $month_end) AS conversations
  FROM message_conversations
  WHERE $account IS NULL OR account_id = $account
  GROUP BY account_id
),
billable AS (
  SELECT account_id, count(*) FILTER (WHERE billable) AS billable_messages
  FROM message_pricing
  WHERE event_at >= $month_start AND event_at < $month_end
  GROUP BY account_id
),
with_quota AS (
  SELECT p.account_id, p.delivered_messages, p.conversations,
         coalesce(b.billable_messages, 0) AS billable_messages,
         CAST(c.monthly_quota AS BIGINT) AS contract_quota
  FROM per_account p
  LEFT JOIN billable b ON b.account_id = p.account_id
  LEFT JOIN contracts c ON c.account_id = p.account_id
),
has_contracts AS (SELECT count(*) > 0 AS yes FROM contracts),
report AS (
  SELECT account_id, delivered_messages, conversations, billable_messages,
         CASE WHEN (SELECT yes FROM has_contracts) THEN contract_quota ELSE $quota END AS quota
  FROM with_quota
  UNION ALL
  SELECT NULL, sum(delivered_messages), sum(conversations), sum(billable_messages),
         CASE WHEN (SELECT yes FROM has_contracts) THEN sum(contract_quota) ELSE $quota END
  FROM with_quota
)
SELECT $month AS month,
       account_id,
       quota,
       delivered_messages,
       conversations,
       billable_messages,
       round(100.0 * delivered_messages / quota, 4) AS quota_used_pct,
       $days_elapsed AS days_elapsed,
       CASE WHEN $days_elapsed > 0
            THEN CAST(round(delivered_messages * $days_in_month / CAST($days_elapsed AS DOUBLE)) AS BIGINT)
       END AS projected_messages,
       CASE WHEN $days_elapsed > 0
            THEN round(100.0 * (delivered_messages * $days_in_month / CAST($days_elapsed AS DOUBLE)) / quota, 4)
       END AS projected_pct
FROM report
ORDER BY account_id NULLS LAST;
