-- Rule 4 extract: the distinct (organization, ledger, asset_code) of live transactions (window scope:
-- transactions written in the window), with how many are settled and how many are younger than the
-- soft grace. Small: one row per ledger and asset.
-- Settled (past the soft grace) = updated_at before :settled_before and, for a UUIDv7 id, the id below
-- :id_settled (the smallest UUIDv7 of that instant: an index-friendly form of "UUIDv7 time before it").
SELECT t.organization_id, t.ledger_id, t.asset_code,
       count(*) FILTER (WHERE w.settled)     AS n_settled,
       count(*) FILTER (WHERE NOT w.settled) AS n_young
FROM "transaction" t
CROSS JOIN LATERAL (SELECT t.updated_at < :settled_before
         AND (t.id < :id_settled OR get_byte(uuid_send(t.id), 6) >> 4 <> 7) AS settled) w
WHERE t.deleted_at IS NULL
  AND (:full_scope
       OR (t.id >= :id_lookback AND t.id < :id_upper AND substr(t.id::text, 15, 1) = '7'
           AND (t.id >= :id_lower OR (t.updated_at >= :win_start AND t.updated_at < :win_end))))
GROUP BY t.organization_id, t.ledger_id, t.asset_code
