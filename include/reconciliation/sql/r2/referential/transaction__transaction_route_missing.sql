-- Invariant (reference §6.4, transaction DB; R2 form): a non-empty transaction.route (route id as text)
-- and a non-NULL transaction.route_id (uuid, no FK) each name a transaction_route of the same organization and ledger.
-- Only rows with a route are judged (routes are set where route validation is on).
-- Scope: live rows; window scope = rows written in the window (UUIDv7 id range, or updated_at in the
-- window for rows persisted late, looked up within :id_lookback = window start minus the hard grace so the
-- scan stays on the primary key). In flight (skipped): written within the soft grace.
-- Settled (past the soft grace) = updated_at before :settled_before and, for a UUIDv7 id, the id below
-- :id_settled (the smallest UUIDv7 of that instant: an index-friendly form of "UUIDv7 time before it").
-- Plan: the distinct (org, ledger, route, route_id) references are aggregated first (one parallel pass),
-- checked against transaction_route, and only the rows of dangling references are read again.
WITH refs AS (
  SELECT x.organization_id, x.ledger_id,
         COALESCE(lower(btrim(x.route)), '') AS route,
         COALESCE(x.route_id, '00000000-0000-0000-0000-000000000000'::uuid) AS route_id
  FROM "transaction" x
  WHERE x.deleted_at IS NULL
    AND (NULLIF(btrim(x.route), '') IS NOT NULL OR x.route_id IS NOT NULL)
    AND (:full_scope
         OR (x.id >= :id_lookback AND x.id < :id_upper AND substr(x.id::text, 15, 1) = '7'
             AND (x.id >= :id_lower OR (x.updated_at >= :win_start AND x.updated_at < :win_end))))
  GROUP BY 1, 2, 3, 4
),
dangling AS MATERIALIZED (
  SELECT refs.* FROM refs
  WHERE (refs.route <> ''
         AND NOT EXISTS (SELECT 1 FROM transaction_route r
                         WHERE r.id::text = refs.route
                           AND r.organization_id = refs.organization_id AND r.ledger_id = refs.ledger_id))
     OR (refs.route_id <> '00000000-0000-0000-0000-000000000000'::uuid
         AND NOT EXISTS (SELECT 1 FROM transaction_route r
                         WHERE r.id = refs.route_id
                           AND r.organization_id = refs.organization_id AND r.ledger_id = refs.ledger_id))
)
SELECT x.id::text AS entity,
       x.id       AS transaction_id,
       x.organization_id,
       x.ledger_id,
       x.route,
       x.route_id
FROM dangling d
JOIN "transaction" x
  ON x.organization_id = d.organization_id AND x.ledger_id = d.ledger_id
 AND COALESCE(lower(btrim(x.route)), '') = d.route
 AND COALESCE(x.route_id, '00000000-0000-0000-0000-000000000000'::uuid) = d.route_id
WHERE x.deleted_at IS NULL
  AND x.updated_at < :settled_before
  AND (x.id < :id_settled OR get_byte(uuid_send(x.id), 6) >> 4 <> 7)
  AND (:full_scope
       OR (x.id >= :id_lookback AND x.id < :id_upper AND substr(x.id::text, 15, 1) = '7'
           AND (x.id >= :id_lower OR (x.updated_at >= :win_start AND x.updated_at < :win_end))))
