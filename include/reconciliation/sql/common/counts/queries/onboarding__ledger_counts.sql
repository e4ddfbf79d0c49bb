-- Rows (total, live) per table and (organization, ledger) of the onboarding database.
-- Full scope: every row (exact). Window scope: rows written in the window (UUIDv7 id time, updated_at or
-- deleted_at in [start, end)).
SELECT 'ledger' AS tbl, l.organization_id, l.id AS ledger_id,
       count(*) AS total, count(*) FILTER (WHERE l.deleted_at IS NULL) AS live
FROM ledger l
WHERE :full_scope
   OR (substr(l.id::text, 15, 1) = '7' AND l.id >= :id_lower AND l.id < :id_upper)
   OR (l.updated_at >= :win_start AND l.updated_at < :win_end)
   OR (l.deleted_at >= :win_start AND l.deleted_at < :win_end)
GROUP BY l.organization_id, l.id
UNION ALL
SELECT 'asset', x.organization_id, x.ledger_id, count(*), count(*) FILTER (WHERE x.deleted_at IS NULL)
FROM asset x
WHERE :full_scope
   OR (substr(x.id::text, 15, 1) = '7' AND x.id >= :id_lower AND x.id < :id_upper)
   OR (x.updated_at >= :win_start AND x.updated_at < :win_end)
   OR (x.deleted_at >= :win_start AND x.deleted_at < :win_end)
GROUP BY x.organization_id, x.ledger_id
UNION ALL
SELECT 'segment', x.organization_id, x.ledger_id, count(*), count(*) FILTER (WHERE x.deleted_at IS NULL)
FROM segment x
WHERE :full_scope
   OR (substr(x.id::text, 15, 1) = '7' AND x.id >= :id_lower AND x.id < :id_upper)
   OR (x.updated_at >= :win_start AND x.updated_at < :win_end)
   OR (x.deleted_at >= :win_start AND x.deleted_at < :win_end)
GROUP BY x.organization_id, x.ledger_id
UNION ALL
SELECT 'portfolio', x.organization_id, x.ledger_id, count(*), count(*) FILTER (WHERE x.deleted_at IS NULL)
FROM portfolio x
WHERE :full_scope
   OR (substr(x.id::text, 15, 1) = '7' AND x.id >= :id_lower AND x.id < :id_upper)
   OR (x.updated_at >= :win_start AND x.updated_at < :win_end)
   OR (x.deleted_at >= :win_start AND x.deleted_at < :win_end)
GROUP BY x.organization_id, x.ledger_id
UNION ALL
SELECT 'account', x.organization_id, x.ledger_id, count(*), count(*) FILTER (WHERE x.deleted_at IS NULL)
FROM account x
WHERE :full_scope
   OR (substr(x.id::text, 15, 1) = '7' AND x.id >= :id_lower AND x.id < :id_upper)
   OR (x.updated_at >= :win_start AND x.updated_at < :win_end)
   OR (x.deleted_at >= :win_start AND x.deleted_at < :win_end)
GROUP BY x.organization_id, x.ledger_id
UNION ALL
SELECT 'account_type', x.organization_id, x.ledger_id, count(*), count(*) FILTER (WHERE x.deleted_at IS NULL)
FROM account_type x
WHERE :full_scope
   OR (substr(x.id::text, 15, 1) = '7' AND x.id >= :id_lower AND x.id < :id_upper)
   OR (x.updated_at >= :win_start AND x.updated_at < :win_end)
   OR (x.deleted_at >= :win_start AND x.deleted_at < :win_end)
GROUP BY x.organization_id, x.ledger_id
