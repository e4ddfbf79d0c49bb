-- 6.1-B (R2)  A live balance equals the sum of its operations' own deltas from zero (reference §6.1-B, R2):
--   available = SUM(available_balance_after - available_balance), on_hold = SUM(on_hold_balance_after - on_hold_balance)
-- At R2 the per-type semantics depend on the ledger's route-validation mode, the balance direction (a debit-
-- direction balance grows on DEBIT) and overdraft flooring, none of which is recorded on the row, so the
-- replay uses each operation's recorded delta; 6.1-C validates every delta against its type, amount,
-- direction and snapshot. Deltas carry the balance direction's sign already (they are raw changes of
-- available/on_hold). A balance with amounts but no operations replays to zero.
-- Not judged (in flight): the balance or any of its operations written within the soft grace; balances
-- whose Redis key is ahead of PostgreSQL (:redis_ahead).
-- Scope: full = every live balance; window = the balances touched by an operation in the window or updated in
-- it, replayed over their whole history. Full scope is one parallel pass over operation hash-aggregated per
-- balance; window scope hash-joins operation to the touched set (also parallel): a scan, not index
-- lookups, because the touched balances include the @external ones, whose histories hold about half of all
-- operations.
WITH touched AS NOT MATERIALIZED (
    -- window scope only: the balances touched by an operation in the window or updated in it (a primary-key
    -- range of operation); not materialized, so the history scans below stay parallel (each worker hashes
    -- the set itself: cheap for the hour or day a scheduled window spans)
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
),
replay AS (
    -- full scope: every operation, a parallel hash aggregate per balance
    SELECT o.balance_id,
           SUM(o.available_balance_after - o.available_balance) AS expected_available,
           SUM(o.on_hold_balance_after - o.on_hold_balance) AS expected_on_hold,
           COUNT(*) AS operations,
           bool_or(o.updated_at >= :settled_before
                   OR (o.id >= :young_id_lower AND o.id < :future_id_lower)) AS young
    FROM operation o
    WHERE :full_scope AND o.deleted_at IS NULL AND o.balance_affected
    GROUP BY o.balance_id
    UNION ALL
    -- window scope: the whole history of the touched balances (a scan hash-joined to the touched set)
    SELECT o.balance_id,
           SUM(o.available_balance_after - o.available_balance),
           SUM(o.on_hold_balance_after - o.on_hold_balance),
           COUNT(*),
           bool_or(o.updated_at >= :settled_before
                   OR (o.id >= :young_id_lower AND o.id < :future_id_lower))
    FROM operation o
    WHERE NOT :full_scope AND o.deleted_at IS NULL AND o.balance_affected AND o.balance_id IN (SELECT id FROM touched)
    GROUP BY o.balance_id
)
SELECT b.id::text AS entity,
       b.id AS balance_id, b.organization_id, b.ledger_id, b.alias, b.key, b.asset_code,
       b.available, COALESCE(r.expected_available, 0) AS expected_available,
       b.on_hold, COALESCE(r.expected_on_hold, 0) AS expected_on_hold,
       COALESCE(r.operations, 0) AS operations
FROM scoped b
LEFT JOIN replay r ON r.balance_id = b.id
WHERE (b.available <> COALESCE(r.expected_available, 0) OR b.on_hold <> COALESCE(r.expected_on_hold, 0))
  AND NOT COALESCE(r.young, FALSE)
  AND NOT (b.updated_at >= :settled_before OR (b.id >= :young_id_lower AND b.id < :future_id_lower))
  AND NOT (b.id = ANY(string_to_array(:redis_ahead, ',')::uuid[]))
