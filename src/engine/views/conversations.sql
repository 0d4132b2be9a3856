-- The 24-hour conversations (rule set cbp, the usage metric) of every
-- (account, customer) pair, one row each. A conversation belongs to the
-- month of its opened_at.
SELECT account_id,
       '+' || customer_key AS customer_id,
       country,
       c['category'] AS category,
       c['opened_at'] AS opened_at,
       c['expires_at'] AS expires_at,
       c['opening_message_id'] AS opening_message_id
FROM (
  SELECT account_id, customer_key, phone_country(customer_key) AS country, unnest(convs) AS c
  FROM (
    SELECT account_id, wa_customer_key(customer_id) AS customer_key,
           wa_conversations(message_id, direction, message_type, category, status,
                            sent_at, delivered_at, entry_point) AS convs
    FROM messages_raw
    GROUP BY account_id, wa_customer_key(customer_id)
  )
)
