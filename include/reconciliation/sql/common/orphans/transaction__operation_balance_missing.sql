-- 6.3-c: a live operation's balance_id names a balance row (reference §6.3; operation.balance_id has no FK).
-- A soft-deleted balance still counts as existing: deleting a balance keeps its operations (§5.5).
-- Entity: the operation id.
-- In flight (skipped): the operation was written within the soft grace (updated_at or UUIDv7 id time).
-- Window scope: operations written in [start, end) (UUIDv7 primary-key range).
SELECT o.id::text AS entity, o.organization_id, o.ledger_id, o.transaction_id, o.id AS operation_id,
       o.balance_id, o.account_id, o.account_alias, o.balance_key, o.asset_code
FROM operation o
WHERE o.deleted_at IS NULL
  AND (:full_scope OR (o.id >= :id_lower AND o.id < :id_upper))
  AND o.updated_at < :settled_before
  AND NOT (o.id >= :young_id_lower AND o.id < :future_id_lower)
  AND NOT EXISTS (SELECT 1 FROM balance b WHERE b.id = o.balance_id)
