-- In-flight evidence of the balances check (reference §6.6; DESIGN §4): how many balances in scope were left
-- unjudged because they are mid-write, and how many operations are younger than the soft grace.
--   in_flight          balances in scope written within the soft grace (the row, or an operation on it by
--                      UUIDv7 time), or whose Redis key is ahead of PostgreSQL (:redis_ahead)
--   young_operations   operations written (UUIDv7 time) within the soft grace, in scope
-- Index-backed: the young operations are a primary-key range.
WITH touched AS (
    SELECT o.balance_id AS id FROM operation o
    WHERE NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper AND o.deleted_at IS NULL
    UNION
    SELECT b.id FROM balance b
    WHERE NOT :full_scope AND b.updated_at >= :win_start AND b.updated_at < :win_end
),
young_ops AS (
    SELECT o.id, o.balance_id FROM operation o
    WHERE o.id >= :young_id_lower AND o.id < :future_id_lower AND o.deleted_at IS NULL
),
young AS (
    SELECT balance_id AS id FROM young_ops
    UNION
    SELECT b.id FROM balance b
    WHERE b.deleted_at IS NULL
      AND (b.updated_at >= :settled_before OR (b.id >= :young_id_lower AND b.id < :future_id_lower))
    UNION
    SELECT unnest(string_to_array(:redis_ahead, ',')::uuid[])
)
SELECT (SELECT COUNT(*) FROM young y WHERE :full_scope)
       + (SELECT COUNT(*) FROM young y WHERE NOT :full_scope AND y.id IN (SELECT id FROM touched)) AS in_flight,
       (SELECT COUNT(*) FROM young_ops y
        WHERE :full_scope OR y.id >= :id_lower AND y.id < :id_upper) AS young_operations
