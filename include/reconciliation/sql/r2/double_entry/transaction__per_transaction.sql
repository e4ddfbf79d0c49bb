-- Double entry per transaction, Midaz v4 (R2) rules — reference §6.2, DESIGN §7.
--
-- ONE pass, planned as in the R1 file: "transaction" merge-joined to its live operations, sorted
-- GroupAggregate by transaction id, every kind judged on that one aggregate; one row per (transaction,
-- violated kind) with `kind` and its exact `kind_total`, kinds interleaved. The balance direction needed by
-- the conservation rule is a per-operation membership test in the debit-direction balances (it keeps the
-- scan order; a join would not).
--
-- Invariants, for every settled live transaction T (its live operations; none at all is judged too;
-- persisted CREATED and reversal amounts are the orphans check's, DESIGN §7):
--   unbalanced_transaction   reported only when T breaks BOTH rules below (the pending mode — route
--                            validation on or off — is not recorded on the rows, reference §6.2 caveat):
--     status rule            the R1 totals (APPROVED DEBIT = CREDIT = amount, RELEASE 0, ON_HOLD 0 or amount;
--                            NOTED DEBIT = CREDIT = amount only; PENDING ON_HOLD = amount only; CANCELED
--                            ON_HOLD = RELEASE = amount only) OR the route-validation totals (PENDING DEBIT =
--                            ON_HOLD = amount; APPROVED DEBIT = CREDIT = amount, ON_HOLD = 2×amount, RELEASE 0;
--                            CANCELED DEBIT = ON_HOLD = RELEASE = CREDIT = amount); another status: any of them
--     direction rule         Σ amount of debit-direction = Σ amount of credit-direction operations, OVERDRAFT
--                            companions excluded; a NULL/empty direction is inferred from the type (DEBIT,
--                            ON_HOLD → debit; CREDIT, RELEASE → credit; R2 inferLegacyDirectionFromType). It
--                            cannot vouch for a PENDING or CANCELED T with a legacy-direction row (single-sided
--                            by design, §6.2): the status rule alone decides there
--   operation_asset_mismatch every operation's asset_code = T.asset_code
--   unknown_operation_type   every type is DEBIT, CREDIT, ON_HOLD, RELEASE, OVERDRAFT, BLOCK or UNBLOCK
--   balance_affected_mismatch balance_affected is false exactly when T is NOTED
--   value_not_conserved      Σ over balance_affected operations of sign(balance.direction) ×
--                            ((available_after − available) + (on_hold_after − on_hold)) = 0, sign −1 for a
--                            debit-direction balance (a missing balance row counts as credit-normal; the
--                            orphans check reports it). The debit-direction balances come as a constant
--                            list (:debit_balance_ids, hashed by PostgreSQL) when the check could list them
--                            all (:debit_balances_listed), else from a hashed sub-plan over `balance`.
--
-- In flight and window scope: as in the R1 file.
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
         -- direction rule, as a deviation from the type-inferred directions: Σ debit-direction − Σ
         -- credit-direction = (DEBIT + ON_HOLD − CREDIT − RELEASE) + Σ deviation, where only rows whose
         -- direction differs from their type's (route-validation legs, BLOCK/UNBLOCK, odd spellings) add
         -- anything — so ordinary rows cost a comparison, not an extra sum
         COALESCE(SUM(CASE
             WHEN lower(o.direction) = 'debit' THEN
               CASE WHEN o.type IN ('CREDIT', 'RELEASE') THEN 2 * o.amount
                    WHEN o.type IN ('DEBIT', 'ON_HOLD') THEN 0 ELSE o.amount END
             WHEN lower(o.direction) = 'credit' THEN
               CASE WHEN o.type IN ('DEBIT', 'ON_HOLD') THEN -2 * o.amount
                    WHEN o.type IN ('CREDIT', 'RELEASE') THEN 0 ELSE -o.amount END
             ELSE  -- an explicit direction that is neither: the row counts on no side
               CASE WHEN o.type IN ('DEBIT', 'ON_HOLD') THEN -o.amount
                    WHEN o.type IN ('CREDIT', 'RELEASE') THEN o.amount ELSE 0 END
           END) FILTER (WHERE o.type <> 'OVERDRAFT' AND CASE
             WHEN o.direction = 'debit' THEN o.type NOT IN ('DEBIT', 'ON_HOLD')
             WHEN o.direction = 'credit' THEN o.type NOT IN ('CREDIT', 'RELEASE')
             WHEN COALESCE(o.direction, '') = '' THEN FALSE  -- legacy row: its inferred direction, no deviation
             ELSE TRUE END), 0) AS direction_deviation,
         -- credit-normal net, minus twice the part booked on debit-direction balances = Σ sign × delta
         COALESCE(SUM(o.available_balance_after - o.available_balance) FILTER (WHERE o.balance_affected), 0)
           + COALESCE(SUM(o.on_hold_balance_after - o.on_hold_balance)
                        FILTER (WHERE o.balance_affected AND o.on_hold_balance_after <> o.on_hold_balance), 0)
           - 2 * COALESCE(SUM(CASE WHEN o.balance_affected
                                     AND CASE WHEN :debit_balances_listed
                                              THEN o.balance_id = ANY (:debit_balance_ids::uuid[])
                                              ELSE o.balance_id IN (SELECT b.id FROM balance b
                                                                    WHERE b.direction = 'debit') END
                                   THEN (o.available_balance_after - o.available_balance)
                                        + (o.on_hold_balance_after - o.on_hold_balance) END), 0)
           AS net,
         COUNT(o.id) AS n_ops,
         -- bit 1 unknown type, 2 asset differs, 4 balance_affected wrong, 8 written within the grace,
         -- 16 a legacy (NULL/empty) direction
         COALESCE(bit_or(  CASE WHEN o.type NOT IN ('DEBIT', 'CREDIT', 'ON_HOLD', 'RELEASE',
                                                    'OVERDRAFT', 'BLOCK', 'UNBLOCK') THEN 1 ELSE 0 END
                         | CASE WHEN o.asset_code <> t.asset_code THEN 2 ELSE 0 END
                         | CASE WHEN o.balance_affected = (t.status = 'NOTED') THEN 4 ELSE 0 END
                         | CASE WHEN o.updated_at >= :settled_before
                                  OR (o.id >= :young_id_lower AND o.id < :future_id_lower) THEN 8 ELSE 0 END
                         | CASE WHEN o.id IS NOT NULL AND COALESCE(o.direction, '') = '' THEN 16 ELSE 0 END), 0)
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
                                AND a.on_hold IN (0, a.amount, 2 * a.amount)
           WHEN 'NOTED'    THEN a.debit = a.amount AND a.credit = a.amount AND a.on_hold = 0 AND a.release = 0
           WHEN 'PENDING'  THEN a.on_hold = a.amount AND a.credit = 0 AND a.release = 0 AND a.debit IN (0, a.amount)
           WHEN 'CANCELED' THEN a.on_hold = a.amount AND a.release = a.amount
                                AND ((a.debit = 0 AND a.credit = 0) OR (a.debit = a.amount AND a.credit = a.amount))
           ELSE (a.debit = a.amount AND a.credit = a.amount AND a.release = 0
                 AND a.on_hold IN (0, a.amount, 2 * a.amount))
             OR (a.on_hold = a.amount AND a.credit = 0 AND a.release = 0 AND a.debit IN (0, a.amount))
             OR (a.on_hold = a.amount AND a.release = a.amount
                 AND ((a.debit = 0 AND a.credit = 0) OR (a.debit = a.amount AND a.credit = a.amount)))
         END
         AND NOT (a.direction_net = 0 AND NOT (a.flags & 16 <> 0 AND a.status IN ('PENDING', 'CANCELED')))
           AS unbalanced,
         a.net <> 0 AS not_conserved,
         a.flags & 2 <> 0 AS asset_mismatch,
         a.flags & 1 <> 0 AS unknown_type,
         a.flags & 4 <> 0 AS affected_mismatch
  FROM (SELECT agg.*, debit + on_hold - credit - release + direction_deviation AS direction_net FROM agg) a
  WHERE a.flags & 8 = 0
),
violating AS (
  SELECT * FROM judged
  WHERE (unbalanced OR not_conserved OR asset_mismatch OR unknown_type OR affected_mismatch)
    AND NOT (id = ANY(:evidence_txids::uuid[]))
)
SELECT k.kind, v.id::text AS entity, v.organization_id, v.ledger_id, v.id AS transaction_id,
       v.status, v.amount, v.asset_code, v.debit, v.credit, v.on_hold, v.release,
       v.direction_net AS debit_minus_credit_direction,
       v.flags & 16 <> 0 AS legacy_direction, v.net, v.n_ops,
       COUNT(*) OVER (PARTITION BY k.kind) AS kind_total
FROM violating v
CROSS JOIN LATERAL (VALUES ('unbalanced_transaction', v.unbalanced),
                           ('value_not_conserved', v.not_conserved),
                           ('operation_asset_mismatch', v.asset_mismatch),
                           ('unknown_operation_type', v.unknown_type),
                           ('balance_affected_mismatch', v.affected_mismatch)) AS k(kind, bad)
WHERE k.bad
ORDER BY row_number() OVER (PARTITION BY k.kind ORDER BY v.id), k.kind
