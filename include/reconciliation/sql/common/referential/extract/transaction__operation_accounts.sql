-- Rule 5 extract: the distinct (account_id, organization, ledger, account_alias) of live operations
-- (window scope: operations written in the window), with how many are settled and how many are younger
-- than the soft grace; ordered by account_id for the merge with the accounts.
-- Settled (past the soft grace) = updated_at before :settled_before and, for a UUIDv7 id, the id below
-- :id_settled (the smallest UUIDv7 of that instant: an index-friendly form of "UUIDv7 time before it").
SELECT o.account_id, o.organization_id, o.ledger_id, o.account_alias,
       count(*) FILTER (WHERE w.settled)     AS n_settled,
       count(*) FILTER (WHERE NOT w.settled) AS n_young
FROM operation o
CROSS JOIN LATERAL (SELECT o.updated_at < :settled_before
         AND (o.id < :id_settled OR get_byte(uuid_send(o.id), 6) >> 4 <> 7) AS settled) w
WHERE o.deleted_at IS NULL
  AND (:full_scope
       OR (o.id >= :id_lookback AND o.id < :id_upper AND substr(o.id::text, 15, 1) = '7'
           AND (o.id >= :id_lower OR (o.updated_at >= :win_start AND o.updated_at < :win_end))))
GROUP BY o.account_id, o.organization_id, o.ledger_id, o.account_alias
ORDER BY o.account_id, o.organization_id, o.ledger_id, o.account_alias
