-- 'default' balances per (organization, ledger) as they stood at four instants: the soft-grace cutoff
-- (:t_now), a confirmation cutoff one minute earlier (:t_early), and the window's start and end (:t_start,
-- :t_end; full scope: equal to :t_now). A row stands at T when it was created before T and not
-- soft-deleted before T. Created = UUIDv7 id time (the id_* parameters are the smallest UUIDv7 of each
-- instant), created_at only for non-UUIDv7 ids (Midaz sets it at creation for accounts and balances).
-- `young`: live rows created after the cutoff (in flight).
-- Full scope: every ledger; window scope: the given ledgers (k_orgs, k_ledgers).
SELECT b.organization_id, b.ledger_id,
       count(*) FILTER (WHERE CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7 THEN b.id < :id_now ELSE b.created_at < :t_now END
                         AND (b.deleted_at IS NULL OR b.deleted_at >= :t_now)) AS at_cutoff,
       count(*) FILTER (WHERE CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7 THEN b.id < :id_early ELSE b.created_at < :t_early END
                         AND (b.deleted_at IS NULL OR b.deleted_at >= :t_early)) AS at_cutoff_early,
       count(*) FILTER (WHERE CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7 THEN b.id < :id_start ELSE b.created_at < :t_start END
                         AND (b.deleted_at IS NULL OR b.deleted_at >= :t_start)) AS at_window_start,
       count(*) FILTER (WHERE CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7 THEN b.id < :id_end ELSE b.created_at < :t_end END
                         AND (b.deleted_at IS NULL OR b.deleted_at >= :t_end)) AS at_window_end,
       count(*) FILTER (WHERE b.deleted_at IS NULL AND NOT CASE WHEN get_byte(uuid_send(b.id), 6) >> 4 = 7
                         THEN b.id < :id_now ELSE b.created_at < :t_now END) AS young
FROM balance b
WHERE b.key = 'default'
  AND (:full_scope
       OR (b.organization_id, b.ledger_id) IN (SELECT * FROM unnest(:k_orgs::uuid[], :k_ledgers::uuid[])))
GROUP BY b.organization_id, b.ledger_id
