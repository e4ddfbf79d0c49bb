-- Rule 3 extract: the distinct (organization_id, ledger_id) each transaction-database table references
-- (all rows, live or not; window scope: rows written in the window — for balances, created or
-- soft-deleted in it: a balance's updated_at moves with every amount sync). Small: one row per ledger and table.
SELECT 'transaction' AS tbl, t.organization_id, t.ledger_id
FROM "transaction" t
WHERE :full_scope
   OR (t.id >= :id_lookback AND t.id < :id_upper AND substr(t.id::text, 15, 1) = '7'
       AND (t.id >= :id_lower OR (t.updated_at >= :win_start AND t.updated_at < :win_end)
            OR (t.deleted_at >= :win_start AND t.deleted_at < :win_end)))
GROUP BY t.organization_id, t.ledger_id
UNION ALL
SELECT 'operation', o.organization_id, o.ledger_id
FROM operation o
WHERE :full_scope
   OR (o.id >= :id_lookback AND o.id < :id_upper AND substr(o.id::text, 15, 1) = '7'
       AND (o.id >= :id_lower OR (o.updated_at >= :win_start AND o.updated_at < :win_end)
            OR (o.deleted_at >= :win_start AND o.deleted_at < :win_end)))
GROUP BY o.organization_id, o.ledger_id
UNION ALL
SELECT 'balance', b.organization_id, b.ledger_id
FROM balance b
WHERE :full_scope
   OR (substr(b.id::text, 15, 1) = '7' AND b.id >= :id_lower AND b.id < :id_upper)
   OR (b.deleted_at >= :win_start AND b.deleted_at < :win_end)
GROUP BY b.organization_id, b.ledger_id
UNION ALL
SELECT 'asset_rate', r.organization_id, r.ledger_id
FROM asset_rate r
WHERE :full_scope
   OR (substr(r.id::text, 15, 1) = '7' AND r.id >= :id_lower AND r.id < :id_upper)
   OR (r.updated_at >= :win_start AND r.updated_at < :win_end)
GROUP BY r.organization_id, r.ledger_id
UNION ALL
SELECT 'operation_route', r.organization_id, r.ledger_id
FROM operation_route r
WHERE :full_scope
   OR (substr(r.id::text, 15, 1) = '7' AND r.id >= :id_lower AND r.id < :id_upper)
   OR (r.updated_at >= :win_start AND r.updated_at < :win_end)
   OR (r.deleted_at >= :win_start AND r.deleted_at < :win_end)
GROUP BY r.organization_id, r.ledger_id
UNION ALL
SELECT 'transaction_route', r.organization_id, r.ledger_id
FROM transaction_route r
WHERE :full_scope
   OR (substr(r.id::text, 15, 1) = '7' AND r.id >= :id_lower AND r.id < :id_upper)
   OR (r.updated_at >= :win_start AND r.updated_at < :win_end)
   OR (r.deleted_at >= :win_start AND r.deleted_at < :win_end)
GROUP BY r.organization_id, r.ledger_id
