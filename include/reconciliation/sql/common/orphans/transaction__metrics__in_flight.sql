-- In-flight transactions of the orphans scope (reference §6.6; DESIGN §4 "in flight is not a violation"):
-- live transactions written, or given a live operation, within the soft grace (UUIDv7 id time, as
-- primary-key ranges), plus older ones excused by a backup-queue entry younger than the hard grace.
-- Backup-queue entries without a transaction row yet are counted by the check itself.
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
),
excused AS (
  SELECT t.id FROM "transaction" t
  WHERE t.id >= :young_id_lower AND t.id < :future_id_lower AND t.deleted_at IS NULL
  UNION
  SELECT o.transaction_id FROM operation o
  WHERE o.id >= :young_id_lower AND o.id < :future_id_lower AND o.deleted_at IS NULL
  UNION
  SELECT t.id FROM "transaction" t WHERE t.id = ANY(:evidence_txids::uuid[]) AND t.deleted_at IS NULL
)
SELECT COUNT(*) AS in_flight
FROM excused e
WHERE :full_scope OR e.id IN (SELECT id FROM win)
