-- Every account, ordered by id (full scope: merged with the balances and operation extracts).
-- young: written (updated_at, deleted_at or UUIDv7 id time) within the soft grace.
SELECT a.id, a.organization_id, a.ledger_id, a.alias, a.asset_code, a.type,
       a.deleted_at IS NOT NULL AS deleted,
       NOT (a.updated_at < :settled_before AND (a.deleted_at IS NULL OR a.deleted_at < :settled_before)
            AND (a.id < :id_settled OR get_byte(uuid_send(a.id), 6) >> 4 <> 7)) AS young
FROM account a
ORDER BY a.id
