-- 6.1-C (R1)  Every balance-affecting operation's before/after values follow its type and amount (§5.2):
--   version:  balance_version_after = balance_version_before + 1 (or 0/0 on rows written before 000014)
--   amount > 0
--   CREDIT   available_after = available + amount, on_hold unchanged
--   DEBIT    available_after = available - amount, on_hold unchanged            (plain debit)
--         or available unchanged, on_hold_after = on_hold - amount              (commit of a pending hold)
--   ON_HOLD  available_after = available - amount, on_hold_after = on_hold + amount
--   RELEASE  available_after = available + amount, on_hold_after = on_hold - amount
--   any other type is invalid at R1.
-- Not judged (in flight): operations written within the soft grace (updated_at or UUIDv7 time).
-- Scope: full = every operation (one sequential pass, no sort); window = operations whose id is in the
-- window (primary-key range).
SELECT o.id::text AS entity,
       o.id AS operation_id, o.transaction_id, o.balance_id, o.organization_id, o.ledger_id,
       o.type, o.amount,
       o.available_balance, o.available_balance_after, o.on_hold_balance, o.on_hold_balance_after,
       o.balance_version_before, o.balance_version_after
FROM operation o
WHERE o.deleted_at IS NULL AND o.balance_affected
  AND (:full_scope OR o.id >= :id_lower AND o.id < :id_upper)
  AND NOT (o.updated_at >= :settled_before OR (o.id >= :young_id_lower AND o.id < :future_id_lower))
  AND NOT COALESCE(
        (o.balance_version_after = o.balance_version_before + 1
         OR (o.balance_version_before = 0 AND o.balance_version_after = 0))
        AND o.amount > 0
        AND CASE o.type
              WHEN 'CREDIT'  THEN o.available_balance_after = o.available_balance + o.amount
                              AND o.on_hold_balance_after = o.on_hold_balance
              WHEN 'DEBIT'   THEN (o.available_balance_after = o.available_balance - o.amount
                                   AND o.on_hold_balance_after = o.on_hold_balance)
                               OR (o.available_balance_after = o.available_balance
                                   AND o.on_hold_balance_after = o.on_hold_balance - o.amount)
              WHEN 'ON_HOLD' THEN o.available_balance_after = o.available_balance - o.amount
                              AND o.on_hold_balance_after = o.on_hold_balance + o.amount
              WHEN 'RELEASE' THEN o.available_balance_after = o.available_balance + o.amount
                              AND o.on_hold_balance_after = o.on_hold_balance - o.amount
              ELSE FALSE
            END,
        FALSE)
