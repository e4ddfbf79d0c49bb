-- Invariant (reference §2.2, §4.4, §6.6): transaction_backup_quarantine is empty. Each row is an authorised
-- transaction that Midaz could not persist after three recovery cycles (~90 min): a settlement failure by
-- definition (R2 only; the table does not exist at R1).
-- Window scope: rows whose transaction was written in [start, end) (UUIDv7 id range): the finding is placed
-- at the transaction's write time, like every other transaction finding.
SELECT q.transaction_id::text AS entity,
       q.transaction_id,
       q.organization_id,
       q.ledger_id,
       q.redis_key AS backup_field,
       q.attempts,
       q.failure_reason,
       q.first_failed_at,
       q.quarantined_at,
       length(q.payload) AS payload_bytes
FROM transaction_backup_quarantine q
WHERE :full_scope
   OR (q.transaction_id >= :id_lower AND q.transaction_id < :id_upper)
ORDER BY q.quarantined_at, q.transaction_id
