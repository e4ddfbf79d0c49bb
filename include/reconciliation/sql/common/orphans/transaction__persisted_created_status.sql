-- 6.3-e: CREATED is a request-level status that Midaz never persists (reference §5.1: CreateOrUpdateTransaction
-- rewrites CREATED to APPROVED before the insert, at R1 and R2).
-- Entity: the transaction id.
-- In flight (skipped): written within the soft grace (updated_at or UUIDv7 id time).
-- Window scope: transactions written in the window or with an operation written in it.
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
)
SELECT t.id::text AS entity, t.organization_id, t.ledger_id, t.id AS transaction_id,
       t.status, t.status_description, t.updated_at
FROM "transaction" t
WHERE t.deleted_at IS NULL
  AND t.status = 'CREATED'
  AND (:full_scope OR t.id = ANY (ARRAY(SELECT id FROM win)))
  AND t.updated_at < :settled_before
  AND NOT (t.id >= :young_id_lower AND t.id < :future_id_lower)
