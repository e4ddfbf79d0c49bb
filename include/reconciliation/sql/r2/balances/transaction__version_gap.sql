-- 6.1-D (R2)  No version gaps between consecutive operations of a balance written after the version-gap
-- fix (reference §4.3, §6.1-D R2; DESIGN §7): Midaz v4 increments a balance version only for a real change,
-- and every change writes an operation, so balance_version_before = previous balance_version_after.
-- Pairs with either row written (UUIDv7 time) before :gap_fix_at keep the R1 rule (gaps allowed).
-- Overlaps, repeats and discontinuous amounts are version_chain_broken (reported by its own invariant).
-- Entity: the later operation. Not judged (in flight): pairs whose later operation is younger than the
-- soft grace. Scope as version_chain_broken (the predecessor may be older than the window).
WITH win_ops AS NOT MATERIALIZED (
    SELECT o.id, o.balance_id, o.organization_id, o.ledger_id, o.account_id,
           o.balance_version_before, o.balance_version_after, o.available_balance, o.on_hold_balance,
           o.available_balance_after, o.on_hold_balance_after, o.updated_at
    FROM operation o
    WHERE NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper
      AND o.deleted_at IS NULL AND o.balance_affected AND o.balance_version_after > 0
),
chain AS (
    -- full scope: every operation, one sorted window pass (parallel sort, as slim as the rule allows)
    SELECT o.id, o.balance_id, o.balance_version_before, o.balance_version_after,
           o.available_balance, o.on_hold_balance, o.updated_at,
           LAG(o.id) OVER w AS prev_op_id,
           LAG(o.balance_version_after) OVER w AS prev_version_after,
           LAG(o.available_balance_after) OVER w AS prev_available_after,
           LAG(o.on_hold_balance_after) OVER w AS prev_on_hold_after
    FROM operation o
    WHERE :full_scope AND o.deleted_at IS NULL AND o.balance_affected AND o.balance_version_after > 0
    WINDOW w AS (PARTITION BY o.balance_id ORDER BY o.balance_version_after, o.id)
    UNION ALL
    -- window scope: the window's operations plus the newest pre-window operations of their balances
    SELECT c.id, c.balance_id, c.balance_version_before, c.balance_version_after,
           c.available_balance, c.on_hold_balance, c.updated_at,
           LAG(c.id) OVER w,
           LAG(c.balance_version_after) OVER w,
           LAG(c.available_balance_after) OVER w,
           LAG(c.on_hold_balance_after) OVER w
    FROM (
        SELECT w.id, w.balance_id, w.balance_version_before, w.balance_version_after, w.available_balance,
               w.on_hold_balance, w.available_balance_after, w.on_hold_balance_after, w.updated_at
        FROM win_ops w
        UNION ALL
        SELECT p.id, p.balance_id, p.balance_version_before, p.balance_version_after, p.available_balance,
               p.on_hold_balance, p.available_balance_after, p.on_hold_balance_after, p.updated_at
        FROM (SELECT w.balance_id, w.organization_id, w.ledger_id, w.account_id
              FROM win_ops w GROUP BY w.balance_id, w.organization_id, w.ledger_id, w.account_id) t
        CROSS JOIN LATERAL (
            SELECT o.* FROM operation o
            WHERE o.organization_id = t.organization_id AND o.ledger_id = t.ledger_id
              AND o.account_id = t.account_id AND o.deleted_at IS NULL AND o.id < :id_lower
              -- IS TRUE: walk idx_operation_account_id backwards (not R2's balance_pit index, which would
              -- read and sort the balance's whole history)
              AND (o.balance_id = t.balance_id) IS TRUE AND o.balance_affected AND o.balance_version_after > 0
            ORDER BY o.id DESC
            LIMIT 8
        ) p
    ) c
    WHERE NOT :full_scope
    WINDOW w AS (PARTITION BY c.balance_id ORDER BY c.balance_version_after, c.id)
)
SELECT c.id::text AS entity,
       c.id AS operation_id, c.balance_id, t.transaction_id, t.organization_id, t.ledger_id,
       c.prev_op_id AS previous_operation_id,
       c.balance_version_before, c.balance_version_after, c.prev_version_after AS previous_version_after,
       c.available_balance, c.prev_available_after AS previous_available_after,
       c.on_hold_balance, c.prev_on_hold_after AS previous_on_hold_after
FROM chain c
CROSS JOIN LATERAL (  -- ids of the reported rows only (primary-key lookups, after the filter)
    SELECT t.transaction_id, t.organization_id, t.ledger_id FROM operation t WHERE t.id = c.id LIMIT 1
) t
WHERE c.prev_op_id IS NOT NULL
  AND (:full_scope OR c.id >= :id_lower AND c.id < :id_upper)
  AND NOT (c.updated_at >= :settled_before OR (c.id >= :young_id_lower AND c.id < :future_id_lower))
  AND c.balance_version_before > c.prev_version_after
  AND c.id >= :gap_fix_id_lower AND c.id < :future_id_lower
  AND c.prev_op_id >= :gap_fix_id_lower AND c.prev_op_id < :future_id_lower
