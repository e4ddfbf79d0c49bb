-- 6.3-e: `body` (the parsed DSL) is set if and only if the transaction is PENDING (reference §2.2, §5.1:
-- FromEntity writes it only when non-empty; commit and cancel set it to NULL). A JSON `null` counts as no
-- body. Judged for the four stored statuses only (other statuses are reported as such).
-- Entity: the transaction id.
-- In flight (skipped): the transaction or one of its operations written within the soft grace (updated_at
-- or UUIDv7 id time) — with RABBITMQ_TRANSACTION_ASYNC the consumer nulls the body after the status
-- change — or the transaction named by a backup-queue entry younger than the hard grace (:evidence_txids).
-- Window scope: transactions written in the window or with an operation written in it.
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
)
SELECT t.id::text AS entity, t.organization_id, t.ledger_id, t.id AS transaction_id,
       t.status, (t.body IS NOT NULL AND t.body <> 'null'::jsonb) AS has_body, t.updated_at
FROM "transaction" t
WHERE t.deleted_at IS NULL
  AND t.status IN ('APPROVED', 'PENDING', 'CANCELED', 'NOTED')
  AND (t.status = 'PENDING') <> (t.body IS NOT NULL AND t.body <> 'null'::jsonb)
  AND (:full_scope OR t.id = ANY (ARRAY(SELECT id FROM win)))
  AND t.updated_at < :settled_before
  AND NOT (t.id >= :young_id_lower AND t.id < :future_id_lower)
  AND NOT EXISTS (SELECT 1 FROM operation y
                  WHERE y.transaction_id = t.id AND y.deleted_at IS NULL
                    AND (y.updated_at >= :settled_before OR (y.id >= :young_id_lower AND y.id < :future_id_lower)))
  AND NOT (t.id = ANY(:evidence_txids::uuid[]))
