"""Side-by-side benchmarks: every check (full scope and a 1-day window) against a raw single-pass baseline
reading the same data, on a generated ledger on throwaway servers. Not part of the test suite.

    .venv/bin/python -m benchmarks.run --operations 1000000 [--revision r1] [--checks balances,double_entry]

Each check runs in its own process (peak RSS per task, as Airflow would run it). Ratios compare the
check's wall time with the baseline's; the GE import (~2 s, paid once per task process) is reported
separately and excluded from the ratio, as it does not grow with the ledger.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Raw baselines: one pass over the same data a check must read, with no judging framework.
BASELINES = {
    "double_entry": ("pg", "transaction", """
        SELECT count(*) FROM (
          SELECT t.id FROM "transaction" t JOIN (
            SELECT transaction_id,
                   SUM(amount) FILTER (WHERE type='DEBIT') d, SUM(amount) FILTER (WHERE type='CREDIT') c,
                   SUM(amount) FILTER (WHERE type='ON_HOLD') h, SUM(amount) FILTER (WHERE type='RELEASE') r
            FROM operation WHERE deleted_at IS NULL GROUP BY transaction_id) s ON s.transaction_id = t.id
          WHERE t.status = 'APPROVED' AND COALESCE(s.d,0) <> COALESCE(s.c,0)) x"""),
    "balances": ("pg", "transaction", """
        SELECT count(*) FROM balance b JOIN (
          SELECT DISTINCT ON (balance_id) balance_id, available_balance_after a, on_hold_balance_after h
          FROM operation WHERE deleted_at IS NULL AND balance_affected
          ORDER BY balance_id, balance_version_after DESC, created_at DESC, id DESC) l ON l.balance_id = b.id
        WHERE b.available <> l.a OR b.on_hold <> l.h"""),
    "orphans": ("pg", "transaction", """
        SELECT count(*) FROM "transaction" t
        WHERE NOT EXISTS (SELECT 1 FROM operation o WHERE o.transaction_id = t.id)"""),
    "referential": ("pg2", None, None),
    "redis_sync": ("redis", None, None),
    "settlement": ("redis_hash", None, None),
    "metadata": ("mongo", None, None),
    "counts": ("pg", "transaction", """
        SELECT (SELECT count(*) FROM "transaction") + (SELECT count(*) FROM operation) + (SELECT count(*) FROM balance)"""),
}

CHILD = r"""
import json, os, resource, sys, time
from datetime import datetime, timedelta
t0 = time.perf_counter()
import great_expectations  # noqa: F401  (the fixed cost every task pays once)
ge_import = time.perf_counter() - t0
from reconciliation.checks import run_check
from reconciliation.checks.base import CheckContext
from reconciliation.config import Params
from reconciliation.window import Window
name, revision, now, start = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3]), sys.argv[4]
params = Params(max_samples=1000)
kw = dict(now=now, grace=params.grace, hard_grace=params.hard_grace(revision))
if start == "full":
    window = Window.full(**kw)
else:
    s = datetime.fromisoformat(start)
    window = Window(start=s, end=s + timedelta(days=1), **kw)
t1 = time.perf_counter()
res = run_check(name, CheckContext(window=window, revision=revision, params=params))
secs = time.perf_counter() - t1
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT" + json.dumps({"seconds": secs, "ge_import": ge_import, "rss_mb": rss, "status": res.status,
                              "violations": res.violations}))
"""


def baseline(name: str, env) -> float:
    """Seconds for the raw single pass of `name` over the same stores."""
    import psycopg

    kind, db, sql = BASELINES[name]
    t0 = time.perf_counter()
    if kind == "pg":
        with psycopg.connect(env.transaction_conninfo if db == "transaction" else env.onboarding_conninfo) as c:
            c.execute(sql).fetchall()
    elif kind == "pg2":
        with psycopg.connect(env.transaction_conninfo) as t, psycopg.connect(env.onboarding_conninfo) as o:
            accounts = {}
            with o.cursor(name="a") as cur:
                cur.execute("SELECT id, alias, asset_code, type FROM account")
                for row in cur:
                    accounts[row[0]] = row[1:]
            bad = 0
            with t.cursor(name="b") as cur:
                cur.execute("SELECT account_id, alias, asset_code, account_type FROM balance")
                for row in cur:
                    bad += accounts.get(row[0]) != row[1:]
            with t.cursor(name="o") as cur:
                cur.execute("SELECT DISTINCT organization_id, ledger_id, account_id, account_alias FROM operation")
                for row in cur:
                    bad += row[2] not in accounts
    elif kind == "redis":
        import orjson
        import redis

        r = redis.Redis.from_url(env.redis_url)
        cursor = 0
        while True:
            cursor, keys = r.scan(cursor=cursor, match="balance:{transactions}:*", count=1000)
            if keys:
                for v in r.mget(keys):
                    if v:
                        orjson.loads(v)
            if cursor == 0:
                break
    elif kind == "redis_hash":
        import redis

        redis.Redis.from_url(env.redis_url).hgetall("backup_queue:{transactions}")
    elif kind == "mongo":
        import pymongo

        client = pymongo.MongoClient(env.mongo_uri)
        for dbname in (env.mongo_onboarding_db, env.mongo_transaction_db):
            for coll in client[dbname].list_collection_names():
                for _ in client[dbname][coll].find({}, {"entity_id": 1, "metadata": 1}, batch_size=5000):
                    pass
    return time.perf_counter() - t0


def run_child(name: str, revision: str, now: datetime, start: str, env_vars: dict[str, str]) -> dict:
    env = {**os.environ, **env_vars}
    out = subprocess.run([sys.executable, "-c", CHILD, name, revision, now.isoformat(), start],
                         env=env, capture_output=True, text=True, timeout=3600)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")), None)
    if not line:
        raise RuntimeError(f"{name} failed: {out.stderr[-2000:]}")
    return json.loads(line[6:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--operations", type=int, default=100_000)
    ap.add_argument("--revision", default="r1", choices=["r1", "r2"])
    ap.add_argument("--checks", default="all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args(argv)

    from reconciliation.catalog import CHECKS
    from reconciliation.demo.generator import generate
    from reconciliation.demo.servers import LocalStack

    names = list(CHECKS) if args.checks == "all" else args.checks.split(",")
    now = datetime.now(UTC)
    rows = []
    with LocalStack(use_env=False) as stack:
        env = stack.new_env(args.revision)
        t0 = time.perf_counter()
        generate(env, operations=args.operations, seed=args.seed, now=now, days=args.days)
        gen_s = time.perf_counter() - t0
        print(f"generated {args.operations} operations over {args.days} days in {gen_s:.1f}s", flush=True)
        day = (now - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
        for name in names:
            base = min(baseline(name, env) for _ in range(2))
            full = run_child(name, args.revision, now, "full", env.airflow_conn_env())
            win = run_child(name, args.revision, now, day.isoformat(), env.airflow_conn_env())
            rows.append((name, base, full["seconds"], full["seconds"] / base if base else float("nan"),
                         win["seconds"], win["seconds"] / full["seconds"], full["rss_mb"], full["ge_import"]))
            print(f"{name:13s} baseline {base:7.2f}s  check {full['seconds']:7.2f}s  ratio "
                  f"{rows[-1][3]:5.2f}x  1-day window {win['seconds']:6.2f}s ({rows[-1][5]:.1%} of full)  "
                  f"peak RSS {full['rss_mb']:.0f} MB", flush=True)
    print("\n| check | raw baseline (s) | check, full (s) | ratio | 1-day window (s) | window/full | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.2f}× | {r[4]:.2f} | {r[5]:.1%} | {r[6]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
