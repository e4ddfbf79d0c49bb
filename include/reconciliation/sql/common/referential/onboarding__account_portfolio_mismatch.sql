-- Invariant (reference §6.4, onboarding): an account's portfolio belongs to the account's ledger (and
-- organization). Scope: every account with a portfolio; window scope = accounts written in the window.
-- Accounts written within the soft grace are in flight and skipped.
-- Settled (past the soft grace) = updated_at (and deleted_at) before :settled_before and, for a UUIDv7
-- id, the id below :id_settled (the smallest UUIDv7 of that instant: "UUIDv7 time before it").
SELECT a.id::text          AS entity,
       a.id                AS account_id,
       a.organization_id,
       a.ledger_id,
       p.id                AS portfolio_id,
       p.organization_id   AS portfolio_organization_id,
       p.ledger_id         AS portfolio_ledger_id
FROM account a
JOIN portfolio p ON p.id = a.portfolio_id
WHERE (p.ledger_id <> a.ledger_id OR p.organization_id <> a.organization_id)
  AND a.updated_at < :settled_before
  AND (a.deleted_at IS NULL OR a.deleted_at < :settled_before)
  AND (a.id < :id_settled OR get_byte(uuid_send(a.id), 6) >> 4 <> 7)
  AND (:full_scope
       OR (a.id >= :id_lower AND a.id < :id_upper AND get_byte(uuid_send(a.id), 6) >> 4 = 7)
       OR (a.updated_at >= :win_start AND a.updated_at < :win_end)
       OR (a.deleted_at >= :win_start AND a.deleted_at < :win_end))
