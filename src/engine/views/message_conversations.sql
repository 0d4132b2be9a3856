-- Every distinct message with its event time and what it did under the
-- 24-hour conversation rules: the category it opened (NULL when none) and
-- whether it was a free-form message outside the customer service window.
SELECT account_id, customer_id, country,
       m['message_id'] AS message_id,
       m['direction'] AS direction,
       m['message_type'] AS message_type,
       m['category'] AS category,
       m['status'] AS status,
       m['sent_at'] AS sent_at,
       m['delivered_at'] AS delivered_at,
       m['event_at'] AS event_at,
       m['opened_category'] AS opened_category,
       m['opened_expires_at'] AS opened_expires_at,
       m['conversation_outside_window'] AS outside_window
FROM (SELECT account_id, customer_id, country, unnest(msgs) AS m FROM wa_pairs)
