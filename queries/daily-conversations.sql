-- name: daily-conversations
-- description: Conversations opened per day (UTC) and category, for charts
-- param: month month required The month: YYYY-MM, current or previous
SELECT CAST(date_trunc('day', opened_at) AS DATE) AS day, category, count(*) AS conversations
FROM conversations
WHERE opened_at >= $month_start AND opened_at < $month_end
GROUP BY 1, 2
ORDER BY 1, 2;
