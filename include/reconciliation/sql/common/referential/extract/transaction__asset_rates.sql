-- Rule 4 extract: asset rates (window scope: written in the window) with their "from"/"to" codes and
-- whether each is past the soft grace. asset_rate is reference data (no deleted_at): streamed.
SELECT r.id, r.organization_id, r.ledger_id, r."from" AS from_code, r."to" AS to_code,
       GREATEST(r.updated_at,
         CASE WHEN substr(r.id::text, 15, 1) = '7'
              THEN to_timestamp((('x' || substr(replace(r.id::text, '-', ''), 1, 12))::bit(48)::bigint) / 1000.0) END)
         < :settled_before AS settled
FROM asset_rate r
WHERE :full_scope
   OR (substr(r.id::text, 15, 1) = '7' AND r.id >= :id_lower AND r.id < :id_upper)
   OR (r.updated_at >= :win_start AND r.updated_at < :win_end)
ORDER BY r.ledger_id, r.id
