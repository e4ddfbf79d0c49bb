-- 6.1-E (R1)  Sign rules of live balances (reference §5.2, §5.3, §6.1-E):
--   a non-external balance never goes negative: available >= 0 and on_hold >= 0 (Lua rejects with 0018);
--   an @external balance carries minus what entered the ledger: available <= 0, and holds nothing
--   (holds on external accounts are rejected with 0098): on_hold = 0.
-- Not judged (in flight): balances written within the soft grace.
-- Scope: full = every live balance; window = balances touched by an operation in the window or updated in it.
WITH touched AS (
    SELECT o.balance_id AS id FROM operation o
    WHERE NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper AND o.deleted_at IS NULL
    UNION
    SELECT b.id FROM balance b
    WHERE NOT :full_scope AND b.updated_at >= :win_start AND b.updated_at < :win_end
),
scoped AS (
    SELECT b.* FROM balance b WHERE :full_scope AND b.deleted_at IS NULL
    UNION ALL
    SELECT b.* FROM balance b WHERE NOT :full_scope AND b.deleted_at IS NULL AND b.id IN (SELECT id FROM touched)
)
SELECT b.id::text AS entity,
       b.id AS balance_id, b.organization_id, b.ledger_id, b.alias, b.key, b.asset_code, b.account_type,
       b.available, b.on_hold
FROM scoped b
WHERE NOT (b.updated_at >= :settled_before OR (b.id >= :young_id_lower AND b.id < :future_id_lower))
  AND ((b.account_type <> 'external' AND (b.available < 0 OR b.on_hold < 0))
       OR (b.account_type = 'external' AND (b.available > 0 OR b.on_hold <> 0)))
