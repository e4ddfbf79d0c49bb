"""Digest: channel limits, a flood is one short message, errors read differently from violations, alert rules."""

from __future__ import annotations

import json

import pytest

from reconciliation.checks.base import make_violation
from reconciliation.report.digest import (
    SLACK_HEADER_LIMIT,
    SLACK_SECTION_LIMIT,
    TEXT_LIMIT,
    alert_signature,
    build_digest,
    should_alert,
)
from reconciliation.report.history import HistoryStore, alert_scope_key
from tests.report.factories import DAG, all_passing, bad_balance, result, run, unbalanced


@pytest.fixture
def store(tmp_path) -> HistoryStore:
    s = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    yield s
    s.dispose()


def _slack_limits(msg: dict) -> None:
    assert len(msg["text"]) <= TEXT_LIMIT
    assert len(msg["blocks"]) <= 10
    for block in msg["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= SLACK_HEADER_LIMIT
        elif block["type"] == "section":
            assert len(block["text"]["text"]) <= SLACK_SECTION_LIMIT
    assert len(json.dumps(msg["blocks"])) < 12_000


def test_flood_of_a_million_violations_is_one_short_message(store: HistoryStore, tmp_path) -> None:
    samples = [bad_balance(f"0196a000-0000-7000-8000-{i:012d}") for i in range(1000)]
    flood = result("balances", *samples, extra=999_000)
    many_txn = result("double_entry", *[unbalanced(f"txn-{i}") for i in range(1000)], extra=4000)
    report = run(store, tmp_path, 0, all_passing(balances=flood, double_entry=many_txn))
    assert report["summary"]["violations"] == 1_005_000

    mail = build_digest(report, channel="email", report_url="https://airflow.example/reports/x/report.html")
    assert len(mail["text"]) <= TEXT_LIMIT and len(mail["html"]) <= 3 * TEXT_LIMIT and len(mail["subject"]) <= 240
    assert "1,000,000 violations" in mail["text"] and "1,005,000 violations" in mail["subject"]
    assert mail["text"].count("• [new]") == 5  # top 5 samples, not a thousand
    assert "double_entry /" in mail["text"]  # the flooding check does not hide the other one
    assert "https://airflow.example/reports/x/report.html" in mail["text"]

    slack = build_digest(report, channel="slack", report_url="https://airflow.example/r.html", top=5)
    _slack_limits(slack)
    assert "<https://airflow.example/r.html|Open the full report>" in json.dumps(slack["blocks"])


def test_section_limit_holds_for_huge_lists(store: HistoryStore, tmp_path) -> None:
    long = make_violation("balances", "balance_last_operation_mismatch", "x" * 5000, balance_id="b",
                          expected_available="1" * 3000, actual_available="2")
    report = run(store, tmp_path, 0, all_passing(balances=result("balances", long)))
    report["checks"][0]["error"] = None
    slack = build_digest(report, channel="slack", report_url=None, top=50)
    _slack_limits(slack)
    # many failing checks with long errors: still bounded per section
    for c in report["checks"]:
        c["status"], c["error"] = "error", "E" * 5000
    report["status"] = "error"
    _slack_limits(build_digest(report, channel="slack", report_url="/srv/reports/x/report.html"))
    assert len(build_digest(report, channel="email", report_url=None)["text"]) <= TEXT_LIMIT


def test_infrastructure_errors_are_phrased_apart_from_violations(store: HistoryStore, tmp_path) -> None:
    failed = run(store, tmp_path, 0, all_passing(balances=result("balances", bad_balance("b1"))))
    errored = run(store, tmp_path / "e", 1, all_passing(redis_sync=None),
                  errors={"redis_sync": "ConnectionError: Redis unreachable after 3 retries"})
    both = run(store, tmp_path / "b", 2, all_passing(redis_sync=None, balances=result("balances", bad_balance("b1"))),
               errors={"redis_sync": "TimeoutError: SCAN timed out"})

    f = build_digest(failed, channel="email", report_url=None)
    assert f["subject"].startswith("[Midaz reconciliation] FAILED: 1 violation in 1 check")
    assert f["text"].startswith("FAILED: 1 violation in 1 of 8 checks (1 new, 0 persisting, 0 resolved")
    assert "infrastructure" not in f["text"].lower()
    assert "Failing checks:" in f["text"] and "available: expected 100.00, actual 90.00; version: expected 7, actual 6" in f["text"]

    e = build_digest(errored, channel="email", report_url=None)
    assert "INCOMPLETE" in e["subject"] and "infrastructure" in e["subject"] and "violation" not in e["subject"]
    assert "not a ledger inconsistency" in e["text"]
    assert "Could not run (infrastructure problem, not a ledger inconsistency):" in e["text"]
    assert "Redis unreachable after 3 retries" in e["text"] and "Failing checks" not in e["text"]

    b = build_digest(both, channel="slack", report_url=None)
    text = json.dumps(b["blocks"])
    assert "could not run" in text and "Separately, the checks that ran found 1 violation" in text
    assert b["blocks"][0]["text"]["text"].startswith("Reconciliation incomplete")


def test_slack_and_email_escape_ledger_data(store: HistoryStore, tmp_path) -> None:
    v = make_violation("double_entry", "unbalanced_transaction", "<!channel> <https://evil|click>",
                       transaction_id="t", debits="1", credits="2")
    report = run(store, tmp_path, 0, all_passing(double_entry=result("double_entry", v)))
    slack = json.dumps(build_digest(report, channel="slack", report_url=None))
    assert "<!channel>" not in slack and "&lt;!channel&gt;" in slack and "<https://evil" not in slack
    mail = build_digest(report, channel="email", report_url=None)
    assert "<!channel>" not in mail["html"] and "&lt;!channel&gt;" in mail["html"]


def test_should_alert_rules(store: HistoryStore, tmp_path) -> None:
    key = alert_scope_key(DAG, "window")
    passing = run(store, tmp_path, 0, all_passing())
    assert not should_alert(passing, None, realert_identical=True)

    first = run(store, tmp_path, 1, all_passing(balances=result("balances", bad_balance("b1"))))
    assert should_alert(first, store.alert_state(key), realert_identical=False)
    store.record_alert(key, first)

    same = run(store, tmp_path, 2, all_passing(balances=result("balances", bad_balance("b1"))))
    assert alert_signature(same) == alert_signature(first)
    assert not should_alert(same, store.alert_state(key), realert_identical=False)
    assert should_alert(same, store.alert_state(key), realert_identical=True)

    worse = run(store, tmp_path, 3, all_passing(balances=result("balances", bad_balance("b1"), bad_balance("b2"))))
    assert should_alert(worse, store.alert_state(key), realert_identical=False)
    store.record_alert(key, worse)

    # a store going down is an incident of its own; repeated, it stays quiet
    down = run(store, tmp_path, 4, all_passing(balances=None, redis_sync=None), errors={"redis_sync": "down"})
    assert should_alert(down, store.alert_state(key), realert_identical=False)
    store.record_alert(key, down)
    down_again = run(store, tmp_path, 5, all_passing(balances=None, redis_sync=None), errors={"redis_sync": "down!"})
    assert not should_alert(down_again, store.alert_state(key), realert_identical=False)

    # recovery ends the episode: the same failure afterwards alerts again
    run(store, tmp_path, 6, all_passing())
    again = run(store, tmp_path, 7, all_passing(balances=result("balances", bad_balance("b1"))))
    assert alert_signature(again) == alert_signature(first)
    assert should_alert(again, store.alert_state(key), realert_identical=False)


def test_flood_signature_is_stable_across_different_samples(store: HistoryStore, tmp_path) -> None:
    one = run(store, tmp_path, 0, all_passing(balances=result("balances", bad_balance("a"), extra=10**6)))
    two = run(store, tmp_path, 1, all_passing(balances=result("balances", bad_balance("z"), extra=10**6 + 5)))
    assert alert_signature(one) == alert_signature(two)


def test_unknown_channel() -> None:
    with pytest.raises(ValueError, match="unknown channel"):
        build_digest({"status": "failed"}, channel="pager", report_url=None)  # type: ignore[arg-type]
