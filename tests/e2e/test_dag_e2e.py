"""End to end with real Airflow (`airflow dags test`): a seeded ledger with the whole fault catalogue,
a clean ledger with in-flight writes, and a store outage — report, run state and alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciliation.demo.airflow_run import dags_test
from reconciliation.demo.faults import inject
from reconciliation.demo.generator import generate
from tests.e2e.helpers import diff_message, env_for, manifest_set, report_set

pytestmark = pytest.mark.slow
TOMORROW = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
FULL = {"scope": "full", "max_samples": 100000}


def _secrets_absent(report_dir: Path, secret: str) -> None:
    for f in report_dir.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".html", ".txt"):
            assert secret not in f.read_text(errors="ignore"), f"secret leaked into {f}"


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_faulty_ledger_report_equals_manifest_and_alerts_once(
    revision, local_stack, smtp_server, slack_server, tmp_path
) -> None:
    env = local_stack.new_env(revision)
    now = datetime.now(UTC)
    generate(env, operations=3000, seed=11, now=now)
    manifest = inject(env, faults="all", seed=11, now=now)
    afenv = env_for(tmp_path, env, smtp_server, slack_server)

    run = dags_test("midaz_reconciliation_full", TOMORROW, afenv, conf=FULL)

    assert run.report is not None, run.log_tail
    assert run.returncode != 0, "a run with violations must end failed"
    report = run.report
    assert report["status"] == "failed"
    expected, found = manifest_set(manifest), report_set(report)
    assert found == expected, diff_message(expected, found)
    assert Path(report["paths"]["html"]).exists()
    mails = smtp_server.wait_for(1, timeout=30)
    assert len(mails) == 1
    body = mails[0].get_body(("html", "plain")).get_content()
    failing = [c["name"] for c in report["checks"] if c["status"] == "failed"]
    for name in failing:
        assert name in body
    assert len(slack_server.requests) == 1
    assert any(name in json.dumps(slack_server.requests[0].json) for name in failing)
    _secrets_absent(tmp_path / "reports", "password")


def test_clean_ledger_with_inflight_passes_without_alerts(local_stack, smtp_server, slack_server, tmp_path) -> None:
    env = local_stack.new_env("r1")
    generate(env, operations=3000, seed=5, now=datetime.now(UTC), inflight=True)
    afenv = env_for(tmp_path, env, smtp_server, slack_server)

    run = dags_test("midaz_reconciliation_full", TOMORROW, afenv, conf=FULL)

    assert run.report is not None, run.log_tail
    assert run.report["status"] == "passed", json.dumps(
        [(c["name"], c["status"], c["samples"][:3]) for c in run.report["checks"] if c["status"] != "passed"],
        indent=1)[:4000]
    assert run.returncode == 0, run.log_tail
    assert sum(c["in_flight"] for c in run.report["checks"]) > 0
    assert smtp_server.messages == []
    assert slack_server.requests == []


def test_store_outage_is_an_error_with_one_alert(local_stack, smtp_server, slack_server, tmp_path) -> None:
    env = local_stack.new_env("r1")
    afenv = env_for(tmp_path, env, smtp_server, slack_server)
    # The transaction database is unreachable: every attempt fails, retries run out, the run is an error.
    dead = json.loads(afenv["AIRFLOW_CONN_MIDAZ_TRANSACTION_DB"]) if afenv[
        "AIRFLOW_CONN_MIDAZ_TRANSACTION_DB"].startswith("{") else None
    if dead is not None:
        dead["port"] = 1
        dead["password"] = "sup3r-s3cret-pw"
        afenv["AIRFLOW_CONN_MIDAZ_TRANSACTION_DB"] = json.dumps(dead)
    else:
        afenv["AIRFLOW_CONN_MIDAZ_TRANSACTION_DB"] = "postgresql://midaz:sup3r-s3cret-pw@127.0.0.1:1/transaction"

    run = dags_test("midaz_reconciliation_full", TOMORROW, afenv, conf=FULL)

    assert run.returncode != 0
    assert run.report is not None, run.log_tail
    assert run.report["status"] == "error"
    mails = smtp_server.wait_for(1, timeout=30)
    assert len(mails) == 1
    text = mails[0].get_body(("html", "plain")).get_content().lower()
    assert "unreachable" in text or "infrastructure" in text or "error" in text
    assert len(slack_server.requests) == 1
    _secrets_absent(tmp_path / "reports", "sup3r-s3cret-pw")
    assert "sup3r-s3cret-pw" not in json.dumps(slack_server.requests[0].json)
    assert "sup3r-s3cret-pw" not in mails[0].as_string()
