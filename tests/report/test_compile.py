"""compile_report: the JSON shape, statuses (crashed checks included), history across runs, files, secrets."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from reconciliation.checks.base import make_violation
from reconciliation.report.compile import overall_status, safe_name
from reconciliation.report.digest import build_digest
from reconciliation.report.history import HistoryStore
from tests.report.factories import (
    DAG,
    FAKE_PASSWORD,
    all_passing,
    bad_balance,
    deleted_account,
    result,
    run,
    unbalanced,
)


@pytest.fixture
def store(tmp_path) -> HistoryStore:
    s = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    yield s
    s.dispose()


def _read(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_report_json_shape(store: HistoryStore, tmp_path) -> None:
    results = all_passing(balances=result("balances", bad_balance("bal-1"), in_flight=3),
                          referential=result("referential", deleted_account("bal-2")), settlement=None)
    del results["metadata"]  # a check not selected for this run is simply absent
    report = run(store, tmp_path / "reports", 0, results, errors={"settlement": "RuntimeError: boom"})

    on_disk = _read(report["paths"]["json"])
    assert on_disk["run_id"] == report["run_id"] == "scheduled__2026-05-01T00:00:00+00:00"
    for key in ("run_id", "dag_id", "scope", "window", "revision", "generated_at", "status", "summary", "checks",
                "counts", "fingerprints", "resolved", "changes", "previous_run", "paths", "checks_by_name"):
        assert key in on_disk, key
    assert on_disk["dag_id"] == DAG and on_disk["revision"] == "r2" and on_disk["window"]["scope"] == "window"
    assert on_disk["window"]["start"] == "2026-05-01T00:00:00+00:00"
    assert on_disk["generated_at"] == "2026-05-02T02:00:00+00:00"
    assert [c["name"] for c in on_disk["checks"]] == [
        "balances", "double_entry", "orphans", "referential", "redis_sync", "settlement", "counts"]
    by = {c["name"]: c for c in on_disk["checks"]}
    assert by["balances"]["status"] == "failed" and by["balances"]["in_flight"] == 3
    assert by["balances"]["duration"] == 1.25
    assert by["referential"]["status"] == "warning" and by["referential"]["warnings"] == 1
    assert by["settlement"] == {**by["settlement"], "status": "error", "crashed": True, "error": "RuntimeError: boom"}
    assert on_disk["status"] == "error"  # a crashed check outranks the failure
    assert on_disk["summary"]["violations"] == 1 and on_disk["summary"]["error"] == 1
    assert on_disk["counts"] == {"onboarding.account": 120, "transaction.balance": 121}
    sample = by["balances"]["samples"][0]
    assert sample["details"]["expected_available"] == "100.00" and sample["change"] == "new"
    assert sample["fingerprint"] in on_disk["fingerprints"]
    assert on_disk["checks_by_name"]["settlement"]["status"] == "error"

    run_dir = Path(report["paths"]["dir"])
    assert run_dir.name == safe_name(report["run_id"]) == "scheduled__2026-05-01T00_00_00_00_00"
    assert (run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")
    latest = _read(tmp_path / "reports" / "latest.json")
    assert latest["status"] == "error" and latest["report_json"] == f"{run_dir.name}/report.json"
    assert (tmp_path / "reports" / latest["report_html"]).exists()


@pytest.mark.parametrize(
    ("results", "errors", "expected"),
    [
        ({"a": {"status": "passed"}, "b": {"status": "warning"}}, {}, "passed"),
        ({"a": {"status": "passed"}, "b": {"status": "skipped"}}, {}, "passed"),
        ({"a": {"status": "failed"}, "b": {"status": "warning"}}, {}, "failed"),
        ({"a": {"status": "failed"}, "b": {"status": "error"}}, {}, "error"),
        ({"a": {"status": "passed"}}, {"preflight": "x"}, "error"),
    ],
)
def test_overall_status(results: dict, errors: dict, expected: str) -> None:
    assert overall_status([{"name": k, **v} for k, v in results.items()], errors) == expected


def test_warnings_do_not_fail_and_crashed_check_without_message(store: HistoryStore, tmp_path) -> None:
    passed = run(store, tmp_path, 0, all_passing(referential=result("referential", deleted_account("b"))))
    assert passed["status"] == "passed"
    crashed = run(store, tmp_path, 1, all_passing(orphans=None))
    orphans = next(c for c in crashed["checks"] if c["name"] == "orphans")
    assert crashed["status"] == "error" and orphans["status"] == "error" and "crashed" in orphans["error"]
    pre = run(None, tmp_path / "pre", 2, {n: None for n in all_passing()}, preflight=None,
              errors={"preflight": "ConnectionError: onboarding unreachable", **{n: "preflight failed" for n in
                                                                                 all_passing()}})
    assert pre["status"] == "error" and pre["errors"] == {"preflight": "ConnectionError: onboarding unreachable"}
    assert pre["history_error"] == "no history store configured"


def test_new_persisting_resolved_across_three_runs(store: HistoryStore, tmp_path) -> None:
    a, b, c = bad_balance("bal-a"), bad_balance("bal-b"), unbalanced("txn-c")
    r1 = run(store, tmp_path, 0, all_passing(balances=result("balances", a, b)))
    r2 = run(store, tmp_path, 1, all_passing(balances=result("balances", b), double_entry=result("double_entry", c)))
    r3 = run(store, tmp_path, 2, all_passing(double_entry=result("double_entry", c)))

    assert r1["changes"] == {"new": 2, "persisting": 0, "resolved": 0, "unverified": 0}
    assert r2["changes"] == {"new": 1, "persisting": 1, "resolved": 1, "unverified": 0}
    assert r3["changes"] == {"new": 0, "persisting": 1, "resolved": 1, "unverified": 0}
    assert [x["entity"] for x in r2["resolved"]] == ["bal-a"] and [x["entity"] for x in r3["resolved"]] == ["bal-b"]
    by2 = {ch["name"]: ch for ch in r2["checks"]}
    assert by2["balances"]["changes"] == {"new": 0, "persisting": 1, "resolved": 1, "unverified": 0}
    assert by2["double_entry"]["samples"][0]["change"] == "new"
    assert r3["previous_run"]["run_id"] == r2["run_id"]
    assert r3["status"] == "failed"
    on_disk = _read(r3["paths"]["json"])
    assert on_disk["fingerprints"] == {c.fingerprint: "persisting", b.fingerprint: "resolved"}
    assert [p["violations"] for p in on_disk["trend"]["balances"]] == [2, 1, 0]
    html = Path(r3["paths"]["html"]).read_text()
    assert "Resolved since the previous run" in html and "bal-b" in html


def test_rerun_replaces_history_rows(store: HistoryStore, tmp_path) -> None:
    a = bad_balance("bal-a")
    run(store, tmp_path, 0, all_passing(balances=result("balances", a)), run_id="scheduled__d0")
    run(store, tmp_path, 0, all_passing(balances=result("balances", a)), run_id="manual__d0_again")
    runs = store.runs(dag_id=DAG)
    assert [r["run_id"] for r in runs] == ["manual__d0_again"]
    assert len(store.check_results(check="balances")) == 1
    assert store.fingerprints()[0]["first_seen_run"] == "manual__d0_again"


def test_history_down_still_writes_the_report(tmp_path) -> None:
    class Down(HistoryStore):
        def __init__(self) -> None:
            pass

        def record(self, report: dict) -> dict:
            raise ConnectionError(f"could not connect to postgresql://recon:{FAKE_PASSWORD}@db:5432/history")

    report = run(Down(), tmp_path, 0, all_passing(balances=result("balances", bad_balance("x"))))
    assert report["status"] == "failed" and report["history_available"] is False
    assert report["history_error"].startswith("history store unavailable: ConnectionError")
    assert FAKE_PASSWORD not in Path(report["paths"]["json"]).read_text()
    assert "could not be computed" in Path(report["paths"]["html"]).read_text()


def test_no_secrets_in_any_output(store: HistoryStore, tmp_path) -> None:
    dsn = f"postgresql://reconciler:{FAKE_PASSWORD}@replica.internal:5432/transaction"
    results = all_passing(
        balances=None,
        redis_sync=result("redis_sync", status="error", error=f"RedisError: AUTH failed password={FAKE_PASSWORD}"),
        double_entry=result("double_entry", unbalanced("t1")),
    )
    preflight = {"revision": "r2", "versions": {}, "replica_lag_seconds": None, "stores": {"mongo": f"down: {dsn}"},
                 "notes": [f"retrying {dsn}"]}
    report = run(store, tmp_path / "reports", 0, results, preflight=preflight,
                 errors={"balances": f"OperationalError: connection to {dsn} failed", "preflight_note": dsn})
    run(store, tmp_path / "reports", 1, all_passing(), errors={})
    files = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()] + [tmp_path / "history.db"]
    assert len(files) >= 6
    for path in files:
        assert FAKE_PASSWORD.encode() not in path.read_bytes(), path
    for channel in ("email", "slack"):
        assert FAKE_PASSWORD not in json.dumps(build_digest(report, channel=channel, report_url=None))
    assert "reconciler:***@replica.internal" in Path(report["paths"]["json"]).read_text()


def test_html_escapes_ledger_data_and_is_self_contained(store: HistoryStore, tmp_path) -> None:
    evil = make_violation("metadata", "metadata_nested_value", "onboarding.account/<script>alert(1)</script>",
                          collection="account", entity_id="<script>alert(1)</script>",
                          actual_value='{"x": "<img src=x onerror=alert(2)>"}')
    report = run(store, tmp_path, 0, all_passing(metadata=result("metadata", evil)),
                 )
    html = Path(report["paths"]["html"]).read_text()
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html
    assert not re.search(r"<(script|link|iframe|img)\b", html)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<svg" in html and "<style>" in html


def test_decimal_amounts_stay_exact_strings(store: HistoryStore, tmp_path) -> None:
    v = make_violation("balances", "balance_last_operation_mismatch", "bal-d", balance_id="bal-d",
                       expected_available=Decimal("123456789012345678.000000000000000001"),
                       actual_available=Decimal("0.1"))
    report = run(store, tmp_path, 0, all_passing(balances=result("balances", v)))
    text = Path(report["paths"]["json"]).read_text()
    assert '"expected_available": "123456789012345678.000000000000000001"' in text
    assert '"actual_available": "0.1"' in text
    assert "123456789012345678.000000000000000001" in Path(report["paths"]["html"]).read_text()


def test_run_folder_collision_between_dags(store: HistoryStore, tmp_path) -> None:
    one = run(store, tmp_path, 0, all_passing(), run_id="scheduled__2026-05-01T00:00:00+00:00")
    two = run(store, tmp_path, 0, all_passing(), run_id="scheduled__2026-05-01T00:00:00+00:00",
              dag_id="midaz_reconciliation_full", scope="full")
    assert one["paths"]["dir"] != two["paths"]["dir"]
    assert _read(one["paths"]["json"])["dag_id"] == DAG
    again = run(store, tmp_path, 0, all_passing(), run_id="scheduled__2026-05-01T00:00:00+00:00")
    assert again["paths"]["dir"] == one["paths"]["dir"]
