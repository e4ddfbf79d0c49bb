-- Invariant (reference §6.4, onboarding): an account belongs to the organization that owns its ledger.
-- Scope: every account (live or soft-deleted); window scope = accounts written in the window (UUIDv7 id
-- time, updated_at or deleted_at). Accounts written within the soft grace are in flight and skipped.
-- Settled (past the soft grace) = updated_at (and deleted_at) before :settled_before and, for a UUIDv7
-- id, the id below :id_settled (the smallest UUIDv7 of that instant: "UUIDv7 time before it").
SELECT a.id::text          AS entity,
       a.id                AS account_id,
       a.organization_id,
       a.ledger_id,
       l.organization_id   AS ledger_organization_id,
       a.alias
FROM account a
JOIN ledger l ON l.id = a.ledger_id
WHERE a.organization_id <> l.organization_id
  AND a.updated_at < :settled_before
  AND (a.deleted_at IS NULL OR a.deleted_at < :settled_before)
  AND (a.id < :id_settled OR get_byte(uuid_send(a.id), 6) >> 4 <> 7)
  AND (:full_scope
       OR (a.id >= :id_lower AND a.id < :id_upper AND get_byte(uuid_send(a.id), 6) >> 4 = 7)
       OR (a.updated_at >= :win_start AND a.updated_at < :win_end)
       OR (a.deleted_at >= :win_start AND a.deleted_at < :win_end))
