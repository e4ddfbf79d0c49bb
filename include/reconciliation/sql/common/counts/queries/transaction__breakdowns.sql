-- Breakdowns of live rows (reference §6.8): transaction by status, operation by (type,
-- balance_affected), balance by (account_type, key = 'default'). Full scope: every live row (exact).
-- Window scope: live rows written in the window (same rule as transaction__ledger_counts.sql).
SELECT 'transaction_status' AS dimension, t.status AS k1, NULL::text AS k2, count(*) AS n
FROM "transaction" t
WHERE t.deleted_at IS NULL
  AND (:full_scope
       OR (t.id >= :id_lookback AND t.id < :id_upper AND substr(t.id::text, 15, 1) = '7'
           AND (t.id >= :id_lower OR (t.updated_at >= :win_start AND t.updated_at < :win_end))))
GROUP BY t.status
UNION ALL
SELECT 'operation_type', o.type, o.balance_affected::text, count(*)
FROM operation o
WHERE o.deleted_at IS NULL
  AND (:full_scope
       OR (o.id >= :id_lookback AND o.id < :id_upper AND substr(o.id::text, 15, 1) = '7'
           AND (o.id >= :id_lower OR (o.updated_at >= :win_start AND o.updated_at < :win_end))))
GROUP BY o.type, o.balance_affected
UNION ALL
SELECT 'balance_account_type', b.account_type, (b.key = 'default')::text, count(*)
FROM balance b
WHERE b.deleted_at IS NULL
  AND (:full_scope
       OR (substr(b.id::text, 15, 1) = '7' AND b.id >= :id_lower AND b.id < :id_upper)
       OR (b.updated_at >= :win_start AND b.updated_at < :win_end))
GROUP BY b.account_type, b.key = 'default'
ORDER BY 1, 2, 3
