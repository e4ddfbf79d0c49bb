-- 6.3-c: a live operation's balance row has the operation's account, asset, key, alias, organization and
-- ledger (reference §6.3). Alias, asset and account type are immutable (§2.1), so any difference means the
-- operation was booked on another balance than the one it names.
-- Entity: the operation id. Evidence: the balance's values next to the operation's.
-- In flight (skipped): the operation was written within the soft grace (updated_at or UUIDv7 id time).
-- Window scope: operations written in [start, end) (UUIDv7 primary-key range).
SELECT o.id::text AS entity, o.organization_id, o.ledger_id, o.transaction_id, o.id AS operation_id,
       o.balance_id, o.account_id,
       o.account_alias, b.alias AS balance_alias, o.balance_key, b.key AS balance_key_of_row,
       o.asset_code, b.asset_code AS balance_asset_code, b.account_id AS balance_account_id,
       b.organization_id AS balance_organization_id, b.ledger_id AS balance_ledger_id
FROM operation o
JOIN balance b ON b.id = o.balance_id
WHERE o.deleted_at IS NULL
  AND (:full_scope OR (o.id >= :id_lower AND o.id < :id_upper))
  AND o.updated_at < :settled_before
  AND NOT (o.id >= :young_id_lower AND o.id < :future_id_lower)
  AND (b.account_id <> o.account_id OR b.asset_code <> o.asset_code OR b.key <> o.balance_key
       OR b.alias <> o.account_alias OR b.organization_id <> o.organization_id OR b.ledger_id <> o.ledger_id)
