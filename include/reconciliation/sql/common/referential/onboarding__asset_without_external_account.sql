-- Invariant (reference §6.4, §5.3, onboarding): creating an asset creates the account
-- '@external/<code>' of type 'external'; every live asset has that live account in its ledger
-- (matched by ledger_id: a wrong organization_id on the account is account_ledger_org_mismatch's finding).
-- Entity "<org>/<ledger>/<code>" (one finding per code, even when the code has duplicate asset rows).
-- Window scope: assets written in the window, plus assets whose @external account row was written or
-- soft-deleted in the window. In flight (skipped): the asset or such an account row was written within
-- the soft grace.
-- Settled (past the soft grace) = updated_at (and deleted_at) before :settled_before and, for a UUIDv7
-- id, the id below :id_settled (the smallest UUIDv7 of that instant: "UUIDv7 time before it").
WITH ext AS (
  SELECT a.ledger_id, a.alias,
         bool_or(a.deleted_at IS NULL AND a.type = 'external') AS any_live,
         MAX(GREATEST(a.updated_at, a.deleted_at,
               CASE WHEN substr(a.id::text, 15, 1) = '7'
                    THEN to_timestamp((('x' || substr(replace(a.id::text, '-', ''), 1, 12))::bit(48)::bigint) / 1000.0) END))
           AS last_written,
         bool_or((a.id >= :id_lower AND a.id < :id_upper AND get_byte(uuid_send(a.id), 6) >> 4 = 7)
                 OR (a.updated_at >= :win_start AND a.updated_at < :win_end)
                 OR (a.deleted_at >= :win_start AND a.deleted_at < :win_end)) AS in_window
  FROM account a
  WHERE a.alias LIKE '@external/%'
  GROUP BY a.ledger_id, a.alias
)
SELECT DISTINCT ON (s.organization_id, s.ledger_id, s.code)
       s.organization_id::text || '/' || s.ledger_id::text || '/' || s.code AS entity,
       s.organization_id,
       s.ledger_id,
       s.code AS asset_code,
       s.id   AS asset_id,
       CASE WHEN e.alias IS NULL THEN 'no @external account' ELSE 'no live external-type account' END AS account_state
FROM asset s
LEFT JOIN ext e
       ON e.ledger_id = s.ledger_id AND e.alias = '@external/' || s.code
WHERE s.deleted_at IS NULL
  AND e.any_live IS NOT TRUE
  AND s.updated_at < :settled_before
  AND (s.id < :id_settled OR get_byte(uuid_send(s.id), 6) >> 4 <> 7)
  AND (e.last_written IS NULL OR e.last_written < :settled_before)
  AND (:full_scope
       OR (s.id >= :id_lower AND s.id < :id_upper AND get_byte(uuid_send(s.id), 6) >> 4 = 7)
       OR (s.updated_at >= :win_start AND s.updated_at < :win_end)
       OR e.in_window IS TRUE)
ORDER BY s.organization_id, s.ledger_id, s.code, s.id
