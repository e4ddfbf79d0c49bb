-- Invariant (reference §6.4, onboarding): a live account's asset_code is a live asset of its ledger.
-- Matched by ledger_id (the ledger determines the organization: an account filed under another
-- organization is account_ledger_org_mismatch's finding, not a missing asset as well).
-- Scope: live accounts; window scope = accounts written in the window, plus accounts whose asset row
-- (same ledger and code) was written or soft-deleted in the window. In flight (skipped):
-- the account, or an asset row of its code, was written within the soft grace.
-- Settled (past the soft grace) = updated_at (and deleted_at) before :settled_before and, for a UUIDv7
-- id, the id below :id_settled (the smallest UUIDv7 of that instant: "UUIDv7 time before it").
WITH asset_rows AS (
  SELECT s.ledger_id, s.code,
         bool_or(s.deleted_at IS NULL) AS any_live,
         MAX(GREATEST(s.updated_at, s.deleted_at,
               CASE WHEN substr(s.id::text, 15, 1) = '7'
                    THEN to_timestamp((('x' || substr(replace(s.id::text, '-', ''), 1, 12))::bit(48)::bigint) / 1000.0) END))
           AS last_written,
         bool_or((s.id >= :id_lower AND s.id < :id_upper AND get_byte(uuid_send(s.id), 6) >> 4 = 7)
                 OR (s.updated_at >= :win_start AND s.updated_at < :win_end)
                 OR (s.deleted_at >= :win_start AND s.deleted_at < :win_end)) AS in_window
  FROM asset s
  GROUP BY s.ledger_id, s.code
)
SELECT a.id::text      AS entity,
       a.id            AS account_id,
       a.organization_id,
       a.ledger_id,
       a.alias,
       a.asset_code,
       CASE WHEN r.code IS NULL THEN 'no asset with this code' ELSE 'asset soft-deleted' END AS asset_state
FROM account a
LEFT JOIN asset_rows r
       ON r.ledger_id = a.ledger_id AND r.code = a.asset_code
WHERE a.deleted_at IS NULL
  AND r.any_live IS NOT TRUE
  AND a.updated_at < :settled_before
  AND (a.id < :id_settled OR get_byte(uuid_send(a.id), 6) >> 4 <> 7)
  AND (r.last_written IS NULL OR r.last_written < :settled_before)
  AND (:full_scope
       OR (a.id >= :id_lower AND a.id < :id_upper AND get_byte(uuid_send(a.id), 6) >> 4 = 7)
       OR (a.updated_at >= :win_start AND a.updated_at < :win_end)
       OR r.in_window IS TRUE)
