-- Warning (reference §6.4, §5.5, onboarding): soft-deleting an organization or ledger does not cascade,
-- so live rows may still point at it. Reports every live organization (parent organization deleted),
-- ledger (organization deleted), asset, segment, portfolio, account and account_type (ledger or
-- organization deleted) as "<table>/<id>".
-- Window scope: children written in the window, plus children of parents deleted in the window.
-- In flight (skipped): the child or the deleted parent was written within the soft grace.
-- Settled (past the soft grace) = updated_at (and deleted_at) before :settled_before and, for a UUIDv7
-- id, the id below :id_settled (the smallest UUIDv7 of that instant: "UUIDv7 time before it").
WITH dead_ledger AS MATERIALIZED (
  SELECT p.id, GREATEST(p.updated_at, p.deleted_at) AS written_at,
         (p.deleted_at >= :win_start AND p.deleted_at < :win_end)
         OR (p.updated_at >= :win_start AND p.updated_at < :win_end) AS in_window
  FROM ledger p WHERE p.deleted_at IS NOT NULL
),
dead_org AS MATERIALIZED (
  SELECT p.id, GREATEST(p.updated_at, p.deleted_at) AS written_at,
         (p.deleted_at >= :win_start AND p.deleted_at < :win_end)
         OR (p.updated_at >= :win_start AND p.updated_at < :win_end) AS in_window
  FROM organization p WHERE p.deleted_at IS NOT NULL
),
children AS (
  SELECT 'organization' AS tbl, c.id, c.id AS organization_id, NULL::uuid AS ledger_id, c.updated_at,
         c.parent_organization_id AS parent_org, NULL::uuid AS parent_ledger
  FROM organization c
  WHERE c.deleted_at IS NULL AND c.parent_organization_id IN (SELECT id FROM dead_org)
  UNION ALL
  SELECT 'ledger', c.id, c.organization_id, c.id, c.updated_at, c.organization_id, NULL::uuid
  FROM ledger c
  WHERE c.deleted_at IS NULL AND c.organization_id IN (SELECT id FROM dead_org)
  UNION ALL
  SELECT 'asset', c.id, c.organization_id, c.ledger_id, c.updated_at, c.organization_id, c.ledger_id
  FROM asset c
  WHERE c.deleted_at IS NULL
    AND (c.ledger_id IN (SELECT id FROM dead_ledger) OR c.organization_id IN (SELECT id FROM dead_org))
  UNION ALL
  SELECT 'segment', c.id, c.organization_id, c.ledger_id, c.updated_at, c.organization_id, c.ledger_id
  FROM segment c
  WHERE c.deleted_at IS NULL
    AND (c.ledger_id IN (SELECT id FROM dead_ledger) OR c.organization_id IN (SELECT id FROM dead_org))
  UNION ALL
  SELECT 'portfolio', c.id, c.organization_id, c.ledger_id, c.updated_at, c.organization_id, c.ledger_id
  FROM portfolio c
  WHERE c.deleted_at IS NULL
    AND (c.ledger_id IN (SELECT id FROM dead_ledger) OR c.organization_id IN (SELECT id FROM dead_org))
  UNION ALL
  SELECT 'account', c.id, c.organization_id, c.ledger_id, c.updated_at, c.organization_id, c.ledger_id
  FROM account c
  WHERE c.deleted_at IS NULL
    AND (c.ledger_id IN (SELECT id FROM dead_ledger) OR c.organization_id IN (SELECT id FROM dead_org))
  UNION ALL
  SELECT 'account_type', c.id, c.organization_id, c.ledger_id, c.updated_at, c.organization_id, c.ledger_id
  FROM account_type c
  WHERE c.deleted_at IS NULL
    AND (c.ledger_id IN (SELECT id FROM dead_ledger) OR c.organization_id IN (SELECT id FROM dead_org))
)
SELECT ch.tbl || '/' || ch.id::text AS entity,
       ch.id::text                  AS entity_id,
       ch.organization_id,
       ch.ledger_id,
       ch.tbl                       AS child_table,
       concat_ws(',', CASE WHEN dl.id IS NOT NULL THEN 'ledger' END,
                      CASE WHEN dorg.id IS NOT NULL THEN 'organization' END) AS deleted_parents
FROM children ch
LEFT JOIN dead_ledger dl ON dl.id = ch.parent_ledger
LEFT JOIN dead_org dorg  ON dorg.id = ch.parent_org
WHERE ch.updated_at < :settled_before
  AND (ch.id < :id_settled OR get_byte(uuid_send(ch.id), 6) >> 4 <> 7)
  AND GREATEST(dl.written_at, dorg.written_at) < :settled_before
  AND (:full_scope
       OR (ch.id >= :id_lower AND ch.id < :id_upper AND get_byte(uuid_send(ch.id), 6) >> 4 = 7)
       OR (ch.updated_at >= :win_start AND ch.updated_at < :win_end)
       OR COALESCE(dl.in_window, FALSE) OR COALESCE(dorg.in_window, FALSE))
