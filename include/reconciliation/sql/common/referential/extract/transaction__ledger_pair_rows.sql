-- Rule 3 evidence: the rows (in scope) of the given (table, organization, ledger) triples whose ledger
-- is unknown, with whether each is past the soft grace. Streamed: its size is the violation count.
WITH k AS (
  SELECT * FROM unnest(:k_tables::text[], :k_orgs::uuid[], :k_ledgers::uuid[]) AS k(tbl, organization_id, ledger_id)
),
r AS (
  SELECT 'transaction' AS tbl, t.id, t.organization_id, t.ledger_id, t.updated_at, t.deleted_at
  FROM "transaction" t JOIN k ON k.tbl = 'transaction' AND k.organization_id = t.organization_id AND k.ledger_id = t.ledger_id
  WHERE :full_scope
     OR (t.id >= :id_lookback AND t.id < :id_upper AND substr(t.id::text, 15, 1) = '7'
         AND (t.id >= :id_lower OR (t.updated_at >= :win_start AND t.updated_at < :win_end)
              OR (t.deleted_at >= :win_start AND t.deleted_at < :win_end)))
  UNION ALL
  SELECT 'operation', o.id, o.organization_id, o.ledger_id, o.updated_at, o.deleted_at
  FROM operation o JOIN k ON k.tbl = 'operation' AND k.organization_id = o.organization_id AND k.ledger_id = o.ledger_id
  WHERE :full_scope
     OR (o.id >= :id_lookback AND o.id < :id_upper AND substr(o.id::text, 15, 1) = '7'
         AND (o.id >= :id_lower OR (o.updated_at >= :win_start AND o.updated_at < :win_end)
              OR (o.deleted_at >= :win_start AND o.deleted_at < :win_end)))
  UNION ALL
  SELECT 'balance', b.id, b.organization_id, b.ledger_id, b.updated_at, b.deleted_at
  FROM balance b JOIN k ON k.tbl = 'balance' AND k.organization_id = b.organization_id AND k.ledger_id = b.ledger_id
  WHERE :full_scope
     OR (substr(b.id::text, 15, 1) = '7' AND b.id >= :id_lower AND b.id < :id_upper)
     OR (b.deleted_at >= :win_start AND b.deleted_at < :win_end)
  UNION ALL
  SELECT 'asset_rate', x.id, x.organization_id, x.ledger_id, x.updated_at, NULL::timestamptz
  FROM asset_rate x JOIN k ON k.tbl = 'asset_rate' AND k.organization_id = x.organization_id AND k.ledger_id = x.ledger_id
  WHERE :full_scope
     OR (substr(x.id::text, 15, 1) = '7' AND x.id >= :id_lower AND x.id < :id_upper)
     OR (x.updated_at >= :win_start AND x.updated_at < :win_end)
  UNION ALL
  SELECT 'operation_route', x.id, x.organization_id, x.ledger_id, x.updated_at, x.deleted_at
  FROM operation_route x JOIN k ON k.tbl = 'operation_route' AND k.organization_id = x.organization_id AND k.ledger_id = x.ledger_id
  WHERE :full_scope
     OR (substr(x.id::text, 15, 1) = '7' AND x.id >= :id_lower AND x.id < :id_upper)
     OR (x.updated_at >= :win_start AND x.updated_at < :win_end)
     OR (x.deleted_at >= :win_start AND x.deleted_at < :win_end)
  UNION ALL
  SELECT 'transaction_route', x.id, x.organization_id, x.ledger_id, x.updated_at, x.deleted_at
  FROM transaction_route x JOIN k ON k.tbl = 'transaction_route' AND k.organization_id = x.organization_id AND k.ledger_id = x.ledger_id
  WHERE :full_scope
     OR (substr(x.id::text, 15, 1) = '7' AND x.id >= :id_lower AND x.id < :id_upper)
     OR (x.updated_at >= :win_start AND x.updated_at < :win_end)
     OR (x.deleted_at >= :win_start AND x.deleted_at < :win_end)
)
SELECT r.tbl, r.id, r.organization_id, r.ledger_id,
       GREATEST(r.updated_at, r.deleted_at,
         CASE WHEN substr(r.id::text, 15, 1) = '7'
              THEN to_timestamp((('x' || substr(replace(r.id::text, '-', ''), 1, 12))::bit(48)::bigint) / 1000.0) END)
         < :settled_before AS settled
FROM r
ORDER BY r.tbl, r.id
