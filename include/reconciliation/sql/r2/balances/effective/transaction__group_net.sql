-- 6.1-F, PostgreSQL part: the net of the live balance rows per (organization, ledger, asset) (reference §5.3,
-- §6.1-F). Every unit enters or leaves a ledger through @external/<asset>, so the effective net is zero.
-- R2: each balance is signed by its direction (debit -> -1): SUM(sign * (available + on_hold)). An overdraft
-- deficit sits on the debit-direction #overdraft companion, so overdraft_used is not added again.
-- The check adds the Redis overlay (transaction__redis_overlay.sql) per group before judging: the effective
-- balance is the Redis value where the key exists (Redis is atomically consistent per Lua call), else this row.
-- young: a member balance was written within the soft grace (evidence only; see the check's F rule).
-- Scope: full = every group; window = groups with an operation in the window or a balance updated or
-- deleted in it.
WITH scope_groups AS (
    SELECT DISTINCT o.organization_id, o.ledger_id, o.asset_code FROM operation o
    WHERE NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper AND o.deleted_at IS NULL
    UNION
    SELECT b.organization_id, b.ledger_id, b.asset_code FROM balance b
    WHERE NOT :full_scope AND (b.updated_at >= :win_start AND b.updated_at < :win_end
                               OR b.deleted_at >= :win_start AND b.deleted_at < :win_end)
)
SELECT b.organization_id, b.ledger_id, b.asset_code,
       SUM(CASE WHEN b.direction = 'debit' THEN -(b.available + b.on_hold) ELSE b.available + b.on_hold END) AS pg_net,
       COUNT(*) AS balances,
       bool_or(b.updated_at >= :settled_before OR (b.id >= :young_id_lower AND b.id < :future_id_lower)) AS young
FROM (
    SELECT b.* FROM balance b WHERE :full_scope AND b.deleted_at IS NULL
    UNION ALL
    SELECT b.* FROM balance b WHERE NOT :full_scope AND b.deleted_at IS NULL
      AND (b.organization_id, b.ledger_id, b.asset_code) IN (SELECT * FROM scope_groups)
) b
GROUP BY b.organization_id, b.ledger_id, b.asset_code
