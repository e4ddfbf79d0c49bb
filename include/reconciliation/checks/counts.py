"""Entity counts and the cross-store count invariants (reference §6.8).

Metrics (all stores):
- PostgreSQL, both databases: rows (total, live) per table; per (organization, ledger) and table;
  transaction by status, operation by (type, balance_affected), balance by (account_type, key='default').
- MongoDB, both databases: documents per metadata collection, keyed "<mongo database>.<collection>"
  (estimatedDocumentCount; countDocuments when an estimate looks like a violation), including the empty
  wrongly named EnsureIndexes ones. PostgreSQL tables are keyed "<onboarding|transaction>.<table>".
- Redis: balance keys (SCAN count; a key may be counted twice while Redis rehashes), ZCARD of the
  schedule ZSET(s), HLEN of the backup queue (plain keys, plus tenant-prefixed keys when
  MIDAZ_REDIS_TENANT_PREFIXES is set).

Violations (judged by the DataFrame suite of expectations/counts.py):
- live accounts ≠ live 'default' balances of an (organization, ledger) as they stood at the soft-grace
  cutoff (a row stands at T when created — UUIDv7 id time — before T and not soft-deleted before T). A
  difference gone at a cutoff one minute earlier is a pair straddling the cutoff: in flight. At R1 the
  default balances of soft-deleted accounts are left out (Midaz v3 keeps them live by design, DESIGN §7);
  at R2 they count.
- documents of a Mongo collection > rows (total, soft-deleted included) of its PostgreSQL table. Mongo
  is counted before PostgreSQL (PostgreSQL is written first), so in-flight writes cannot fake it.
- a table's total rows decreased since the previous run (no hard deletes in Midaz). The previous counts
  come from `ctx.extra["previous_counts"]`, the `tables` metric of the previous run's counts result
  ({"<db>.<table>": {"total": n, "exact": bool}} or {"<db>.<table>": n}); absent → the rule is skipped
  and `metrics["row_count_decreased"]` says so. Estimated figures are never compared.

WINDOW: the two aggregate invariants are reported in window scope only when the imbalance began in the
window: even at its start, uneven at its end (and still uneven now). The ledgers looked at are those with
an account or balance created or soft-deleted in the window (the only writes that move those counts); a
collection's excess is dated by its documents' created_at and its rows' UUIDv7 id time. Older imbalances
are counted in metrics and reported by their own window and by full scope. row_count_decreased compares
runs, whatever the scope.

What is exact: full scope counts every table and breakdown exactly (COUNT(*)). Window scope counts the
rows written in the window exactly (UUIDv7 id time, updated_at or deleted_at in [start, end); per-ledger
and breakdown metrics are over those rows), takes table totals from pg_class.reltuples when the estimate
is at least RECONCILIATION_EXACT_COUNT_MAX_ROWS (default 1,000,000; exact COUNT(*) below), and confirms
with an exact count whenever an estimate would make a violation. Both invariants use exact counts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from reconciliation import config
from reconciliation.checks.base import SQL_ROOT, CheckContext, make_violation
from reconciliation.result import CheckResult
from reconciliation.window import uuidv7_lower_bound

CHECK = "counts"
ENV_EXACT_COUNT_MAX_ROWS = "RECONCILIATION_EXACT_COUNT_MAX_ROWS"
DEFAULT_EXACT_COUNT_MAX_ROWS = 1_000_000
CONFIRM_DELTA = timedelta(minutes=1)  # the earlier cutoff that tells a straddling pair from a real gap
ID_BATCH = 5_000

TABLES: dict[str, tuple[str, ...]] = {
    "onboarding": ("organization", "ledger", "asset", "segment", "portfolio", "account", "account_type"),
    "transaction": (
        "transaction", "operation", "balance", "asset_rate", "operation_route", "transaction_route",
        "operation_transaction_route", "transaction_backup_quarantine",
    ),
}


def exact_count_max_rows() -> int:
    raw = os.environ.get(ENV_EXACT_COUNT_MAX_ROWS, "")
    try:
        return max(0, int(raw)) if raw.strip() else DEFAULT_EXACT_COUNT_MAX_ROWS
    except ValueError:
        return DEFAULT_EXACT_COUNT_MAX_ROWS


def sql_params(ctx: CheckContext) -> dict[str, Any]:
    p = ctx.sql_params()
    p["id_lookback"] = uuidv7_lower_bound(ctx.window.start - ctx.window.hard_grace)
    p["k_orgs"] = []
    p["k_ledgers"] = []
    return p


def _query(ctx: CheckContext, name: str) -> str:
    for folder in (ctx.revision, "common"):
        f = SQL_ROOT / folder / CHECK / "queries" / f"{name}.sql"
        if f.exists():
            return f.read_text()
    raise FileNotFoundError(f"no query {name}.sql for {CHECK} at {ctx.revision}")


def _fetch(conn: Any, sql: str, params: dict[str, Any]) -> list[tuple]:
    from reconciliation.stores.postgres import render

    with conn.cursor() as cur:
        cur.execute(render(sql, params))
        return cur.fetchall()


def _batched(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parse_previous(raw: Any) -> dict[str, int] | None:
    """Exact totals of the previous run by "<db>.<table>"; None when there is no usable history.

    Accepts the previous `tables` metric (values {"total": n, "exact": bool}), the whole previous metrics
    dict (with a "tables" key), or plain {"<db>.<table>": n}. Estimated or unreadable entries are ignored."""
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("tables"), dict):
        raw = raw["tables"]
    out: dict[str, int] = {}
    for name, value in raw.items():
        if isinstance(value, dict):
            if value.get("exact") is False:
                continue
            value = value.get("total")
        if isinstance(value, bool) or value is None:
            continue
        try:
            out[str(name)] = int(str(value))
        except ValueError:
            continue
    return out


@dataclass
class TableCount:
    total: int | None
    live: int | None
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "live": self.live, "exact": self.exact}


@dataclass
class Counts:
    """Everything counted in one run, plus the comparison rows to judge."""

    tables: dict[str, TableCount] = field(default_factory=dict)
    per_ledger: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0


# ---- PostgreSQL ----------------------------------------------------------------------------------------


def exact_table_count(conn: Any, table: str, has_deleted: bool) -> TableCount:
    """COUNT(*) of one table (the name comes from TABLES, quoted as an identifier)."""
    from psycopg import sql

    live = sql.SQL("count(*) FILTER (WHERE deleted_at IS NULL)") if has_deleted else sql.SQL("count(*)")
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*), {} FROM {}").format(live, sql.Identifier(table)))
        total, n_live = cur.fetchone()
    return TableCount(int(total), int(n_live), True)


NOT_PER_LEDGER = ("organization", "operation_transaction_route")  # tables without organization/ledger columns


def postgres_counts(ctx: CheckContext, params: dict[str, Any], counts: Counts, result: CheckResult) -> None:
    """Table totals, per-ledger counts and breakdowns of both databases (the tables a revision has)."""
    from reconciliation.stores.postgres import columns, read_only

    limit = exact_count_max_rows()
    for db in ("onboarding", "transaction"):
        with read_only(ctx.conn_id(db)) as conn:
            cols = columns(conn)
            tables = [t for t in TABLES[db] if f"{t}.id" in cols]
            soft_delete = {t for t in tables if f"{t}.deleted_at" in cols}
            per_ledger_sums: dict[str, list[int]] = {}
            for tbl, org, lg, total, live in _fetch(conn, _query(ctx, f"{db}__ledger_counts"), params):
                key = f"{org}/{lg}"
                counts.per_ledger.setdefault(key, {})[f"{db}.{tbl}"] = {"total": int(total), "live": int(live)}
                s = per_ledger_sums.setdefault(tbl, [0, 0])
                s[0] += int(total)
                s[1] += int(live)
            estimates = {r[0]: int(r[1]) for r in _fetch(conn, _query(ctx, "estimates"), params)}
            for t in tables:
                name = f"{db}.{t}"
                if ctx.window.is_full and t in per_ledger_sums:
                    counts.tables[name] = TableCount(*per_ledger_sums[t], True)
                elif ctx.window.is_full or estimates.get(t, -1) < limit:  # -1: never analysed
                    counts.tables[name] = exact_table_count(conn, t, t in soft_delete)
                else:
                    counts.tables[name] = TableCount(estimates[t], None, False)
                if not ctx.window.is_full and t not in NOT_PER_LEDGER:
                    total, live = per_ledger_sums.get(t, (0, 0))
                    result.metrics.setdefault("window_rows", {})[name] = {"total": total, "live": live}
            if db == "transaction":
                breakdown: dict[str, list[dict[str, Any]]] = {}
                for dim, k1, k2, n in _fetch(conn, _query(ctx, "transaction__breakdowns"), params):
                    if dim == "transaction_status":
                        breakdown.setdefault(dim, []).append({"status": k1, "count": int(n)})
                    elif dim == "operation_type":
                        breakdown.setdefault(dim, []).append(
                            {"type": k1, "balance_affected": k2 == "true", "count": int(n)})
                    else:
                        breakdown.setdefault(dim, []).append(
                            {"account_type": k1, "default_key": k2 == "true", "count": int(n)})
                result.metrics["breakdowns"] = breakdown


def confirm_total(ctx: CheckContext, name: str) -> TableCount:
    """An exact count of one table in a fresh snapshot (to confirm an estimate or a stale figure)."""
    from reconciliation.stores.postgres import columns, read_only

    db, table = name.split(".", 1)
    with read_only(ctx.conn_id(db)) as conn:
        has_deleted = f"{table}.deleted_at" in columns(conn)
        return exact_table_count(conn, table, has_deleted)


INSTANTS = ("now", "early", "start", "end")


def instants(ctx: CheckContext) -> dict[str, Any]:
    """The instants the accounts = default balances rule compares at, with their UUIDv7 lower bounds.

    now = the soft-grace cutoff; early = one minute before it (a pair straddling the cutoff is in flight,
    a real gap shows at both); start/end = the window, clamped to the cutoff (full scope: the cutoff)."""
    cutoff = ctx.window.settled_before
    times = {"now": cutoff, "early": cutoff - CONFIRM_DELTA, "start": cutoff, "end": cutoff}
    if not ctx.window.is_full:
        times["start"] = min(ctx.window.start, cutoff)
        times["end"] = min(ctx.window.end, cutoff)
    out: dict[str, Any] = {}
    for name, t in times.items():
        out[f"t_{name}"] = t
        out[f"id_{name}"] = uuidv7_lower_bound(t)
    return out


def classify_ledger(diff: dict[str, int], window: bool) -> str:
    """Accounts minus default balances at each instant -> the class GE judges.

    A difference at the cutoff that is gone a minute earlier is a pair straddling the cutoff (in flight).
    In window scope a lasting difference is this window's only when the ledger was even at the window
    start and uneven at its end (otherwise it began elsewhere and is reported there and in full scope)."""
    if diff["now"] == 0:
        return "ok"
    if diff["early"] == 0:
        return "in_flight"
    if window and not (diff["start"] == 0 and diff["end"] != 0):
        return "outside_window"
    return "live_accounts_default_balances_mismatch"


def ledger_accounts(ctx: CheckContext, params: dict[str, Any], counts: Counts, result: CheckResult) -> None:
    """Live accounts vs live default balances per (org, ledger), at the cutoff (after grace)."""
    from reconciliation.stores.postgres import read_only, render

    p = {**params, **instants(ctx)}
    window = not ctx.window.is_full
    with read_only(ctx.onboarding_conn_id) as onb, read_only(ctx.transaction_conn_id) as tx:
        if window:
            ledgers = {(r[0], r[1]) for r in _fetch(onb, _query(ctx, "onboarding__window_ledgers"), p)}
            ledgers |= {(r[0], r[1]) for r in _fetch(tx, _query(ctx, "transaction__window_ledgers"), p)}
            result.metrics["ledgers_judged"] = len(ledgers)
            if not ledgers:
                return
            p["k_orgs"] = [str(k[0]) for k in sorted(ledgers)]
            p["k_ledgers"] = [str(k[1]) for k in sorted(ledgers)]
        accounts = {(r[0], r[1]): [int(x) for x in r[2:]] for r in _fetch(onb, _query(ctx, "onboarding__accounts_at"), p)}
        balances = {
            (r[0], r[1]): [int(x) for x in r[2:]] for r in _fetch(tx, _query(ctx, "transaction__default_balances_at"), p)
        }
        excluded: dict[tuple[Any, Any], list[int]] = {}
        if ctx.revision == "r1":
            with onb.cursor(name="recon_counts_deleted") as cur:
                cur.itersize = ID_BATCH
                cur.execute(render(_query(ctx, "onboarding__deleted_accounts"), p))
                for chunk in _batched(cur, ID_BATCH):
                    q = {
                        **p,
                        "k_accounts": [str(r[0]) for r in chunk],
                        "k_orgs": [str(r[1]) for r in chunk],
                        "k_ledgers": [str(r[2]) for r in chunk],
                        "k_deleted": [r[3] for r in chunk],
                    }
                    for r in _fetch(tx, _query(ctx, "transaction__default_balances_of_deleted_accounts"), q):
                        e = excluded.setdefault((r[0], r[1]), [0] * 5)
                        for i in range(5):
                            e[i] += int(r[2 + i])
    left_out = outside = 0
    zero = [0] * 5
    for key in sorted(set(accounts) | set(balances)):
        a, b, e = accounts.get(key, zero), balances.get(key, zero), excluded.get(key, zero)
        counted = [b[i] - e[i] for i in range(5)]
        diff = {name: a[i] - counted[i] for i, name in enumerate(INSTANTS)}
        left_out += e[0]
        counts.in_flight += a[4] + counted[4]
        cls = classify_ledger(diff, window)
        if cls == "outside_window":
            outside += 1
            cls = "ok"
        counts.rows.append({
            "ledger_accounts": cls,
            "_entity": f"{key[0]}/{key[1]}",
            "_fields": {
                "organization_id": key[0], "ledger_id": key[1], "live_accounts": a[0],
                "live_default_balances": counted[0], "left_out_balances_of_deleted_accounts": e[0],
                "accounts_created_in_grace": a[4], "default_balances_created_in_grace": counted[4],
                "difference_by_instant": diff,
            },
        })
    result.metrics["r1_balances_of_deleted_accounts_left_out"] = left_out if ctx.revision == "r1" else None
    if window:
        result.metrics["ledger_mismatches_from_before_the_window"] = outside


# ---- MongoDB -------------------------------------------------------------------------------------------


def mongo_counts(ctx: CheckContext) -> dict[str, dict[str, Any]]:
    """Documents per metadata collection (estimate); collections that do not exist count 0 (never created)."""
    from reconciliation.stores.mongo import COLLECTIONS, IGNORED_COLLECTIONS, hook_client

    client = hook_client(ctx.mongo_conn_id)
    names = config.mongo_databases()
    out: dict[str, dict[str, Any]] = {}
    existing: dict[str, set[str]] = {}
    wanted = [(c.database, c.collection, c.table) for c in COLLECTIONS]
    wanted += [(db, coll, None) for db, coll in sorted(IGNORED_COLLECTIONS)]
    for db, coll, table in wanted:
        real = names[db]
        if real not in existing:
            existing[real] = set(client[real].list_collection_names())
        n = client[real][coll].estimated_document_count() if coll in existing[real] else 0
        out[f"{real}.{coll}"] = {
            "documents": int(n), "exact": coll not in existing[real], "db": db, "collection": coll, "table": table,
        }
    return out


def mongo_exact(ctx: CheckContext, real_db: str, collection: str) -> int:
    from reconciliation.stores.mongo import hook_client

    client = hook_client(ctx.mongo_conn_id)
    return int(client[real_db][collection].count_documents({}))


# ---- Redis ---------------------------------------------------------------------------------------------


def redis_counts(ctx: CheckContext) -> dict[str, Any]:
    """Balance keys (SCAN), schedule ZSET sizes (ZCARD), backup-queue size (HLEN), per key prefix."""
    from redis.exceptions import ResponseError

    from reconciliation.stores.redis import (
        BACKUP_QUEUE,
        SCHEDULE_R1,
        SCHEDULE_R2,
        balance_key_patterns,
        hook_client,
        scan_keys,
    )

    client = hook_client(ctx.redis_conn_id)
    tenants = os.environ.get(config.ENV_REDIS_TENANTS, "")
    balance_keys = sum(len(batch) for pattern in balance_key_patterns(tenants) for batch in scan_keys(client, pattern))
    names = {"schedule": [SCHEDULE_R1, SCHEDULE_R2], "backup_queue": [BACKUP_QUEUE]}
    if tenants.strip() == "*":
        for keys in names.values():
            for k in list(keys):
                for batch in scan_keys(client, f"tenant:*:{k}"):
                    keys.extend(sorted(batch))
    elif tenants.strip():
        for group in names:
            names[group] += [f"tenant:{t.strip()}:{k}" for k in list(names[group]) for t in tenants.split(",") if t.strip()]
    out: dict[str, Any] = {"balance_keys": balance_keys, "schedule": {}, "backup_queue": {}}
    for group, keys in names.items():
        for k in keys:
            try:
                out[group][k] = int(client.zcard(k) if group == "schedule" else client.hlen(k))
            except ResponseError as exc:  # a key of the wrong type: report it, do not crash
                out[group][k] = f"unreadable: {str(exc)[:80]}"
    return out


# ---- judging -------------------------------------------------------------------------------------------


def rows_at(ctx: CheckContext, db: str, table: str, t: Any) -> int:
    """Rows of a table created before t (UUIDv7 id time; created_at for other ids); rows are never deleted."""
    from psycopg import sql

    from reconciliation.stores.postgres import read_only

    q = sql.SQL(
        "SELECT count(*) FROM {} x WHERE CASE WHEN get_byte(uuid_send(x.id), 6) >> 4 = 7 "
        "THEN x.id < %(id_t)s::uuid ELSE x.created_at < %(t)s END"
    ).format(sql.Identifier(table))
    with read_only(ctx.conn_id(db)) as conn, conn.cursor() as cur:
        cur.execute(q, {"id_t": uuidv7_lower_bound(t), "t": t})
        return int(cur.fetchone()[0])


def docs_at(ctx: CheckContext, real_db: str, collection: str, t: Any) -> int:
    """Documents written before t: all but those whose created_at (updated_at when created_at is missing,
    as in upsert-created documents) is at or after t."""
    from reconciliation.stores.mongo import hook_client

    coll = hook_client(ctx.mongo_conn_id)[real_db][collection]
    later = {"$or": [{"created_at": {"$gte": t}}, {"created_at": None, "updated_at": {"$gte": t}}]}
    return int(coll.count_documents({}) - coll.count_documents(later))


def compare_mongo(ctx: CheckContext, mongo: dict[str, dict[str, Any]], counts: Counts, result: CheckResult) -> None:
    """Documents ≤ rows per collection; a suspicious estimate is confirmed by exact counts (Mongo first).

    Window scope reports an excess only when it began in the window (documents ≤ rows at its start,
    > rows at its end): an older excess is reported in its own window and in full scope."""
    outside = 0
    for name, m in mongo.items():
        table = m["table"]
        if table is None:
            continue
        db, real_db = m["db"], name.split(".", 1)[0]
        tc = counts.tables.get(f"{db}.{table}")
        if tc is None or tc.total is None:
            continue
        docs, rows = m["documents"], tc.total
        if docs > rows and not (m["exact"] and tc.exact):
            if not m["exact"]:
                docs = mongo_exact(ctx, real_db, m["collection"])
                m.update(documents=docs, exact=True)
            if docs > rows:
                confirmed = confirm_total(ctx, f"{db}.{table}")
                counts.tables[f"{db}.{table}"] = confirmed
                rows = confirmed.total or 0
        cls = "metadata_exceeds_rows" if docs > rows else "ok"
        if cls != "ok" and not ctx.window.is_full:
            t = instants(ctx)
            start, end = t["t_start"], t["t_end"]
            before = docs_at(ctx, real_db, m["collection"], start) <= rows_at(ctx, db, table, start)
            after = docs_at(ctx, real_db, m["collection"], end) > rows_at(ctx, db, table, end)
            if not (before and after):
                outside += 1
                cls = "ok"
        counts.rows.append({
            "metadata_rows": cls,
            "_entity": name,
            "_fields": {"collection": name, "documents": docs, "rows": rows, "table": f"{db}.{table}"},
        })
    if not ctx.window.is_full:
        result.metrics["metadata_excess_from_before_the_window"] = outside


def compare_previous(ctx: CheckContext, previous: dict[str, int], counts: Counts) -> int:
    compared = 0
    for name, before in sorted(previous.items()):
        tc = counts.tables.get(name)
        if tc is None or tc.total is None:
            continue
        if not tc.exact and tc.total < before:
            tc = counts.tables[name] = confirm_total(ctx, name)
        if not tc.exact:
            continue
        compared += 1
        counts.rows.append({
            "row_count": "row_count_decreased" if tc.total < before else "ok",
            "_entity": name,
            "_fields": {"table": name, "previous_total": before, "total": tc.total},
        })
    return compared


def judge(ctx: CheckContext, counts: Counts, result: CheckResult) -> None:
    import pandas as pd

    from reconciliation.expectations.counts import COLUMNS, counts_suite

    if not counts.rows:
        return
    frame = pd.DataFrame({c: [r.get(c) for r in counts.rows] for c in COLUMNS}, dtype=object)
    unexpected = counts_suite().validate(frame)
    for column, indices in unexpected.items():
        for i in indices:
            row = counts.rows[i]
            result.add(make_violation(CHECK, row[column], row["_entity"], **row["_fields"]))


def run(ctx: CheckContext) -> CheckResult:
    """Count every store, then judge the count invariants (see the module docstring)."""
    result = ctx.new_result(CHECK)
    t0 = time.monotonic()
    params = sql_params(ctx)
    counts = Counts()
    timings: dict[str, float] = {}

    t = time.monotonic()
    mongo = mongo_counts(ctx)  # before PostgreSQL: every counted document's row is then already written
    timings["mongo"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    postgres_counts(ctx, params, counts, result)
    timings["postgres"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    ledger_accounts(ctx, params, counts, result)
    timings["accounts_vs_default_balances"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    result.metrics["redis"] = redis_counts(ctx)
    timings["redis"] = round(time.monotonic() - t, 3)

    compare_mongo(ctx, mongo, counts, result)
    previous = parse_previous(ctx.extra.get("previous_counts"))
    if previous is None:
        why = ctx.extra.get("previous_counts_error") or "no previous counts given (ctx.extra['previous_counts'])"
        result.metrics["row_count_decreased"] = f"skipped: {why}"
    else:
        result.metrics["row_count_decreased"] = f"compared {compare_previous(ctx, previous, counts)} tables"
    judge(ctx, counts, result)

    result.in_flight += counts.in_flight
    result.metrics["tables"] = {name: tc.to_dict() for name, tc in sorted(counts.tables.items())}
    result.metrics["per_ledger"] = counts.per_ledger
    result.metrics["mongo"] = {k: {"documents": v["documents"], "exact": v["exact"]} for k, v in mongo.items()}
    result.metrics["exact_count_max_rows"] = None if ctx.window.is_full else exact_count_max_rows()
    timings["total"] = round(time.monotonic() - t0, 3)
    result.metrics["seconds_by_step"] = timings
    result.metrics["seconds"] = timings["total"]
    return result.finish()
