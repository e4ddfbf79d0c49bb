-- 6.1-G  At most one live account per (organization, ledger, alias) (reference §2.1, §6.1-G):
-- idx_account_alias is not unique; alias uniqueness is enforced only by the application (FindByAlias).
-- Not judged (in flight): groups with a member written within the soft grace.
-- Scope: full = every live account; window = groups with a member created (id range) or updated in the
-- window (members looked up through idx_account_alias).
WITH groups AS (
    SELECT DISTINCT a.organization_id, a.ledger_id, a.alias
    FROM account a
    WHERE NOT :full_scope AND a.deleted_at IS NULL
      AND (a.id >= :id_lower AND a.id < :id_upper OR a.updated_at >= :win_start AND a.updated_at < :win_end)
)
SELECT a.organization_id::text || '/' || a.ledger_id::text || '/' || a.alias AS entity,
       a.organization_id, a.ledger_id, a.alias,
       COUNT(*) AS live_rows,
       array_agg(a.id::text ORDER BY a.id) AS account_ids
FROM (
    SELECT a.* FROM account a WHERE :full_scope AND a.deleted_at IS NULL
    UNION ALL
    SELECT a.* FROM account a WHERE NOT :full_scope AND a.deleted_at IS NULL
      AND (a.organization_id, a.ledger_id, a.alias) IN (SELECT * FROM groups)
) a
GROUP BY a.organization_id, a.ledger_id, a.alias
HAVING COUNT(*) > 1
   AND NOT bool_or(a.updated_at >= :settled_before OR (a.id >= :young_id_lower AND a.id < :future_id_lower))
