-- Rule 4 evidence: the settled live transactions (in scope) of the given (organization, ledger,
-- asset_code) triples, at most :max_rows of them.
-- Settled (past the soft grace) = updated_at before :settled_before and, for a UUIDv7 id, the id below
-- :id_settled (the smallest UUIDv7 of that instant: an index-friendly form of "UUIDv7 time before it").
SELECT t.id, t.organization_id, t.ledger_id, t.asset_code
FROM "transaction" t
JOIN unnest(:k_orgs::uuid[], :k_ledgers::uuid[], :k_codes::text[]) AS k(organization_id, ledger_id, asset_code)
  ON t.organization_id = k.organization_id AND t.ledger_id = k.ledger_id AND t.asset_code = k.asset_code
WHERE t.deleted_at IS NULL
  AND t.updated_at < :settled_before
  AND (t.id < :id_settled OR get_byte(uuid_send(t.id), 6) >> 4 <> 7)
  AND (:full_scope
       OR (t.id >= :id_lookback AND t.id < :id_upper AND substr(t.id::text, 15, 1) = '7'
           AND (t.id >= :id_lower OR (t.updated_at >= :win_start AND t.updated_at < :win_end))))
ORDER BY t.id
LIMIT :max_rows
