-- name: conversations-by-category
-- description: 24-hour conversations opened in the month, by category
-- param: month month required The month: YYYY-MM, current or previous
-- param: account text optional Only this account
SELECT category, count(*) AS conversations
FROM conversations
WHERE opened_at >= $month_start AND opened_at < $month_end
  AND ($account IS NULL OR account_id = $account)
GROUP BY category
ORDER BY category;
