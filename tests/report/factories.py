"""Builders for report tests: realistic CheckResult dicts made with the checks' own violation factory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciliation.checks.base import make_violation
from reconciliation.report.compile import compile_report
from reconciliation.report.history import HistoryStore
from reconciliation.result import CheckResult

DAG = "midaz_reconciliation"
DAY0 = datetime(2026, 5, 1, tzinfo=UTC)
FAKE_PASSWORD = "Sup3r-S3cret-pw"


def bad_balance(balance_id: str, expected: str = "100.00", actual: str = "90.00") -> Any:
    return make_violation(
        "balances", "balance_last_operation_mismatch", balance_id, balance_id=balance_id,
        organization_id="0196a000-0000-7000-8000-000000000001", ledger_id="0196a000-0000-7000-8000-000000000002",
        expected_available=expected, actual_available=actual, expected_version=7, actual_version=6,
    )  # fmt: skip


def unbalanced(transaction_id: str) -> Any:
    return make_violation(
        "double_entry", "unbalanced_transaction", transaction_id, transaction_id=transaction_id,
        asset_code="BRL", debits="150.00", credits="100.00",
    )  # fmt: skip


def deleted_account(balance_id: str) -> Any:
    return make_violation("referential", "balance_account_deleted", balance_id, balance_id=balance_id,
                          account_id="0196a000-0000-7000-8000-0000000000aa")


def result(name: str, *violations: Any, status: str | None = None, in_flight: int = 0, extra: int = 0,
           metrics: dict[str, Any] | None = None, max_samples: int = 1000, error: str | None = None) -> dict[str, Any]:
    """A finished CheckResult dict; `extra` adds error-severity violations beyond the samples (truncated)."""
    res = CheckResult(name=name, max_samples=max_samples, in_flight=in_flight, metrics=dict(metrics or {"seconds": 1.25}))
    for v in violations:
        res.add(v)
    if extra:
        res.violations += extra
        res.truncated = True
    if status:
        res.status = status
        res.error = error
    return res.finish().to_dict()


def window(day: int, scope: str = "window") -> dict[str, Any]:
    start = DAY0 + timedelta(days=day)
    return {"scope": scope, "start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat(),
            "now": (start + timedelta(days=1, hours=1)).isoformat()}


def all_passing(**override: dict[str, Any] | None) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {
        name: result(name) for name in ("balances", "double_entry", "orphans", "referential", "redis_sync",
                                        "settlement", "metadata")
    }
    out["counts"] = result("counts", metrics={"seconds": 0.5, "counts": {"onboarding.account": 120,
                                                                          "transaction.balance": 121}})
    out.update(override)
    return out


def run(store: HistoryStore | None, report_dir: Path, day: int, results: dict[str, dict[str, Any] | None], *,
        run_id: str | None = None, errors: dict[str, str] | None = None, scope: str = "window", dag_id: str = DAG,
        preflight: dict[str, Any] | None = None, generated_at: datetime | None = None) -> dict[str, Any]:
    """compile_report as the DAG's report task calls it."""
    gen = generated_at or DAY0 + timedelta(days=day + 1, hours=2)
    return compile_report(
        run_id=run_id or f"scheduled__{(DAY0 + timedelta(days=day)).isoformat()}",
        dag_id=dag_id, scope=scope, window=window(day, scope), revision="r2", results=results,
        preflight=preflight if preflight is not None else {"revision": "r2", "versions": {"onboarding": 19,
                                                                                         "transaction": 35},
                                                           "replica_lag_seconds": 0.4, "stores": {}, "notes": []},
        errors=errors or {}, history=store, report_dir=report_dir, generated_at=gen,
    )
