-- Rule 4: the asset codes of one batch of ledgers, with whether any row of the code is live.
SELECT s.organization_id, s.ledger_id, s.code, bool_or(s.deleted_at IS NULL) AS any_live
FROM asset s
WHERE s.ledger_id = ANY(:ids::uuid[])
GROUP BY s.organization_id, s.ledger_id, s.code
