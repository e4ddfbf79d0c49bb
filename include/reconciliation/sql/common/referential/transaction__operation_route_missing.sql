-- Invariant (reference §6.4, transaction DB; R1 form): a non-empty operation.route (the operation-route
-- id stored as text) names an operation_route of the same organization and ledger. Only rows with a
-- route are judged (routes are set where route validation is on).
-- Scope: live operations; window scope = operations written in the window (UUIDv7 id range, or
-- updated_at in the window for rows persisted late, looked up within :id_lookback = window start minus
-- the hard grace so the scan stays on the primary key). In flight (skipped): written within the soft grace.
-- Settled (past the soft grace) = updated_at before :settled_before and, for a UUIDv7 id, the id below
-- :id_settled (the smallest UUIDv7 of that instant: an index-friendly form of "UUIDv7 time before it").
-- Plan: the distinct (org, ledger, route) references are aggregated first (one parallel pass), checked
-- against operation_route, and only the operations of dangling references are read again.
WITH refs AS (
  SELECT o.organization_id, o.ledger_id, lower(btrim(o.route)) AS route
  FROM operation o
  WHERE o.deleted_at IS NULL
    AND NULLIF(btrim(o.route), '') IS NOT NULL
    AND (:full_scope
         OR (o.id >= :id_lookback AND o.id < :id_upper AND substr(o.id::text, 15, 1) = '7'
             AND (o.id >= :id_lower OR (o.updated_at >= :win_start AND o.updated_at < :win_end))))
  GROUP BY 1, 2, 3
),
dangling AS MATERIALIZED (
  SELECT refs.* FROM refs
  WHERE NOT EXISTS (SELECT 1 FROM operation_route r
                    WHERE r.id::text = refs.route
                      AND r.organization_id = refs.organization_id AND r.ledger_id = refs.ledger_id)
)
SELECT o.id::text AS entity,
       o.id       AS operation_id,
       o.transaction_id,
       o.organization_id,
       o.ledger_id,
       o.route
FROM dangling d
JOIN operation o
  ON o.organization_id = d.organization_id AND o.ledger_id = d.ledger_id
 AND NULLIF(btrim(o.route), '') IS NOT NULL AND lower(btrim(o.route)) = d.route
WHERE o.deleted_at IS NULL
  AND o.updated_at < :settled_before
  AND (o.id < :id_settled OR get_byte(uuid_send(o.id), 6) >> 4 <> 7)
  AND (:full_scope
       OR (o.id >= :id_lookback AND o.id < :id_upper AND substr(o.id::text, 15, 1) = '7'
           AND (o.id >= :id_lower OR (o.updated_at >= :win_start AND o.updated_at < :win_end))))
