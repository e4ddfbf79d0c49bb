-- Double entry per transaction, Midaz v3 (R1) rules — reference §6.2, DESIGN §7.
--
-- ONE pass: "transaction" merge-joined to its live operations (primary key and
-- idx_operation_organization_transaction_id give the same order), grouped by transaction id with a sorted
-- GroupAggregate — never a hash aggregate of 10M rows (DESIGN §4). Every rule of §6.2 is judged on that one
-- aggregate; the result has one row per (transaction, violated kind): `kind` names the catalog kind,
-- `kind_total` is its exact count, and the kinds are interleaved so that a capped sample holds each one.
-- Per-row facts that only need "any operation such that …" are OR-ed into one bit_or(), and the
-- conservation sums skip on_hold columns that did not move: the aggregate stays a handful of transitions
-- per operation.
--
-- Invariants, for every settled live transaction T (its live operations; none at all is judged too):
--   unbalanced_transaction   the status rule on Σ amount per operation type:
--                              APPROVED  DEBIT = CREDIT = amount, RELEASE = 0, ON_HOLD ∈ {0, amount}
--                              NOTED     DEBIT = CREDIT = amount, ON_HOLD = RELEASE = 0
--                              PENDING   ON_HOLD = amount, DEBIT = CREDIT = RELEASE = 0
--                              CANCELED  ON_HOLD = RELEASE = amount, DEBIT = CREDIT = 0
--                            any other status (the orphans check reports the status itself, DESIGN §7):
--                            the operations fit one of these patterns
--   operation_asset_mismatch every operation's asset_code = T.asset_code
--   unknown_operation_type   every operation type is DEBIT, CREDIT, ON_HOLD or RELEASE
--   balance_affected_mismatch balance_affected is false exactly when T is NOTED
--   value_not_conserved      Σ over balance_affected operations of
--                              (available_after − available) + (on_hold_after − on_hold) = 0
--                            (R1 balances are all credit-normal: no balance join needed)
--
-- In flight (skipped; counted by transaction__metrics__in_flight.sql): T or any of its operations written
-- within the soft grace — updated_at, or UUIDv7 id time as a primary-key comparison with :young_id_lower
-- (ids at or beyond :future_id_lower carry no usable time) — never created_at (it can be backdated);
-- and T named by a backup-queue entry younger than the hard grace (:evidence_txids, reference §6.6).
--
-- Window scope: T written in [start, end) by UUIDv7 id, or T having an operation written in the window
-- (commit/cancel operations of an older pending) — both primary-key ranges. Full scope: every transaction.
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
),
agg AS (
  SELECT t.id, t.organization_id, t.ledger_id, t.status, t.amount, t.asset_code,
         COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'DEBIT'), 0)   AS debit,
         COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'CREDIT'), 0)  AS credit,
         COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'ON_HOLD'), 0) AS on_hold,
         COALESCE(SUM(o.amount) FILTER (WHERE o.type = 'RELEASE'), 0) AS release,
         COALESCE(SUM(o.available_balance_after - o.available_balance) FILTER (WHERE o.balance_affected), 0)
           + COALESCE(SUM(o.on_hold_balance_after - o.on_hold_balance)
                        FILTER (WHERE o.balance_affected AND o.on_hold_balance_after <> o.on_hold_balance), 0)
           AS net,
         COUNT(o.id) AS n_ops,
         -- bit 1 unknown type, 2 asset differs, 4 balance_affected wrong, 8 written within the grace
         COALESCE(bit_or(  CASE WHEN o.type NOT IN ('DEBIT', 'CREDIT', 'ON_HOLD', 'RELEASE') THEN 1 ELSE 0 END
                         | CASE WHEN o.asset_code <> t.asset_code THEN 2 ELSE 0 END
                         | CASE WHEN o.balance_affected = (t.status = 'NOTED') THEN 4 ELSE 0 END
                         | CASE WHEN o.updated_at >= :settled_before
                                  OR (o.id >= :young_id_lower AND o.id < :future_id_lower) THEN 8 ELSE 0 END), 0)
           AS flags
  FROM "transaction" t
  LEFT JOIN operation o ON o.transaction_id = t.id AND o.deleted_at IS NULL
  WHERE t.deleted_at IS NULL
    AND (:full_scope OR t.id = ANY (ARRAY(SELECT id FROM win)))
    AND t.updated_at < :settled_before
    AND NOT (t.id >= :young_id_lower AND t.id < :future_id_lower)
  GROUP BY t.id
  OFFSET 0  -- a fence: the judging below must not be pushed into HAVING (it would duplicate aggregates)
),
judged AS (
  SELECT a.*,
         NOT CASE a.status
           WHEN 'APPROVED' THEN a.debit = a.amount AND a.credit = a.amount AND a.release = 0
                                AND a.on_hold IN (0, a.amount)
           WHEN 'NOTED'    THEN a.debit = a.amount AND a.credit = a.amount AND a.on_hold = 0 AND a.release = 0
           WHEN 'PENDING'  THEN a.on_hold = a.amount AND a.debit = 0 AND a.credit = 0 AND a.release = 0
           WHEN 'CANCELED' THEN a.on_hold = a.amount AND a.release = a.amount AND a.debit = 0 AND a.credit = 0
           ELSE (a.debit = a.amount AND a.credit = a.amount AND a.release = 0 AND a.on_hold IN (0, a.amount))
             OR (a.on_hold = a.amount AND a.debit = 0 AND a.credit = 0 AND a.release IN (0, a.amount))
         END AS unbalanced,
         a.net <> 0 AS not_conserved,
         a.flags & 2 <> 0 AS asset_mismatch,
         a.flags & 1 <> 0 AS unknown_type,
         a.flags & 4 <> 0 AS affected_mismatch
  FROM agg a
  WHERE a.flags & 8 = 0
),
violating AS (
  SELECT * FROM judged
  WHERE (unbalanced OR not_conserved OR asset_mismatch OR unknown_type OR affected_mismatch)
    AND NOT (id = ANY(:evidence_txids::uuid[]))
)
SELECT k.kind, v.id::text AS entity, v.organization_id, v.ledger_id, v.id AS transaction_id,
       v.status, v.amount, v.asset_code, v.debit, v.credit, v.on_hold, v.release, v.net, v.n_ops,
       COUNT(*) OVER (PARTITION BY k.kind) AS kind_total
FROM violating v
CROSS JOIN LATERAL (VALUES ('unbalanced_transaction', v.unbalanced),
                           ('value_not_conserved', v.not_conserved),
                           ('operation_asset_mismatch', v.asset_mismatch),
                           ('unknown_operation_type', v.unknown_type),
                           ('balance_affected_mismatch', v.affected_mismatch)) AS k(kind, bad)
WHERE k.bad
ORDER BY row_number() OVER (PARTITION BY k.kind ORDER BY v.id), k.kind
