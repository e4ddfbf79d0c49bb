-- 6.3-d: a transaction is reversed at most once (reference §6.3, §5.1: the revert handler refuses a
-- parent that already has a child, GetParentByTransactionID).
-- Entity: the PARENT transaction id; evidence: the ids of its live reversals, oldest first.
-- In flight: only reversals written before the soft grace count (a younger duplicate is judged next run).
-- Window scope: the finding starts with the parent's SECOND reversal, so a window reports a parent when
-- one of its reversals after the first (by UUIDv7 id) was written in it — or has an operation written in
-- it; all reversals of such a parent are counted (idx_transaction_parent_transaction_id).
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
),
kids AS (
  SELECT c.id, c.parent_transaction_id,
         row_number() OVER (PARTITION BY c.parent_transaction_id ORDER BY c.id) AS nth
  FROM "transaction" c
  WHERE c.deleted_at IS NULL
    AND c.parent_transaction_id IS NOT NULL
    AND c.updated_at < :settled_before
    AND NOT (c.id >= :young_id_lower AND c.id < :future_id_lower)
    AND (:full_scope OR c.parent_transaction_id = ANY (ARRAY(
          SELECT w.parent_transaction_id FROM "transaction" w
          WHERE w.id = ANY (ARRAY(SELECT id FROM win)) AND w.parent_transaction_id IS NOT NULL)))
)
SELECT k.parent_transaction_id::text AS entity, p.organization_id, p.ledger_id,
       k.parent_transaction_id AS transaction_id, COUNT(*) AS reversals,
       array_agg(k.id::text ORDER BY k.id) AS reversal_ids
FROM kids k
LEFT JOIN "transaction" p ON p.id = k.parent_transaction_id
GROUP BY k.parent_transaction_id, p.organization_id, p.ledger_id
HAVING COUNT(*) > 1
   AND (:full_scope OR bool_or(k.nth > 1 AND k.id = ANY (ARRAY(SELECT id FROM win))))
