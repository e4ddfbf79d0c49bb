-- Invariant (reference §6.4, transaction DB; R1 form): a non-empty transaction.route (the transaction-route
-- id stored as text) names a transaction_route of the same organization and ledger. Only rows with a
-- route are judged (routes are set where route validation is on).
-- Scope: live transactions; window scope = transactions written in the window (UUIDv7 id range, or
-- updated_at in the window for rows persisted late, looked up within :id_lookback = window start minus
-- the hard grace so the scan stays on the primary key). In flight (skipped): written within the soft grace.
-- Settled (past the soft grace) = updated_at before :settled_before and, for a UUIDv7 id, the id below
-- :id_settled (the smallest UUIDv7 of that instant: an index-friendly form of "UUIDv7 time before it").
-- Plan: the distinct (org, ledger, route) references are aggregated first (one parallel pass), checked
-- against transaction_route, and only the transactions of dangling references are read again.
WITH refs AS (
  SELECT t.organization_id, t.ledger_id, lower(btrim(t.route)) AS route
  FROM "transaction" t
  WHERE t.deleted_at IS NULL
    AND NULLIF(btrim(t.route), '') IS NOT NULL
    AND (:full_scope
         OR (t.id >= :id_lookback AND t.id < :id_upper AND substr(t.id::text, 15, 1) = '7'
             AND (t.id >= :id_lower OR (t.updated_at >= :win_start AND t.updated_at < :win_end))))
  GROUP BY 1, 2, 3
),
dangling AS MATERIALIZED (
  SELECT refs.* FROM refs
  WHERE NOT EXISTS (SELECT 1 FROM transaction_route r
                    WHERE r.id::text = refs.route
                      AND r.organization_id = refs.organization_id AND r.ledger_id = refs.ledger_id)
)
SELECT t.id::text AS entity,
       t.id       AS transaction_id,
       t.organization_id,
       t.ledger_id,
       t.route
FROM dangling d
JOIN "transaction" t
  ON t.organization_id = d.organization_id AND t.ledger_id = d.ledger_id
 AND NULLIF(btrim(t.route), '') IS NOT NULL AND lower(btrim(t.route)) = d.route
WHERE t.deleted_at IS NULL
  AND t.updated_at < :settled_before
  AND (t.id < :id_settled OR get_byte(uuid_send(t.id), 6) >> 4 <> 7)
  AND (:full_scope
       OR (t.id >= :id_lookback AND t.id < :id_upper AND substr(t.id::text, 15, 1) = '7'
           AND (t.id >= :id_lower OR (t.updated_at >= :win_start AND t.updated_at < :win_end))))
