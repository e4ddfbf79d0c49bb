-- R1 (DESIGN §7): the 'default' balances of one chunk of soft-deleted accounts (same organization and
-- ledger, through idx_balance_account_id) that stood at each instant after their account was deleted —
-- Midaz v3 leaves them live by design, so the accounts = default balances rule leaves them out.
SELECT b.organization_id, b.ledger_id,
       count(*) FILTER (WHERE k.deleted_at < :t_now
                         AND CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7 THEN b.id < :id_now ELSE b.created_at < :t_now END
                         AND (b.deleted_at IS NULL OR b.deleted_at >= :t_now)) AS at_cutoff,
       count(*) FILTER (WHERE k.deleted_at < :t_early
                         AND CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7 THEN b.id < :id_early ELSE b.created_at < :t_early END
                         AND (b.deleted_at IS NULL OR b.deleted_at >= :t_early)) AS at_cutoff_early,
       count(*) FILTER (WHERE k.deleted_at < :t_start
                         AND CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7 THEN b.id < :id_start ELSE b.created_at < :t_start END
                         AND (b.deleted_at IS NULL OR b.deleted_at >= :t_start)) AS at_window_start,
       count(*) FILTER (WHERE k.deleted_at < :t_end
                         AND CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7 THEN b.id < :id_end ELSE b.created_at < :t_end END
                         AND (b.deleted_at IS NULL OR b.deleted_at >= :t_end)) AS at_window_end,
       count(*) FILTER (WHERE b.deleted_at IS NULL AND NOT CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7
                         THEN b.id < :id_now ELSE b.created_at < :t_now END) AS young
FROM balance b
JOIN unnest(:k_accounts::uuid[], :k_orgs::uuid[], :k_ledgers::uuid[], :k_deleted::timestamptz[])
       AS k(account_id, organization_id, ledger_id, deleted_at)
  ON b.organization_id = k.organization_id AND b.ledger_id = k.ledger_id AND b.account_id = k.account_id
WHERE b.key = 'default'
GROUP BY b.organization_id, b.ledger_id
