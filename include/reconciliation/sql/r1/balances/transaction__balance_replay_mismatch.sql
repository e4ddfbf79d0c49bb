-- 6.1-B (R1)  A live balance equals the replay of all its operations from zero, by type semantics (§5.2):
--   CREDIT  available += amount
--   DEBIT   available -= amount; but the commit of a pending transaction (the same transaction holds an
--           ON_HOLD on the same balance) moves on_hold instead: on_hold -= amount
--   ON_HOLD available -= amount, on_hold += amount
--   RELEASE available += amount, on_hold -= amount
-- Independent of the before/after columns (those are judged by 6.1-A/C/D). A balance with amounts but no
-- operations replays to zero. Unknown types replay as nothing (double_entry reports them).
-- Not judged (in flight): the balance or any of its operations written within the soft grace; balances
-- whose Redis key is ahead of PostgreSQL (:redis_ahead).
-- Scope: full = every live balance; window = the balances touched by an operation in the window or updated in
-- it, replayed over their whole history. Full scope is one parallel pass over operation hash-aggregated per
-- balance; window scope hash-joins operation to the touched set (also parallel): a scan, not index
-- lookups, because the touched balances include the @external ones, whose histories hold about half of all
-- operations. Commits are found from the holds: one filtered scan for the (transaction, balance) pairs
-- holding funds, then one transaction_id index probe per pair.
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
sums AS (
    -- full scope: every operation, a parallel hash aggregate per balance
    SELECT o.balance_id,
           COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'CREDIT'), 0)  AS credit,
           COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'DEBIT'), 0)   AS debit,
           COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'ON_HOLD'), 0) AS hold,
           COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'RELEASE'), 0) AS release,
           COUNT(*) AS operations,
           bool_or(o.updated_at >= :settled_before
                   OR (o.id >= :young_id_lower AND o.id < :future_id_lower)) AS young
    FROM operation o
    WHERE :full_scope AND o.deleted_at IS NULL AND o.balance_affected
    GROUP BY o.balance_id
    UNION ALL
    -- window scope: the whole history of the touched balances (a scan hash-joined to the touched set)
    SELECT o.balance_id,
           COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'CREDIT'), 0),
           COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'DEBIT'), 0),
           COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'ON_HOLD'), 0),
           COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'RELEASE'), 0),
           COUNT(*),
           bool_or(o.updated_at >= :settled_before
                   OR (o.id >= :young_id_lower AND o.id < :future_id_lower))
    FROM operation o
    WHERE NOT :full_scope AND o.deleted_at IS NULL AND o.balance_affected AND o.balance_id IN (SELECT id FROM touched)
    GROUP BY o.balance_id
),
holds AS (
    -- the (transaction, balance) pairs that hold funds
    SELECT DISTINCT x.transaction_id, x.balance_id
    FROM operation x
    WHERE :full_scope AND x.type = 'ON_HOLD' AND x.deleted_at IS NULL AND x.balance_affected
    UNION
    SELECT x.transaction_id, x.balance_id
    FROM operation x
    WHERE NOT :full_scope AND x.type = 'ON_HOLD' AND x.deleted_at IS NULL AND x.balance_affected
      AND x.balance_id IN (SELECT id FROM touched)
),
commits AS (
    -- DEBITs of a transaction that also holds funds on the same balance: the commit of a pending hold
    SELECT h.balance_id, SUM(c.amount) AS commit_debit
    FROM holds h
    CROSS JOIN LATERAL (
        SELECT SUM(d.amount) AS amount
        FROM operation d
        WHERE d.transaction_id = h.transaction_id AND d.balance_id = h.balance_id
          AND d.type = 'DEBIT' AND d.deleted_at IS NULL AND d.balance_affected
    ) c
    GROUP BY h.balance_id
),
replay AS (
    SELECT s.balance_id,
           s.credit - (s.debit - COALESCE(c.commit_debit, 0)) - s.hold + s.release AS expected_available,
           s.hold - s.release - COALESCE(c.commit_debit, 0) AS expected_on_hold,
           s.operations, s.young
    FROM sums s
    LEFT JOIN commits c ON c.balance_id = s.balance_id
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
