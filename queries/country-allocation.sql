-- name: country-allocation
-- description: Delivered messages and conversations of the month by the customer's country, with shares
-- param: month month required The month: YYYY-MM, current or previous
WITH per_country AS (
  SELECT country,
         count(*) FILTER (WHERE direction = 'outbound'
                            AND delivered_at >= $month_start AND delivered_at < $month_end) AS delivered_messages,
         count(*) FILTER (WHERE opened_category IS NOT NULL
                            AND event_at >= $month_start AND event_at < $month_end) AS conversations
  FROM message_conversations
  GROUP BY country
)
SELECT country,
       delivered_messages,
       conversations,
       round(100.0 * delivered_messages / nullif(sum(delivered_messages) OVER (), 0), 4) AS delivered_share_pct,
       round(100.0 * conversations / nullif(sum(conversations) OVER (), 0), 4) AS conversations_share_pct
FROM per_country
WHERE delivered_messages > 0 OR conversations > 0
ORDER BY delivered_messages DESC, country;
