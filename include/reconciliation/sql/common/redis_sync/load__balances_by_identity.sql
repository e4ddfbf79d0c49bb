-- The live PostgreSQL balance rows of Redis keys whose value's ID found no row of the key's identity
-- (reference §6.5 step 4: "redis.ID ≠ the PostgreSQL id for the same (org, ledger, alias, key)"). Bound with
-- psycopg arrays, one element per key: ord, org, ledger, alias, key (parsed from the Redis key).
-- Uses idx_unique_balance_alias_key (org, ledger, alias, key) WHERE deleted_at IS NULL.
WITH k AS (
  SELECT *
  FROM unnest(%(ord)s::int[], %(org)s::uuid[], %(ledger)s::uuid[], %(alias)s::text[], %(key)s::text[])
    AS k(ord, org, ledger, alias, key)
)
SELECT k.ord, b.id::text AS id
FROM k
CROSS JOIN LATERAL (
  SELECT b.id
  FROM balance b
  WHERE b.organization_id = k.org AND b.ledger_id = k.ledger AND b.alias = k.alias AND b.key = k.key
    AND b.deleted_at IS NULL
) b
