-- Ledgers with balances created or soft-deleted in the window (UUIDv7 id time or deleted_at): the window
-- scope of the accounts = default balances rule (amount syncs move updated_at, never these counts).
SELECT DISTINCT b.organization_id, b.ledger_id
FROM balance b
WHERE (substr(b.id::text, 15, 1) = '7' AND b.id >= :id_lower AND b.id < :id_upper)
   OR (b.deleted_at >= :win_start AND b.deleted_at < :win_end)
