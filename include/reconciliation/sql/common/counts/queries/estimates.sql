-- Planner row estimates (pg_class.reltuples, maintained by VACUUM / ANALYZE; -1 = never analysed) of the
-- public tables: the trend figure for tables too big to count exactly on every windowed run (§6.8).
SELECT c.relname AS tbl, c.reltuples::bigint AS estimate
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
