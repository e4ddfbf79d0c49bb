-- Balances touched by the recent operations (reference §6.6): is each one settled in PostgreSQL, i.e. is
-- pg.version at least the highest version those operations gave it? Not an invariant (metrics only; lost
-- flushes are reported by redis_sync and balances). Recent = operation ids in the window (UUIDv7, PK range),
-- or the last hard-grace period at full scope. Legacy 0/0 operations cannot tell and are skipped.
-- Only the lagging balances leave the database; the settled rest is one summary row (id NULL) of counts.
WITH recent_ops AS (
  SELECT o.balance_id,
         MAX(o.balance_version_after) AS op_version,
         MAX(GREATEST(o.updated_at,
             to_timestamp((('x'||substr(replace(o.id::text,'-',''),1,12))::bit(48)::bigint)/1000.0))) AS written_at
  FROM operation o
  WHERE o.deleted_at IS NULL AND o.balance_affected AND o.balance_version_after > 0
    AND ((:full_scope AND o.id >= :recent_lower) OR (NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper))
  GROUP BY o.balance_id
), facts AS (
  SELECT b.id,
         b.organization_id::text || ':' || b.ledger_id::text || ':' || b.alias || '#' || b.key AS identity,
         COALESCE(b.version, 0) AS pg_version,
         r.op_version,
         GREATEST(r.written_at, b.updated_at) AS written_at
  FROM recent_ops r
  JOIN balance b ON b.id = r.balance_id
)
SELECT f.id, f.identity, f.pg_version, f.op_version, f.written_at, NULL::bigint AS n_settled
FROM facts f
WHERE f.pg_version < f.op_version
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, COUNT(*)
FROM facts f
WHERE f.pg_version >= f.op_version
