-- Settlement facts of the recent transactions (reference §6.6; not an invariant: the check classifies them).
-- Recent = written in the window by UUIDv7 id, or given an operation in it (commit/cancel of an older
-- pending); at full scope, the last hard-grace period (:recent_lower). Both are primary-key ranges.
-- written_at = GREATEST(updated_at, UUIDv7 time) of the row and its operations, never created_at (§5.8).
-- complete = a final status (APPROVED / CANCELED / NOTED, or PENDING with its body: a hold), operations
-- present, and no balance behind: pg.version >= the version this transaction's operation gave it (settled
-- condition 3; legacy 0/0 rows cannot tell and are skipped). behind_keys = those balances' identities.
-- Only the rows Python must look at leave the database: incomplete ones, PENDING ones (a pending_transaction
-- lock may show their commit running) and those a backup-queue entry names (bound as the psycopg array
-- entry_ids); the complete rest is one summary row (id NULL) with its count.
WITH recent AS (
  SELECT t.id
  FROM "transaction" t
  WHERE t.deleted_at IS NULL
    AND ((:full_scope AND t.id >= :recent_lower) OR (NOT :full_scope AND t.id >= :id_lower AND t.id < :id_upper))
  UNION
  SELECT o.transaction_id
  FROM operation o
  WHERE o.deleted_at IS NULL
    AND ((:full_scope AND o.id >= :recent_lower) OR (NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper))
), facts AS (
  SELECT t.id,
         t.organization_id,
         t.ledger_id,
         t.status,
         t.body IS NOT NULL AS has_body,
         GREATEST(t.updated_at,
                  to_timestamp((('x'||substr(replace(t.id::text,'-',''),1,12))::bit(48)::bigint)/1000.0),
                  MAX(o.updated_at),
                  MAX(to_timestamp((('x'||substr(replace(o.id::text,'-',''),1,12))::bit(48)::bigint)/1000.0)))
           AS written_at,
         COUNT(o.id) AS n_ops,
         array_agg(b.organization_id::text || ':' || b.ledger_id::text || ':' || b.alias || '#' || b.key)
           FILTER (WHERE o.balance_affected AND o.balance_version_after > 0
                     AND COALESCE(b.version, 0) < o.balance_version_after) AS behind_keys
  FROM recent r
  JOIN "transaction" t ON t.id = r.id
  LEFT JOIN operation o ON o.transaction_id = t.id AND o.deleted_at IS NULL
  LEFT JOIN balance b ON b.id = o.balance_id
  GROUP BY t.id
), judged AS (
  SELECT f.*,
         (f.status IN ('APPROVED', 'CANCELED', 'NOTED') OR (f.status = 'PENDING' AND f.has_body))
           AND f.n_ops > 0 AND f.behind_keys IS NULL AS complete
  FROM facts f
)
SELECT j.id, j.organization_id, j.ledger_id, j.status, j.has_body, j.written_at, j.n_ops, j.behind_keys,
       NULL::bigint AS n_settled
FROM judged j
WHERE NOT j.complete OR j.status = 'PENDING' OR j.id = ANY(%(entry_ids)s::uuid[])
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, COUNT(*)
FROM judged j
WHERE j.complete AND j.status <> 'PENDING' AND NOT (j.id = ANY(%(entry_ids)s::uuid[]))
