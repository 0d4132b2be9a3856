-- name: a
-- description: d
-- param: month month required M
-- param: q int>0 optional Q
-- setting: service_allowance
-- table: rates
-- require-non-null: price where pricing_category unless allow_missing_rates
SELECT 1