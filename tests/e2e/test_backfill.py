"""Backfills with the real scheduler: `airflow backfill create` over three daily windows of a ledger whose
faults sit on known days. Each run reports exactly its window's faults; re-running one window replaces
its history rows instead of duplicating them."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciliation.demo.faults import inject
from reconciliation.demo.generator import generate
from reconciliation.demo.standalone import Standalone
from tests.e2e.helpers import diff_message, env_for, manifest_set, report_set

pytestmark = pytest.mark.slow
DAG = "midaz_reconciliation"
FAULT_DAYS = ("unbalanced_transaction", "transaction_without_operations", "persisted_created_status")


def _wait_runs(af: Standalone, count: int, run_type: str, timeout: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = [r for r in af.runs(DAG) if str(r.get("run_id", "")).startswith(f"{run_type}__")]
        done = [r for r in runs if r.get("state") in ("success", "failed")]
        if len(runs) >= count and len(done) == len(runs):
            return runs
        time.sleep(3)
    raise TimeoutError(f"backfill runs did not finish: {runs}")


def _report_for(report_dir: Path, run_id: str) -> dict:
    import json

    matches = [p for p in report_dir.glob("*/report.json") if json.loads(p.read_text()).get("run_id") == run_id]
    assert len(matches) == 1, f"expected one report for {run_id}, found {matches}"
    return json.loads(matches[0].read_text())


def test_backfill_three_days_reports_each_window_and_rerun_replaces_history(local_stack, tmp_path) -> None:
    env = local_stack.new_env("r1")
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=n) for n in (4, 3, 2)]
    generate(env, operations=3000, seed=21, now=now, days=6)
    manifest = inject(env, faults=list(FAULT_DAYS), seed=21, now=now,
                      on_day={f: d.date() for f, d in zip(FAULT_DAYS, days, strict=True)})
    # The scheduler, API server and dag-processor write the metadata DB concurrently: SQLite locks under
    # that load ("database is locked"), so this test gives Airflow a PostgreSQL metadata database.
    import psycopg
    from psycopg import sql

    meta_db = f"airflow_meta_{env.transaction_db}"
    pg = local_stack.pg
    with psycopg.connect(pg.admin_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(meta_db)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(meta_db)))
    auth = pg.user if not pg.password else f"{pg.user}:{pg.password}"
    afenv = env_for(tmp_path, env, RECONCILIATION_SCHEDULE="@daily",
                    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg://{auth}@{pg.host}:{pg.port}/{meta_db}")

    with Standalone(afenv) as af:
        for _ in range(60):
            if DAG in af.cli("dags", "list", "-o", "plain", check=False).stdout:
                break
            time.sleep(2)
        frm, to = days[0].strftime("%Y-%m-%d"), days[-1].strftime("%Y-%m-%d")
        af.cli("backfill", "create", "--dag-id", DAG, "--from-date", frm, "--to-date", to,
               "--max-active-runs", "1", "--dag-run-conf", '{"max_samples": 100000}')
        af.cli("dags", "unpause", DAG)
        runs = _wait_runs(af, 3, "backfill")
        assert len(runs) == 3, runs
        by_start = {}
        for r in runs:
            report = _report_for(tmp_path / "reports", r["run_id"])
            start = datetime.fromisoformat(report["window"]["start"])
            end = datetime.fromisoformat(report["window"]["end"])
            by_start[start] = r
            expected = manifest_set(manifest, window=(start, end))
            assert expected, f"no fault planted in [{start}, {end})"
            assert report_set(report) == expected, diff_message(expected, report_set(report))
            assert r["state"] == "failed"
        assert sorted(by_start) == days

        # Re-run the middle window: its history rows are replaced, not duplicated.
        mid = days[1].strftime("%Y-%m-%d")
        # The first backfill is marked complete by the scheduler shortly after its last run ends.
        deadline = time.monotonic() + 180
        while True:
            out = af.cli("backfill", "create", "--dag-id", DAG, "--from-date", mid, "--to-date", mid,
                         "--reprocess-behavior", "failed", "--max-active-runs", "1",
                         "--dag-run-conf", '{"max_samples": 100000}', check=False)
            if out.returncode == 0:
                break
            assert "AlreadyRunningBackfill" in out.stderr and time.monotonic() < deadline, out.stderr[-2000:]
            time.sleep(3)
        time.sleep(5)
        _wait_runs(af, 3, "backfill")

    db = Path(afenv["AIRFLOW_HOME"]) / "reconciliation" / "history.db"
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT window_start, COUNT(*) FROM recon_runs WHERE dag_id = ? AND scope = 'window' GROUP BY window_start",
            (DAG,)).fetchall()
    counts = {r[0][:10]: r[1] for r in rows}
    for d in days:
        assert counts.get(d.strftime("%Y-%m-%d")) == 1, counts
