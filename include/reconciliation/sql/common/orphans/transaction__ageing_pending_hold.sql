-- 6.3-f (a WARNING, not a consistency violation): a PENDING transaction holds funds longer than the
-- business SLA :pending_max_age (reference §6.3-f, §6.6 "PENDING transactions are a different kind of
-- unsettled"). Commit or cancel it.
-- Age: since the last write, GREATEST(updated_at, UUIDv7 id time) — never created_at (it can be backdated).
-- Entity: the transaction id.
-- Window scope: PENDING transactions written in the window or with an operation written in it.
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
)
SELECT t.id::text AS entity, t.organization_id, t.ledger_id, t.id AS transaction_id,
       t.amount, t.asset_code, t.updated_at
FROM "transaction" t
WHERE t.deleted_at IS NULL
  AND t.status = 'PENDING'
  AND (:full_scope OR t.id = ANY (ARRAY(SELECT id FROM win)))
  AND t.updated_at < :pending_before
  AND NOT (t.id >= :pending_id_lower AND t.id < :future_id_lower)
