-- Reversal symmetry (reference §6.3, §5.1 TransactionRevert): a reversal mirrors its parent per account.
-- For each account_id: Σ reversal DEBIT = Σ parent CREDIT and Σ reversal CREDIT = Σ parent DEBIT.
-- ON_HOLD and RELEASE are ignored (the revert ignores them), and so is every other type (e.g. the R2
-- OVERDRAFT companion rows, which the revert does not copy); accounts, not balance keys, are compared
-- because reversal legs always use the `default` key.
-- Reversals without any live operation are left to 6.3-a (transaction_without_operations).
-- Entity: the child (reversal) transaction id; evidence: the mismatching accounts with the four sums.
-- In flight (skipped): the reversal or one of its operations was written within the soft grace, or the
-- reversal is named in :evidence_txids (a backup-queue entry younger than the hard grace).
-- Window scope: reversals written in the window or with an operation written in it.
WITH win AS (
  SELECT t.id FROM "transaction" t WHERE t.id >= :id_lower AND t.id < :id_upper
  UNION
  SELECT o.transaction_id FROM operation o WHERE o.id >= :id_lower AND o.id < :id_upper
),
kids AS (
  SELECT c.id, c.parent_transaction_id, c.organization_id, c.ledger_id
  FROM "transaction" c
  JOIN "transaction" p ON p.id = c.parent_transaction_id
  WHERE c.deleted_at IS NULL
    AND c.parent_transaction_id IS NOT NULL
    AND (:full_scope OR c.id = ANY (ARRAY(SELECT id FROM win)))
    AND c.updated_at < :settled_before
    AND NOT (c.id >= :young_id_lower AND c.id < :future_id_lower)
    AND NOT (c.id = ANY(:evidence_txids::uuid[]))
    AND NOT EXISTS (SELECT 1 FROM operation y
                    WHERE y.transaction_id = c.id AND y.deleted_at IS NULL
                      AND (y.updated_at >= :settled_before OR (y.id >= :young_id_lower AND y.id < :future_id_lower)))
    AND EXISTS (SELECT 1 FROM operation y WHERE y.transaction_id = c.id AND y.deleted_at IS NULL)
),
legs AS (
  SELECT k.id AS child_id, o.account_id,
         CASE WHEN o.type = 'DEBIT' THEN o.amount ELSE 0 END AS child_debit,
         CASE WHEN o.type = 'CREDIT' THEN o.amount ELSE 0 END AS child_credit,
         0::numeric AS parent_debit, 0::numeric AS parent_credit
  FROM kids k JOIN operation o ON o.transaction_id = k.id
  WHERE o.deleted_at IS NULL AND o.type IN ('DEBIT', 'CREDIT')
  UNION ALL
  SELECT k.id, o.account_id, 0, 0,
         CASE WHEN o.type = 'DEBIT' THEN o.amount ELSE 0 END,
         CASE WHEN o.type = 'CREDIT' THEN o.amount ELSE 0 END
  FROM kids k JOIN operation o ON o.transaction_id = k.parent_transaction_id
  WHERE o.deleted_at IS NULL AND o.type IN ('DEBIT', 'CREDIT')
),
per_account AS (
  SELECT child_id, account_id, SUM(child_debit) AS child_debit, SUM(child_credit) AS child_credit,
         SUM(parent_debit) AS parent_debit, SUM(parent_credit) AS parent_credit
  FROM legs GROUP BY child_id, account_id
)
SELECT k.id::text AS entity, k.organization_id, k.ledger_id, k.id AS transaction_id, k.parent_transaction_id,
       jsonb_agg(jsonb_build_object('account_id', a.account_id,
                                    'reversal_debit', a.child_debit::text, 'parent_credit', a.parent_credit::text,
                                    'reversal_credit', a.child_credit::text, 'parent_debit', a.parent_debit::text)
                 ORDER BY a.account_id) AS mismatched_accounts
FROM per_account a JOIN kids k ON k.id = a.child_id
WHERE a.child_debit <> a.parent_credit OR a.child_credit <> a.parent_debit
GROUP BY k.id, k.organization_id, k.ledger_id, k.parent_transaction_id
