-- name: reconcile-daily
-- description: Our billable messages per day, country and pricing category against the platform's pricing_analytics (--table meta_analytics=FILE.json, the Graph API's response, granularity DAILY)
-- param: month month required The month: YYYY-MM, current or previous
-- table: meta_analytics
--
-- The platform's side is the volume of its data points of pricing_type
-- regular (the charged ones) of each UTC day; ours the billable messages
-- of message_pricing. difference is ours minus the platform's, and
-- differing_pct (the difference's share of the larger side) is what
-- --alert-at watches.
WITH ours AS (
  SELECT CAST(date_trunc('day', event_at) AS DATE) AS day, country, pricing_category,
         count(*) AS n
  FROM message_pricing
  WHERE event_at >= $month_start AND event_at < $month_end AND billable
  GROUP BY 1, 2, 3
),
platform AS (
  SELECT day, country,
         CASE pricing_category WHEN 'authentication_international' THEN 'authentication'
              ELSE pricing_category END AS pricing_category,
         sum(volume) AS n
  FROM meta_analytics
  WHERE pricing_type = 'regular'
    AND day >= CAST($month_start AS DATE) AND day < CAST($month_end AS DATE)
  GROUP BY 1, 2, 3
)
SELECT coalesce(o.day, p.day) AS day,
       coalesce(o.country, p.country) AS country,
       coalesce(o.pricing_category, p.pricing_category) AS pricing_category,
       coalesce(o.n, 0) AS ours,
       coalesce(p.n, 0) AS platform,
       coalesce(o.n, 0) - coalesce(p.n, 0) AS difference,
       round(100.0 * abs(coalesce(o.n, 0) - coalesce(p.n, 0))
             / nullif(greatest(coalesce(o.n, 0), coalesce(p.n, 0)), 0), 2) AS differing_pct
FROM ours o FULL JOIN platform p
  ON o.day = p.day AND o.country = p.country AND o.pricing_category = p.pricing_category
ORDER BY day, country, pricing_category;
