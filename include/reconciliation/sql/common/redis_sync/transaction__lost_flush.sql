-- Invariant (reference §6.5 step 6, §6.1-A, §7 item 1; LerianStudio/midaz#2425, PR #2499): a COLD balance
-- (no Redis key) equals its operation high-water mark L — its last balance_affected operation by
-- balance_version_after DESC, created_at DESC, id DESC:
--   available = L.available_balance_after, on_hold = L.on_hold_balance_after, and
--   R1: version >= L.balance_version_after (no-op increments); R2: version = L.balance_version_after when L
--   was written (UUIDv7 time) on or after the version-gap fix (:gap_fix_at), >= before it.
-- A mismatch on a cold balance is the lost-flush signature: Redis expired before PostgreSQL caught up.
-- This query returns every live balance that disagrees with L; the check drops the HOT ones (a key was found
-- by the Redis SCAN: Redis is authoritative and is judged there) and those a young backup-queue entry names.
-- In flight: the balance row or L written within the soft grace (updated_at / UUIDv7 time) is skipped.
-- Amounts leave as text: exact through Great Expectations' result serialisation (which turns Decimal into float).
-- Window scope: balances whose last operation L was written in [start, end) (UUIDv7 time of L's id; found
-- through the operations of the window, a PK range): the finding is placed at L, so one run judges it.
WITH touched AS (
  SELECT b.id
  FROM balance b
  WHERE :full_scope AND b.deleted_at IS NULL
  UNION
  SELECT o.balance_id
  FROM operation o
  WHERE NOT :full_scope AND o.id >= :id_lower AND o.id < :id_upper
    AND o.deleted_at IS NULL AND o.balance_affected
)
SELECT b.id::text AS entity,
       b.id AS balance_id,
       b.organization_id,
       b.ledger_id,
       b.alias,
       b.key,
       b.asset_code,
       b.available::text AS available,
       b.on_hold::text AS on_hold,
       COALESCE(b.version, 0) AS version,
       b.updated_at AS balance_updated_at,
       l.id AS last_operation_id,
       l.transaction_id AS last_transaction_id,
       l.available_balance_after::text AS expected_available,
       l.on_hold_balance_after::text AS expected_on_hold,
       l.balance_version_after AS expected_version
FROM touched t
JOIN balance b ON b.id = t.id AND b.deleted_at IS NULL
CROSS JOIN LATERAL (
  SELECT o.id, o.transaction_id, o.available_balance_after, o.on_hold_balance_after, o.balance_version_after,
         o.updated_at,
         to_timestamp((('x'||substr(replace(o.id::text,'-',''),1,12))::bit(48)::bigint)/1000.0) AS written_at
  FROM operation o
  WHERE o.organization_id = b.organization_id AND o.ledger_id = b.ledger_id AND o.account_id = b.account_id
    AND o.balance_id = b.id AND o.deleted_at IS NULL AND o.balance_affected
  ORDER BY o.balance_version_after DESC, o.created_at DESC, o.id DESC
  LIMIT 1
) l
WHERE (:full_scope OR (l.id >= :id_lower AND l.id < :id_upper))
  AND b.updated_at < :settled_before
  AND GREATEST(l.updated_at, l.written_at) < :settled_before
  AND (b.available <> l.available_balance_after
       OR b.on_hold <> l.on_hold_balance_after
       OR COALESCE(b.version, 0) < l.balance_version_after
       OR (:is_r2 AND l.written_at >= :gap_fix_at AND COALESCE(b.version, 0) <> l.balance_version_after))
