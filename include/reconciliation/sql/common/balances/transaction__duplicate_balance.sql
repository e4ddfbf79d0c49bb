-- 6.1-G  At most one live balance per (organization, ledger, alias, key) (reference §2.2, §5.4, §6.1-G):
-- balance identity is the Redis key <org>:<ledger>:<alias>#<key>; idx_unique_balance_alias_key is NOT a
-- unique index at R1 (and R2's unique index is on account_id, not alias), so the schema does not prevent
-- two live rows for one alias and key.
-- Not judged (in flight): groups with a member written within the soft grace.
-- Scope: full = every live balance; window = groups with a member touched by an operation in the window,
-- updated in it or created in it (members looked up through idx_unique_balance_alias_key).
WITH touched AS (
    SELECT o.balance_id AS id FROM operation o
    WHERE NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper AND o.deleted_at IS NULL
    UNION
    SELECT b.id FROM balance b
    WHERE NOT :full_scope AND (b.updated_at >= :win_start AND b.updated_at < :win_end
                               OR b.id >= :id_lower AND b.id < :id_upper)
),
groups AS (
    SELECT DISTINCT b.organization_id, b.ledger_id, b.alias, b.key
    FROM balance b
    WHERE NOT :full_scope AND b.deleted_at IS NULL AND b.id IN (SELECT id FROM touched)
)
SELECT b.organization_id::text || '/' || b.ledger_id::text || '/' || b.alias || '#' || b.key AS entity,
       b.organization_id, b.ledger_id, b.alias, b.key,
       COUNT(*) AS live_rows,
       array_agg(b.id::text ORDER BY b.id) AS balance_ids
FROM (
    SELECT b.* FROM balance b WHERE :full_scope AND b.deleted_at IS NULL
    UNION ALL
    SELECT b.* FROM balance b WHERE NOT :full_scope AND b.deleted_at IS NULL
      AND (b.organization_id, b.ledger_id, b.alias, b.key) IN (SELECT * FROM groups)
) b
GROUP BY b.organization_id, b.ledger_id, b.alias, b.key
HAVING COUNT(*) > 1
   AND NOT bool_or(b.updated_at >= :settled_before OR (b.id >= :young_id_lower AND b.id < :future_id_lower))
