-- Invariant (reference §6.4, onboarding): an account's segment belongs to the account's ledger (and
-- organization). Scope: every account with a segment; window scope = accounts written in the window.
-- Accounts written within the soft grace are in flight and skipped.
-- Settled (past the soft grace) = updated_at (and deleted_at) before :settled_before and, for a UUIDv7
-- id, the id below :id_settled (the smallest UUIDv7 of that instant: "UUIDv7 time before it").
SELECT a.id::text          AS entity,
       a.id                AS account_id,
       a.organization_id,
       a.ledger_id,
       s.id                AS segment_id,
       s.organization_id   AS segment_organization_id,
       s.ledger_id         AS segment_ledger_id
FROM account a
JOIN segment s ON s.id = a.segment_id
WHERE (s.ledger_id <> a.ledger_id OR s.organization_id <> a.organization_id)
  AND a.updated_at < :settled_before
  AND (a.deleted_at IS NULL OR a.deleted_at < :settled_before)
  AND (a.id < :id_settled OR get_byte(uuid_send(a.id), 6) >> 4 <> 7)
  AND (:full_scope
       OR (a.id >= :id_lower AND a.id < :id_upper AND get_byte(uuid_send(a.id), 6) >> 4 = 7)
       OR (a.updated_at >= :win_start AND a.updated_at < :win_end)
       OR (a.deleted_at >= :win_start AND a.deleted_at < :win_end))
