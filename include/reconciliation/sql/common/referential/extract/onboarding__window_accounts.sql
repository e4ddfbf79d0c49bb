-- Accounts written in the window (UUIDv7 id time, updated_at or deleted_at), ordered by id.
SELECT a.id
FROM account a
WHERE (substr(a.id::text, 15, 1) = '7' AND a.id >= :id_lower AND a.id < :id_upper)
   OR (a.updated_at >= :win_start AND a.updated_at < :win_end)
   OR (a.deleted_at >= :win_start AND a.deleted_at < :win_end)
ORDER BY a.id
