-- In-flight transactions of the double-entry scope (reference §6.6; DESIGN §4 "in flight is not a
-- violation"): live transactions written, or given a live operation, within the soft grace — by UUIDv7 id
-- time, as primary-key ranges (index-only, no table scan) — plus those named by a backup-queue entry
-- younger than the hard grace (:evidence_txids). Transactions only re-written within the grace (updated_at,
-- e.g. a backup-queue recovery) are skipped by the invariant too, but not counted here.
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
),
young AS (
  SELECT t.id FROM "transaction" t
  WHERE t.id >= :young_id_lower AND t.id < :future_id_lower AND t.deleted_at IS NULL
  UNION
  SELECT o.transaction_id FROM operation o
  WHERE o.id >= :young_id_lower AND o.id < :future_id_lower AND o.deleted_at IS NULL
  UNION
  SELECT t.id FROM "transaction" t WHERE t.id = ANY(:evidence_txids::uuid[]) AND t.deleted_at IS NULL
)
SELECT COUNT(*) AS in_flight
FROM young y
WHERE :full_scope OR y.id IN (SELECT id FROM win)
