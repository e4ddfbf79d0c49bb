-- Ledgers with accounts created or soft-deleted in the window (UUIDv7 id time or deleted_at): the window
-- scope of the accounts = default balances rule (only creations and deletions change those counts).
SELECT DISTINCT a.organization_id, a.ledger_id
FROM account a
WHERE (substr(a.id::text, 15, 1) = '7' AND a.id >= :id_lower AND a.id < :id_upper)
   OR (a.deleted_at >= :win_start AND a.deleted_at < :win_end)
