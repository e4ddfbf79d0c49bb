-- 6.3-d: reversal integrity (reference §6.3, §5.1 "Reversals"). A live transaction with a
-- parent_transaction_id is a reversal; Midaz only reverts an APPROVED transaction that is not itself a
-- reversal, and the reversal is APPROVED with the parent's amount and asset, in the parent's ledger.
-- Violations: the parent is missing or soft-deleted, not APPROVED, itself a reversal, in another
-- organization/ledger, or has another amount or asset; or the reversal is not APPROVED.
-- Entity: the child (reversal) transaction id.
-- Known false negative (§4.4): a reversal recovered through the R1 backup queue has no parent link.
-- In flight (skipped): the reversal was written within the soft grace (updated_at or UUIDv7 id time).
-- Window scope: reversals written in the window or with an operation written in it.
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
)
SELECT c.id::text AS entity, c.organization_id, c.ledger_id, c.id AS transaction_id,
       c.parent_transaction_id, c.status, c.amount, c.asset_code,
       (p.id IS NULL) AS parent_missing, p.deleted_at AS parent_deleted_at, p.status AS parent_status,
       p.amount AS parent_amount, p.asset_code AS parent_asset_code,
       p.parent_transaction_id AS parent_is_reversal_of,
       p.organization_id AS parent_organization_id, p.ledger_id AS parent_ledger_id
FROM "transaction" c
LEFT JOIN "transaction" p ON p.id = c.parent_transaction_id
WHERE c.deleted_at IS NULL
  AND c.parent_transaction_id IS NOT NULL
  AND (:full_scope OR c.id = ANY (ARRAY(SELECT id FROM win)))
  AND c.updated_at < :settled_before
  AND NOT (c.id >= :young_id_lower AND c.id < :future_id_lower)
  AND (p.id IS NULL OR p.deleted_at IS NOT NULL OR p.status <> 'APPROVED' OR p.parent_transaction_id IS NOT NULL
       OR p.organization_id <> c.organization_id OR p.ledger_id <> c.ledger_id
       OR c.amount <> p.amount OR c.asset_code <> p.asset_code OR c.status <> 'APPROVED')
