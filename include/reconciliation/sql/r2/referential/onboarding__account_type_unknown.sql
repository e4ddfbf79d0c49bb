-- Invariant (reference §6.4 rule 6, §5.4, §1.2, R2): for ledgers whose settings say
-- accounting.validateAccountType = true, every live non-external account's type is the key_value of a
-- live account_type of the same ledger
-- (matched by ledger_id). ('external' is the system type of @external/<code> accounts.)
-- Window scope: accounts written in the window, plus accounts whose account_type row (same ledger and
-- key) or whose ledger (settings) was written in the window. In flight (skipped): the account or such an
-- account_type row was written within the soft grace.
-- Settled (past the soft grace) = updated_at (and deleted_at) before :settled_before and, for a UUIDv7
-- id, the id below :id_settled (the smallest UUIDv7 of that instant: "UUIDv7 time before it").
WITH types AS (
  SELECT t.ledger_id, t.key_value,
         bool_or(t.deleted_at IS NULL) AS any_live,
         MAX(GREATEST(t.updated_at, t.deleted_at,
               CASE WHEN substr(t.id::text, 15, 1) = '7'
                    THEN to_timestamp((('x' || substr(replace(t.id::text, '-', ''), 1, 12))::bit(48)::bigint) / 1000.0) END))
           AS last_written,
         bool_or((t.id >= :id_lower AND t.id < :id_upper AND get_byte(uuid_send(t.id), 6) >> 4 = 7)
                 OR (t.updated_at >= :win_start AND t.updated_at < :win_end)
                 OR (t.deleted_at >= :win_start AND t.deleted_at < :win_end)) AS in_window
  FROM account_type t
  GROUP BY t.ledger_id, t.key_value
)
SELECT a.id::text AS entity,
       a.id       AS account_id,
       a.organization_id,
       a.ledger_id,
       a.alias,
       a.type     AS account_type,
       CASE WHEN ty.key_value IS NULL THEN 'no account_type with this key' ELSE 'account_type soft-deleted' END
                  AS account_type_state
FROM account a
JOIN ledger l ON l.id = a.ledger_id
LEFT JOIN types ty
       ON ty.ledger_id = a.ledger_id AND ty.key_value = a.type
WHERE a.deleted_at IS NULL
  AND a.type <> 'external'
  AND lower(COALESCE(l.settings -> 'accounting' ->> 'validateAccountType', '')) = 'true'
  AND ty.any_live IS NOT TRUE
  AND a.updated_at < :settled_before
  AND (a.id < :id_settled OR get_byte(uuid_send(a.id), 6) >> 4 <> 7)
  AND (ty.last_written IS NULL OR ty.last_written < :settled_before)
  AND (:full_scope
       OR (a.id >= :id_lower AND a.id < :id_upper AND get_byte(uuid_send(a.id), 6) >> 4 = 7)
       OR (a.updated_at >= :win_start AND a.updated_at < :win_end)
       OR ty.in_window IS TRUE
       OR (l.updated_at >= :win_start AND l.updated_at < :win_end))
