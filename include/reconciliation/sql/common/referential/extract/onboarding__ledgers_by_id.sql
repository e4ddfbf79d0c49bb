-- Rules 3/4: the ledgers of one batch of referenced ledger ids (live or soft-deleted: both exist).
SELECT l.id, l.organization_id, l.deleted_at IS NOT NULL AS deleted
FROM ledger l
WHERE l.id = ANY(:ids::uuid[])
