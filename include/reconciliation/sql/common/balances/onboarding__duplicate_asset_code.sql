-- 6.1-G  At most one live asset per (organization, ledger, code) (reference §2.1, §6.1-G): asset.code has no
-- unique constraint; the application checks duplicates with FindByNameOrCode.
-- Not judged (in flight): groups with a member written within the soft grace.
-- Scope: full = every live asset; window = groups with a member created (id range) or updated in the window.
WITH groups AS (
    SELECT DISTINCT s.organization_id, s.ledger_id, s.code
    FROM asset s
    WHERE NOT :full_scope AND s.deleted_at IS NULL
      AND (s.id >= :id_lower AND s.id < :id_upper OR s.updated_at >= :win_start AND s.updated_at < :win_end)
)
SELECT s.organization_id::text || '/' || s.ledger_id::text || '/' || s.code AS entity,
       s.organization_id, s.ledger_id, s.code,
       COUNT(*) AS live_rows,
       array_agg(s.id::text ORDER BY s.id) AS asset_ids
FROM (
    SELECT s.* FROM asset s WHERE :full_scope AND s.deleted_at IS NULL
    UNION ALL
    SELECT s.* FROM asset s WHERE NOT :full_scope AND s.deleted_at IS NULL
      AND (s.organization_id, s.ledger_id, s.code) IN (SELECT * FROM groups)
) s
GROUP BY s.organization_id, s.ledger_id, s.code
HAVING COUNT(*) > 1
   AND NOT bool_or(s.updated_at >= :settled_before OR (s.id >= :young_id_lower AND s.id < :future_id_lower))
