-- 6.1-A  A live balance row equals the after-values of its last operation (reference §5.7, §6.1-A).
--
-- Last operation L = the newest balance_affected operation by balance_version_after, then created_at, then id.
-- Invariant: available = L.available_balance_after, on_hold = L.on_hold_balance_after, and
--   R1: version >= L.balance_version_after (no-op Lua entries may push version further);
--   R2: version  = L.balance_version_after when L was written (UUIDv7 time) on/after the version-gap fix
--       (:gap_fix_at, DESIGN §7); older last operations keep the R1 rule.
-- Not judged (in flight): the balance or L written within the soft grace, and balances whose Redis key is
-- ahead of PostgreSQL (:redis_ahead, ids found by the check's Redis pass: the sync is still due; redis_sync
-- judges whether that lag is legitimate).
-- Scope: full = every live balance (two hashed passes over operation, no sort of the table); window =
-- balances touched by an operation whose id is in the window or updated in the window, their last operation
-- found through idx_operation_account_id (the newest ids of the account first, the best version among them).
WITH touched AS (
    SELECT o.balance_id AS id FROM operation o
    WHERE NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper AND o.deleted_at IS NULL
    UNION
    SELECT b.id FROM balance b
    WHERE NOT :full_scope AND b.updated_at >= :win_start AND b.updated_at < :win_end
),
touched_balances AS MATERIALIZED (  -- window scope: the filter runs before the per-balance lookups below
    SELECT DISTINCT t.id FROM touched t
),
top_version AS MATERIALIZED (
    -- full scope: the highest version of each balance, computed once (parallel hash aggregate)
    SELECT m.balance_id, MAX(m.balance_version_after) AS top_version
    FROM operation m
    WHERE :full_scope AND m.deleted_at IS NULL AND m.balance_affected
    GROUP BY m.balance_id
),
last_op AS (
    -- full scope: the operations at their balance's highest version (a second pass over operation, hash join
    -- on the one-row-per-balance table), ranked by created_at, id: no sort of the table
    SELECT b.id, b.organization_id, b.ledger_id, b.alias, b.key, b.asset_code, b.available, b.on_hold,
           COALESCE(b.version, 0) AS version, b.updated_at,
           l.op_id, l.available_balance_after, l.on_hold_balance_after, l.balance_version_after,
           l.updated_at AS op_updated_at
    FROM balance b
    JOIN (
        SELECT DISTINCT ON (x.balance_id)
               x.balance_id, x.op_id, x.available_balance_after, x.on_hold_balance_after,
               x.balance_version_after, x.updated_at
        FROM (
            SELECT o.balance_id, o.id AS op_id, o.available_balance_after, o.on_hold_balance_after,
                   o.balance_version_after, o.updated_at, o.created_at
            FROM operation o
            JOIN (
                -- re-grouped so that the planner knows balance_id is unique here (a CTE has no statistics;
                -- without this it sorts the whole table for a merge join instead of hashing 1 row/balance)
                SELECT v.balance_id, MAX(v.top_version) AS top_version FROM top_version v GROUP BY v.balance_id
            ) t ON t.balance_id = o.balance_id AND t.top_version = o.balance_version_after
            WHERE :full_scope AND o.deleted_at IS NULL AND o.balance_affected
        ) x
        ORDER BY x.balance_id, x.created_at DESC, x.op_id DESC
    ) l ON l.balance_id = b.id
    WHERE :full_scope AND b.deleted_at IS NULL
    UNION ALL
    -- window scope: per touched balance, the newest operations of its account by id (index), best version
    SELECT b.id, b.organization_id, b.ledger_id, b.alias, b.key, b.asset_code, b.available, b.on_hold,
           COALESCE(b.version, 0), b.updated_at,
           l.op_id, l.available_balance_after, l.on_hold_balance_after, l.balance_version_after, l.updated_at
    FROM balance b
    CROSS JOIN LATERAL (
        SELECT c.* FROM (
            SELECT o.id AS op_id, o.available_balance_after, o.on_hold_balance_after, o.balance_version_after,
                   o.updated_at, o.created_at
            FROM operation o
            WHERE o.organization_id = b.organization_id AND o.ledger_id = b.ledger_id
              AND o.account_id = b.account_id AND o.deleted_at IS NULL
              -- IS TRUE keeps balance_id out of the index condition: R2's idx_operation_account_balance_pit
              -- would match it and then read and sort the balance's whole history; idx_operation_account_id
              -- walks the account's newest ids backwards and stops after 8
              AND (o.balance_id = b.id) IS TRUE AND o.balance_affected
            ORDER BY o.id DESC
            LIMIT 8
        ) c
        ORDER BY c.balance_version_after DESC, c.created_at DESC, c.op_id DESC
        LIMIT 1
    ) l
    WHERE NOT :full_scope AND b.deleted_at IS NULL AND b.id IN (SELECT id FROM touched_balances)
)
SELECT l.id::text AS entity,
       l.id AS balance_id, l.organization_id, l.ledger_id, l.alias, l.key, l.asset_code,
       l.available, l.on_hold, l.version,
       l.op_id AS last_operation_id,
       l.available_balance_after AS expected_available,
       l.on_hold_balance_after AS expected_on_hold,
       l.balance_version_after AS last_operation_version
FROM last_op l
WHERE (l.available <> l.available_balance_after
       OR l.on_hold <> l.on_hold_balance_after
       OR CASE WHEN :is_r2 AND l.op_id >= :gap_fix_id_lower AND l.op_id < :future_id_lower
               THEN l.version <> l.balance_version_after
               ELSE l.version < l.balance_version_after END)
  AND NOT (l.updated_at >= :settled_before OR (l.id >= :young_id_lower AND l.id < :future_id_lower))
  AND NOT (l.op_updated_at >= :settled_before OR (l.op_id >= :young_id_lower AND l.op_id < :future_id_lower))
  AND NOT (l.id = ANY(string_to_array(:redis_ahead, ',')::uuid[]))
