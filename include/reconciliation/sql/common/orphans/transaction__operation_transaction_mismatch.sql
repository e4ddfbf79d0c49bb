-- 6.3-b: a live operation belongs to a live transaction of the same organization and ledger (reference §6.3).
-- operation.transaction_id has an FK, so a missing parent should be impossible; it is reported too (as a
-- NULL transaction_status) in case a deployment lacks the FK.
-- Entity: the operation id.
-- In flight (skipped): the operation was written within the soft grace (updated_at or UUIDv7 id time).
-- Window scope: operations written in [start, end) (UUIDv7 primary-key range).
SELECT o.id::text AS entity, o.organization_id, o.ledger_id, o.transaction_id, o.id AS operation_id,
       t.organization_id AS transaction_organization_id, t.ledger_id AS transaction_ledger_id,
       t.deleted_at AS transaction_deleted_at, (t.id IS NULL) AS transaction_missing
FROM operation o
LEFT JOIN "transaction" t ON t.id = o.transaction_id
WHERE o.deleted_at IS NULL
  AND (:full_scope OR (o.id >= :id_lower AND o.id < :id_upper))
  AND o.updated_at < :settled_before
  AND NOT (o.id >= :young_id_lower AND o.id < :future_id_lower)
  AND (t.id IS NULL OR t.deleted_at IS NOT NULL
       OR t.organization_id <> o.organization_id OR t.ledger_id <> o.ledger_id)
