-- Accounts per (organization, ledger) as they stood at four instants: the soft-grace cutoff
-- (:t_now), a confirmation cutoff one minute earlier (:t_early), and the window's start and end (:t_start,
-- :t_end; full scope: equal to :t_now). A row stands at T when it was created before T and not
-- soft-deleted before T. Created = UUIDv7 id time (the id_* parameters are the smallest UUIDv7 of each
-- instant), created_at only for non-UUIDv7 ids (Midaz sets it at creation for accounts and balances).
-- `young`: live rows created after the cutoff (in flight).
-- Full scope: every ledger; window scope: the given ledgers (k_orgs, k_ledgers).
SELECT a.organization_id, a.ledger_id,
       count(*) FILTER (WHERE CASE WHEN get_byte(uuid_send(a.id), 6) >> 4 = 7 THEN a.id < :id_now ELSE a.created_at < :t_now END
                         AND (a.deleted_at IS NULL OR a.deleted_at >= :t_now)) AS at_cutoff,
       count(*) FILTER (WHERE CASE WHEN get_byte(uuid_send(a.id), 6) >> 4 = 7 THEN a.id < :id_early ELSE a.created_at < :t_early END
                         AND (a.deleted_at IS NULL OR a.deleted_at >= :t_early)) AS at_cutoff_early,
       count(*) FILTER (WHERE CASE WHEN get_byte(uuid_send(a.id), 6) >> 4 = 7 THEN a.id < :id_start ELSE a.created_at < :t_start END
                         AND (a.deleted_at IS NULL OR a.deleted_at >= :t_start)) AS at_window_start,
       count(*) FILTER (WHERE CASE WHEN get_byte(uuid_send(a.id), 6) >> 4 = 7 THEN a.id < :id_end ELSE a.created_at < :t_end END
                         AND (a.deleted_at IS NULL OR a.deleted_at >= :t_end)) AS at_window_end,
       count(*) FILTER (WHERE a.deleted_at IS NULL AND NOT CASE WHEN get_byte(uuid_send(a.id), 6) >> 4 = 7
                         THEN a.id < :id_now ELSE a.created_at < :t_now END) AS young
FROM account a
WHERE :full_scope
   OR (a.organization_id, a.ledger_id) IN (SELECT * FROM unnest(:k_orgs::uuid[], :k_ledgers::uuid[]))
GROUP BY a.organization_id, a.ledger_id
