-- 6.1-E (R2)  Sign rules of live balances, by balance direction (reference §5.1, §6.1-E R2; R2 Lua):
--   a non-external balance never goes negative in either direction: available >= 0 and on_hold >= 0 (the Lua
--   rejects a negative result with 0018; a credit-direction balance allowed to overdraw is floored at 0 and
--   accrues the deficit in overdraft_used, which is >= 0 by constraint);
--   an @external balance holds nothing (on_hold = 0) and its signed available is <= 0: available <= 0 for a
--   credit-direction (legacy) external, available >= 0 for a debit-direction external (DEBIT grows it).
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
       b.direction, b.available, b.on_hold, b.overdraft_used
FROM scoped b
WHERE NOT (b.updated_at >= :settled_before OR (b.id >= :young_id_lower AND b.id < :future_id_lower))
  AND ((b.account_type <> 'external' AND (b.available < 0 OR b.on_hold < 0 OR b.overdraft_used < 0))
       OR (b.account_type = 'external'
           AND (CASE WHEN b.direction = 'debit' THEN -b.available ELSE b.available END > 0 OR b.on_hold <> 0)))
