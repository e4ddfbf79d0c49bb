-- 6.3-a: a settled, live transaction has at least one live operation (reference §6.3).
-- Midaz writes the transaction row before its operations, in separate statements (§6.6), so a row without
-- operations is a half-written transaction once it is past the soft grace — unless a backup-queue entry
-- for it (the recovery log, §4.4) is still pending and the transaction is younger than the hard grace.
-- Entity: the transaction id.
-- In flight (skipped): written within the soft grace (updated_at or UUIDv7 id time, never created_at), or
-- named in :evidence_txids (a backup-queue entry younger than the hard grace: Midaz may still write them).
-- Window scope: transactions written in the window, or with an operation written in it (UUIDv7 id ranges).
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
)
SELECT t.id::text AS entity, t.organization_id, t.ledger_id, t.id AS transaction_id,
       t.status, t.amount, t.asset_code, t.updated_at
FROM "transaction" t
WHERE t.deleted_at IS NULL
  AND (:full_scope OR t.id = ANY (ARRAY(SELECT id FROM win)))
  AND t.updated_at < :settled_before
  AND NOT (t.id >= :young_id_lower AND t.id < :future_id_lower)
  AND NOT (t.id = ANY(:evidence_txids::uuid[]))
  AND NOT EXISTS (SELECT 1 FROM operation o WHERE o.transaction_id = t.id AND o.deleted_at IS NULL)
