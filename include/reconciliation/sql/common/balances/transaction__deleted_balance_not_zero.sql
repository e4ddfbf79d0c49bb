-- 6.1-E  A soft-deleted balance holds nothing (reference §5.5, §6.1-E): Midaz deletes a balance only when
-- available = 0 and on_hold = 0, so funds on a deleted row vanished from the ledger's view.
-- Not judged (in flight): balances written or deleted within the soft grace.
-- Scope: full = every deleted balance; window = balances touched by an operation in the window or updated
-- (deleted) in it.
WITH touched AS (
    SELECT o.balance_id AS id FROM operation o
    WHERE NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper AND o.deleted_at IS NULL
    UNION
    SELECT b.id FROM balance b
    WHERE NOT :full_scope AND (b.updated_at >= :win_start AND b.updated_at < :win_end
                               OR b.deleted_at >= :win_start AND b.deleted_at < :win_end)
),
scoped AS (
    SELECT b.* FROM balance b WHERE :full_scope AND b.deleted_at IS NOT NULL
    UNION ALL
    SELECT b.* FROM balance b WHERE NOT :full_scope AND b.deleted_at IS NOT NULL AND b.id IN (SELECT id FROM touched)
)
SELECT b.id::text AS entity,
       b.id AS balance_id, b.organization_id, b.ledger_id, b.alias, b.key, b.asset_code, b.account_type,
       b.available, b.on_hold, b.deleted_at
FROM scoped b
WHERE NOT (b.updated_at >= :settled_before OR b.deleted_at >= :settled_before
           OR (b.id >= :young_id_lower AND b.id < :future_id_lower))
  AND (b.available <> 0 OR b.on_hold <> 0)
