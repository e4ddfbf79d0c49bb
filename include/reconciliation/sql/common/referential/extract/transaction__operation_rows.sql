-- Rule 5 evidence: the settled live operations (in scope) of the given (account, organization, ledger,
-- alias) tuples, at most :max_rows of them.
-- Settled (past the soft grace) = updated_at before :settled_before and, for a UUIDv7 id, the id below
-- :id_settled (the smallest UUIDv7 of that instant: an index-friendly form of "UUIDv7 time before it").
SELECT o.id, o.transaction_id, o.account_id, o.organization_id, o.ledger_id, o.account_alias
FROM operation o
JOIN unnest(:k_accounts::uuid[], :k_orgs::uuid[], :k_ledgers::uuid[], :k_aliases::text[])
       AS k(account_id, organization_id, ledger_id, account_alias)
  ON o.account_id = k.account_id AND o.organization_id = k.organization_id
 AND o.ledger_id = k.ledger_id AND o.account_alias = k.account_alias
WHERE o.deleted_at IS NULL
  AND o.updated_at < :settled_before
  AND (o.id < :id_settled OR get_byte(uuid_send(o.id), 6) >> 4 <> 7)
  AND (:full_scope
       OR (o.id >= :id_lookback AND o.id < :id_upper AND substr(o.id::text, 15, 1) = '7'
           AND (o.id >= :id_lower OR (o.updated_at >= :win_start AND o.updated_at < :win_end))))
ORDER BY o.id
LIMIT :max_rows
