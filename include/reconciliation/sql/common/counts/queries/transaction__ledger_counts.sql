-- Rows (total, live) per table and (organization, ledger) of the transaction database (R1 tables;
-- asset_rate has no deleted_at: live = total). Full scope: every row (exact). Window scope: rows written
-- in the window (UUIDv7 id time, updated_at or deleted_at in [start, end)); transaction and operation are
-- read by primary-key range from :id_lookback (window start minus the hard grace).
SELECT 'transaction' AS tbl, t.organization_id, t.ledger_id,
       count(*) AS total, count(*) FILTER (WHERE t.deleted_at IS NULL) AS live
FROM "transaction" t
WHERE :full_scope
   OR (t.id >= :id_lookback AND t.id < :id_upper AND substr(t.id::text, 15, 1) = '7'
       AND (t.id >= :id_lower OR (t.updated_at >= :win_start AND t.updated_at < :win_end)
            OR (t.deleted_at >= :win_start AND t.deleted_at < :win_end)))
GROUP BY t.organization_id, t.ledger_id
UNION ALL
SELECT 'operation', o.organization_id, o.ledger_id, count(*), count(*) FILTER (WHERE o.deleted_at IS NULL)
FROM operation o
WHERE :full_scope
   OR (o.id >= :id_lookback AND o.id < :id_upper AND substr(o.id::text, 15, 1) = '7'
       AND (o.id >= :id_lower OR (o.updated_at >= :win_start AND o.updated_at < :win_end)
            OR (o.deleted_at >= :win_start AND o.deleted_at < :win_end)))
GROUP BY o.organization_id, o.ledger_id
UNION ALL
SELECT 'balance', b.organization_id, b.ledger_id, count(*), count(*) FILTER (WHERE b.deleted_at IS NULL)
FROM balance b
WHERE :full_scope
   OR (substr(b.id::text, 15, 1) = '7' AND b.id >= :id_lower AND b.id < :id_upper)
   OR (b.updated_at >= :win_start AND b.updated_at < :win_end)
   OR (b.deleted_at >= :win_start AND b.deleted_at < :win_end)
GROUP BY b.organization_id, b.ledger_id
UNION ALL
SELECT 'asset_rate', r.organization_id, r.ledger_id, count(*), count(*)
FROM asset_rate r
WHERE :full_scope
   OR (substr(r.id::text, 15, 1) = '7' AND r.id >= :id_lower AND r.id < :id_upper)
   OR (r.updated_at >= :win_start AND r.updated_at < :win_end)
GROUP BY r.organization_id, r.ledger_id
UNION ALL
SELECT 'operation_route', r.organization_id, r.ledger_id, count(*), count(*) FILTER (WHERE r.deleted_at IS NULL)
FROM operation_route r
WHERE :full_scope
   OR (substr(r.id::text, 15, 1) = '7' AND r.id >= :id_lower AND r.id < :id_upper)
   OR (r.updated_at >= :win_start AND r.updated_at < :win_end)
   OR (r.deleted_at >= :win_start AND r.deleted_at < :win_end)
GROUP BY r.organization_id, r.ledger_id
UNION ALL
SELECT 'transaction_route', r.organization_id, r.ledger_id, count(*), count(*) FILTER (WHERE r.deleted_at IS NULL)
FROM transaction_route r
WHERE :full_scope
   OR (substr(r.id::text, 15, 1) = '7' AND r.id >= :id_lower AND r.id < :id_upper)
   OR (r.updated_at >= :win_start AND r.updated_at < :win_end)
   OR (r.deleted_at >= :win_start AND r.deleted_at < :win_end)
GROUP BY r.organization_id, r.ledger_id
