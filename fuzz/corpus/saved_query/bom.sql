-- name: bom
SELECT 1