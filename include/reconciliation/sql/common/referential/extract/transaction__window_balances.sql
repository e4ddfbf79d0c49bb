-- Balances (live or soft-deleted) created or soft-deleted in the window (UUIDv7 id time or deleted_at),
-- ordered by account_id: they and their accounts are in scope. Not updated_at: a balance's updated_at
-- moves with every amount sync and never changes a field these rules compare.
SELECT b.account_id, b.id, b.deleted_at IS NULL AS live
FROM balance b
WHERE (substr(b.id::text, 15, 1) = '7' AND b.id >= :id_lower AND b.id < :id_upper)
   OR (b.deleted_at >= :win_start AND b.deleted_at < :win_end)
ORDER BY b.account_id, b.id
