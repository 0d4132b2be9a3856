-- name: billable-messages
-- description: Delivered messages of the month and the billable ones, by account, country and pricing category, priced by the rules in force (or --rules)
-- param: month month required The month: YYYY-MM, current or previous
-- param: account text optional Only this account
--
-- From July 2025 every delivered message has a pricing category; before,
-- under conversation-based pricing, only the messages that opened a
-- conversation have one (the conversation's category) and are the charged
-- units. A message belongs to the month of its delivery.
SELECT account_id, country, pricing_category,
       count(*) AS messages,
       count(*) FILTER (WHERE billable) AS billable_messages
FROM message_pricing
WHERE event_at >= $month_start AND event_at < $month_end
  AND pricing_category IS NOT NULL
  AND ($account IS NULL OR account_id = $account)
GROUP BY account_id, country, pricing_category
ORDER BY account_id, country, pricing_category;
