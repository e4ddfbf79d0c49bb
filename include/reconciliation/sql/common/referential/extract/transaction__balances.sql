-- Every live balance, ordered by account_id (full scope: merged with the accounts extract).
-- young: written (updated_at or UUIDv7 id time) within the soft grace.
SELECT b.account_id, b.id, b.organization_id, b.ledger_id, b.alias, b.asset_code, b.account_type, b.key,
       NOT (b.updated_at < :settled_before
            AND (b.id < :id_settled OR get_byte(uuid_send(b.id), 6) >> 4 <> 7)) AS young
FROM balance b
WHERE b.deleted_at IS NULL
ORDER BY b.account_id, b.id
