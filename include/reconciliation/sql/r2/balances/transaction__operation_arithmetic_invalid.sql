-- 6.1-C (R2)  Every balance-affecting operation's before/after values follow its type, amount and the
-- balance direction, as balance_atomic_operation.lua computes them (reference §5.1, §5.2, §6.1-C R2).
-- With dA = available_after - available, dH = on_hold_after - on_hold, s = -1 for a direction='debit'
-- balance (DEBIT grows it) else +1; holds move on_hold the same way in both directions:
--   version:  balance_version_after = balance_version_before + 1 (or 0/0 on rows written before 000014)
--   amount > 0
--   CREDIT   dA = s*amount, dH = 0                      (also the route-mode cancel CREDIT)
--   DEBIT    dA = -s*amount, dH = 0                     (plain debit; route-mode pending DEBIT)
--         or dA = 0, dH = -amount                       (legacy-mode commit of a pending hold)
--   ON_HOLD  dA = -s*amount, dH = +amount               (legacy-mode pending hold)
--         or dA = 0, dH = +amount                       (route-mode pending hold: one-field leg)
--         or dA = 0, dH = -amount                       (route-mode commit)
--   RELEASE  dA = s*amount, dH = -amount                (legacy-mode cancel)
--         or dA = 0, dH = -amount                       (route-mode cancel: one-field leg)
--   OVERDRAFT, BLOCK, UNBLOCK follow the rule of their direction column (debit -> DEBIT, credit -> CREDIT).
--   Rows whose snapshot records an overdraft change (overdraftUsedBefore <> overdraftUsedAfter) are exempt
--   from the amount rules: flooring at zero and repayment make dA differ from the amount by design.
--   Any other type (or an OVERDRAFT/BLOCK/UNBLOCK without a direction) is invalid.
-- Not judged (in flight): operations written within the soft grace (updated_at or UUIDv7 time).
-- Scope: full = every operation (one sequential pass joined to balance for its direction); window =
-- operations whose id is in the window (primary-key range).
WITH op AS (
    SELECT o.id, o.transaction_id, o.balance_id, o.organization_id, o.ledger_id, o.type, o.direction,
           o.amount, o.available_balance, o.available_balance_after, o.on_hold_balance, o.on_hold_balance_after,
           o.balance_version_before, o.balance_version_after,
           o.available_balance_after - o.available_balance AS d_available,
           o.on_hold_balance_after - o.on_hold_balance AS d_on_hold,
           CASE WHEN b.direction = 'debit' THEN -1 ELSE 1 END AS s,
           CASE WHEN o.type IN ('OVERDRAFT', 'BLOCK', 'UNBLOCK')
                THEN CASE lower(o.direction) WHEN 'debit' THEN 'DEBIT' WHEN 'credit' THEN 'CREDIT' END
                ELSE o.type END AS rule,
           COALESCE(o.snapshot ->> 'overdraftUsedBefore' <> o.snapshot ->> 'overdraftUsedAfter', FALSE)
               AS overdraft_change,
           b.direction AS balance_direction
    FROM operation o
    LEFT JOIN balance b ON b.id = o.balance_id
    WHERE o.deleted_at IS NULL AND o.balance_affected
      AND (:full_scope OR o.id >= :id_lower AND o.id < :id_upper)
      AND NOT (o.updated_at >= :settled_before OR (o.id >= :young_id_lower AND o.id < :future_id_lower))
)
SELECT o.id::text AS entity,
       o.id AS operation_id, o.transaction_id, o.balance_id, o.organization_id, o.ledger_id,
       o.type, o.direction, o.balance_direction, o.amount,
       o.available_balance, o.available_balance_after, o.on_hold_balance, o.on_hold_balance_after,
       o.balance_version_before, o.balance_version_after
FROM op o
WHERE NOT COALESCE(
        (o.balance_version_after = o.balance_version_before + 1
         OR (o.balance_version_before = 0 AND o.balance_version_after = 0))
        AND o.amount > 0
        AND (o.overdraft_change AND o.rule IN ('CREDIT', 'DEBIT', 'ON_HOLD', 'RELEASE')
             OR CASE o.rule
                  WHEN 'CREDIT'  THEN o.d_available = o.s * o.amount AND o.d_on_hold = 0
                  WHEN 'DEBIT'   THEN (o.d_available = -o.s * o.amount AND o.d_on_hold = 0)
                                   OR (o.d_available = 0 AND o.d_on_hold = -o.amount)
                  WHEN 'ON_HOLD' THEN (o.d_available = -o.s * o.amount AND o.d_on_hold = o.amount)
                                   OR (o.d_available = 0 AND o.d_on_hold = o.amount)
                                   OR (o.d_available = 0 AND o.d_on_hold = -o.amount)
                  WHEN 'RELEASE' THEN (o.d_available = o.s * o.amount AND o.d_on_hold = -o.amount)
                                   OR (o.d_available = 0 AND o.d_on_hold = -o.amount)
                  ELSE FALSE
                END),
        FALSE)
