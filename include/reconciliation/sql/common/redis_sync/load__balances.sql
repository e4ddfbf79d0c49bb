-- The PostgreSQL side of one SCAN batch of Redis balance keys (reference §6.5 step 3). Not an invariant: the
-- check classifies each key in Python and Great Expectations judges the classes.
-- Bound as two comma-separated psycopg text parameters (one string each: dumping 1000-element arrays costs
-- more than the query), one element per key: ord (position in the batch) and rid (the ID in the value). Returns the balance row the value names (by primary key, live or deleted) with its identity,
-- and the balance's operation high-water mark L: its last balance_affected operation by
-- balance_version_after DESC, created_at DESC, id DESC (§5.7; never created_at alone, it can be backdated),
-- found through the (org, ledger, account_id, …) operation indexes (R1 idx_operation_account_id, R2 the
-- balance-pit index). Keys whose row is missing, deleted or of another identity are looked up again by
-- identity (load__balances_by_identity.sql): rare, so the common path is one PK probe + one index probe.
WITH k AS (
  SELECT * FROM unnest(string_to_array(%(ord)s, ',')::int[], string_to_array(%(rid)s, ',')::uuid[]) AS k(ord, rid)
)
SELECT k.ord,
       b.id::text AS id,
       b.organization_id::text AS organization_id,
       b.ledger_id::text AS ledger_id,
       b.alias,
       b.key,
       b.available,
       b.on_hold,
       COALESCE(b.version, 0) AS version,
       b.deleted_at IS NOT NULL AS deleted,
       b.updated_at,
       l.id::text AS op_id,
       l.transaction_id::text AS op_transaction_id,
       l.available_balance_after AS op_available,
       l.on_hold_balance_after AS op_on_hold,
       l.balance_version_after AS op_version,
       to_timestamp((('x'||substr(replace(l.id::text,'-',''),1,12))::bit(48)::bigint)/1000.0) AS op_written_at
FROM k
JOIN balance b ON b.id = k.rid
LEFT JOIN LATERAL (
  SELECT o.id, o.transaction_id, o.available_balance_after, o.on_hold_balance_after, o.balance_version_after
  FROM operation o
  WHERE o.organization_id = b.organization_id AND o.ledger_id = b.ledger_id AND o.account_id = b.account_id
    AND o.balance_id = b.id AND o.deleted_at IS NULL AND o.balance_affected
  ORDER BY o.balance_version_after DESC, o.created_at DESC, o.id DESC
  LIMIT 1
) l ON TRUE
