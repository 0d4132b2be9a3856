-- name: overall-vs-usage
-- description: Messages sent, delivered and failed beside conversations: why "messages" and "conversations" differ
-- param: month month required The month: YYYY-MM, current or previous
--
-- A message belongs to the month of its delivered_at when delivered, else
-- of its sent_at. Many messages fall in one 24-hour conversation, and
-- undelivered ones open none: so conversations < delivered <= sent.
SELECT
  count(*) FILTER (WHERE direction = 'outbound'
                     AND coalesce(delivered_at, sent_at) >= $month_start
                     AND coalesce(delivered_at, sent_at) < $month_end) AS sent_messages,
  count(*) FILTER (WHERE direction = 'outbound'
                     AND delivered_at >= $month_start AND delivered_at < $month_end) AS delivered_messages,
  count(*) FILTER (WHERE direction = 'outbound' AND delivered_at IS NULL AND status = 'failed'
                     AND sent_at >= $month_start AND sent_at < $month_end) AS failed_messages,
  count(*) FILTER (WHERE opened_category IS NOT NULL
                     AND event_at >= $month_start AND event_at < $month_end) AS conversations
FROM message_conversations;
