-- Invariant (reference §6.4, onboarding): a parent account lives in the same organization, ledger and
-- asset as its child. Scope: every account with a parent; window scope = children written in the window.
-- Children written within the soft grace are in flight and skipped.
-- Settled (past the soft grace) = updated_at (and deleted_at) before :settled_before and, for a UUIDv7
-- id, the id below :id_settled (the smallest UUIDv7 of that instant: "UUIDv7 time before it").
SELECT a.id::text          AS entity,
       a.id                AS account_id,
       a.organization_id,
       a.ledger_id,
       a.asset_code,
       p.id                AS parent_account_id,
       p.organization_id   AS parent_organization_id,
       p.ledger_id         AS parent_ledger_id,
       p.asset_code        AS parent_asset_code
FROM account a
JOIN account p ON p.id = a.parent_account_id
WHERE (p.ledger_id <> a.ledger_id OR p.organization_id <> a.organization_id OR p.asset_code <> a.asset_code)
  AND a.updated_at < :settled_before
  AND (a.deleted_at IS NULL OR a.deleted_at < :settled_before)
  AND (a.id < :id_settled OR get_byte(uuid_send(a.id), 6) >> 4 <> 7)
  AND (:full_scope
       OR (a.id >= :id_lower AND a.id < :id_upper AND get_byte(uuid_send(a.id), 6) >> 4 = 7)
       OR (a.updated_at >= :win_start AND a.updated_at < :win_end)
       OR (a.deleted_at >= :win_start AND a.deleted_at < :win_end))
