-- R1 (DESIGN §7): soft-deleted accounts, whose balances Midaz v3 leaves live by design; their live
-- default balances are left out of the accounts = default balances rule. Streamed in chunks.
-- Full scope: every ledger; window scope: the given ledgers.
SELECT a.id, a.organization_id, a.ledger_id, a.deleted_at
FROM account a
WHERE a.deleted_at IS NOT NULL
  AND (:full_scope
       OR (a.organization_id, a.ledger_id) IN (SELECT * FROM unnest(:k_orgs::uuid[], :k_ledgers::uuid[])))
ORDER BY a.id
