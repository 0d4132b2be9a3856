-- One row per (account, customer) pair: the customer is its number's
-- digits (spec: `+6281…` and `6281…` are one customer), the country comes
-- from the number, and wa_messages runs the rules over the pair's whole
-- history. Not a user view: conversations, message_conversations and
-- message_pricing read it.
SELECT account_id,
       '+' || customer_key AS customer_id,
       phone_country(customer_key) AS country,
       wa_messages(message_id, direction, message_type, category, status,
                   sent_at, delivered_at, entry_point, '{rules}') AS msgs
FROM (SELECT *, wa_customer_key(customer_id) AS customer_key FROM messages_raw)
GROUP BY account_id, customer_key
