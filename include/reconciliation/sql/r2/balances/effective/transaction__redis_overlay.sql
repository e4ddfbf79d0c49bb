-- 6.1-F, Redis part: for one SCAN batch of parsed balance keys, how far each Redis value is from its live
-- PostgreSQL row, signed like transaction__group_net.sql, and whether Redis is ahead (Version > version).
-- A key is matched to its row by the value's ID and by the key's organization, ledger, alias and balance key;
-- unmatched keys (unknown, recreated or deleted balances) are redis_sync findings and add nothing here.
-- Only keys that differ from PostgreSQL are returned (equal keys add nothing to any sum). Parameters: one text
-- per column, fields separated by chr(31) (the check rejects keys holding it).
SELECT r.id AS balance_id, b.organization_id, b.ledger_id, b.asset_code,
       CASE WHEN b.direction = 'debit' THEN -1 ELSE 1 END
             * ((r.available + r.on_hold) - (b.available + b.on_hold)) AS delta,
       r.version > COALESCE(b.version, 0) AS ahead
FROM unnest(string_to_array(:r_ids, chr(31))::uuid[], string_to_array(:r_orgs, chr(31))::uuid[],
            string_to_array(:r_ledgers, chr(31))::uuid[], string_to_array(:r_aliases, chr(31)),
            string_to_array(:r_keys, chr(31)), string_to_array(:r_available, chr(31))::numeric[],
            string_to_array(:r_on_hold, chr(31))::numeric[], string_to_array(:r_versions, chr(31))::bigint[])
     AS r(id, organization_id, ledger_id, alias, key, available, on_hold, version)
JOIN balance b ON b.id = r.id AND b.organization_id = r.organization_id AND b.ledger_id = r.ledger_id
              AND b.alias = r.alias AND b.key = r.key
WHERE b.deleted_at IS NULL
  AND (r.available + r.on_hold <> b.available + b.on_hold OR r.version > COALESCE(b.version, 0))
