"""Task bodies of the reconciliation DAGs (imported only when a task runs).

Failure semantics (DESIGN §3): a check with error-severity violations stores its result, then fails with
AirflowFailException (no retries). A store that is down raises an ordinary, sanitised exception: Airflow
retries with backoff and the report shows the check as `error`. compile_report always runs, reports every
check, sends at most one digest, and fails the run unless everything passed."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciliation.catalog import CHECKS
from reconciliation.config import ParamError, Params, parse_params
from reconciliation.sanitize import describe_error, sanitize

RESULT_KEY = "result"
ERROR_KEY = "error"
NEEDS_REDIS = {"balances", "orphans", "redis_sync", "settlement", "counts"}
NEEDS_MONGO = {"metadata", "counts"}


def _context() -> dict[str, Any]:
    from airflow.sdk import get_current_context

    return get_current_context()


def report_dir() -> Path:
    base = os.environ.get("RECONCILIATION_REPORT_DIR") or os.path.join(
        os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")), "reconciliation", "reports"
    )
    return Path(base)


def _fail(message: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(message)


def preflight_task() -> dict[str, Any]:
    """Validate params, detect the schema revision, measure replica lag, reach every store."""
    ctx = _context()
    ti = ctx["ti"]
    try:
        params = parse_params(dict(ctx["params"]))
    except ParamError as exc:
        ti.xcom_push(key=ERROR_KEY, value=f"invalid params: {exc}")
        _fail(f"invalid params: {exc}")
    from reconciliation.preflight import PreflightError, check_redis_mongo, run_preflight

    try:
        pf = run_preflight(params.schema)
        if NEEDS_REDIS & set(params.checks) or NEEDS_MONGO & set(params.checks):
            check_redis_mongo(pf.stores)
    except PreflightError as exc:
        ti.xcom_push(key=ERROR_KEY, value=sanitize(exc))
        _fail(sanitize(exc))
    except Exception as exc:
        message = describe_error(exc)
        ti.xcom_push(key=ERROR_KEY, value=message)
        raise RuntimeError(message) from None
    start, end = ctx.get("data_interval_start"), ctx.get("data_interval_end")
    return {
        "revision": pf.revision,
        "params": params.to_dict(),
        "window": {
            "scope": params.scope,
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
            "now": datetime.now(UTC).isoformat(),
        },
        "preflight": pf.to_dict(),
    }


def build_context(check: str, pre: dict[str, Any]) -> Any:
    """The CheckContext of one check task, from preflight's output."""
    from reconciliation.checks.base import CheckContext
    from reconciliation.window import Window

    p = pre["params"]
    params = Params(**p)
    revision = pre["revision"]
    lag = (pre.get("preflight") or {}).get("replica_lag_seconds") or 0
    grace = params.grace + _seconds(lag)
    hard = max(params.hard_grace(revision), grace)
    w = pre["window"]
    now = datetime.fromisoformat(w["now"])
    if params.scope == "full" or not w.get("start"):
        window = Window.full(now=now, grace=grace, hard_grace=hard)
    else:
        window = Window(
            start=datetime.fromisoformat(w["start"]), end=datetime.fromisoformat(w["end"]),
            scope="window", now=now, grace=grace, hard_grace=hard,
        )
    return CheckContext(window=window, revision=revision, params=params,
                        extra={"replica_lag_seconds": lag, "preflight": pre.get("preflight")})


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=float(value or 0))


def check_task(check: str, pre: dict[str, Any]) -> dict[str, Any]:
    """Run one check; store its result before failing on error-severity violations."""
    ctx = _context()
    ti = ctx["ti"]
    if check not in pre["params"]["checks"]:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"{check} not selected in params.checks")
    from reconciliation.checks import run_check

    cctx = build_context(check, pre)
    from reconciliation.report.compile import safe_name

    cctx.extra["gx_docs_dir"] = str(report_dir() / "gx_docs" / safe_name(ti.run_id))
    if check == "counts":
        try:
            store = history_store()
            cctx.extra["previous_counts"] = store.previous_counts(ctx["dag"].dag_id, cctx.window.scope)
        except Exception as exc:  # history is advisory for counts; never block the check on it
            cctx.extra["previous_counts_error"] = describe_error(exc)
    try:
        result = run_check(check, cctx)
    except Exception as exc:
        message = describe_error(exc)
        ti.xcom_push(key=ERROR_KEY, value=message)
        raise RuntimeError(f"{check} could not run: {message}") from None
    data = result.to_dict()
    ti.xcom_push(key=RESULT_KEY, value=data)
    if result.status == "failed":
        _fail(f"{check}: {result.violations} violation(s), {result.warnings} warning(s); see the report")
    return {"status": result.status, "violations": result.violations}


def history_store() -> Any:
    from reconciliation.report.history import HistoryStore

    return HistoryStore.from_airflow()


def compile_report_task() -> dict[str, Any]:
    """Gather every check (crashed ones included), write the report, alert once, fail unless passed."""
    ctx = _context()
    ti = ctx["ti"]
    dag_id, run_id = ti.dag_id, ti.run_id
    pre = ti.xcom_pull(task_ids="preflight") or None
    states = ti.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
    results: dict[str, dict | None] = {}
    errors: dict[str, str] = {}
    pre_error = ti.xcom_pull(task_ids="preflight", key=ERROR_KEY)
    for name in CHECKS:
        task_id = f"check_{name}"
        res = ti.xcom_pull(task_ids=task_id, key=RESULT_KEY)
        err = ti.xcom_pull(task_ids=task_id, key=ERROR_KEY)
        state = states.get(task_id)
        if res:
            results[name] = res
        elif state == "skipped":
            results[name] = {"name": name, "status": "skipped", "violations": 0, "warnings": 0, "in_flight": 0,
                             "samples": [], "metrics": {}, "window": {}, "error": None}
        else:
            results[name] = None
            errors[name] = sanitize(err or (f"preflight failed: {pre_error}" if pre_error else f"task state {state}"))
    from reconciliation.notify import send_digest
    from reconciliation.report.compile import compile_report

    window = (pre or {}).get("window") or {
        "scope": (ctx.get("params") or {}).get("scope"),
        "start": ctx["data_interval_start"].isoformat() if ctx.get("data_interval_start") else None,
        "end": ctx["data_interval_end"].isoformat() if ctx.get("data_interval_end") else None,
    }
    gx_docs = {}
    for name, res in results.items():
        for db, path in ((res or {}).get("metrics") or {}).get("gx_docs", {}).items():
            rel = os.path.relpath(path, report_dir())
            gx_docs[f"{name} ({db})"] = f"../{rel}"
    store = history_store()
    report = compile_report(
        run_id=run_id, dag_id=dag_id, scope=window.get("scope") or "window", window=window,
        revision=(pre or {}).get("revision"), results=results, preflight=(pre or {}).get("preflight"),
        errors=errors, history=store, report_dir=report_dir(), gx_docs=gx_docs or None,
    )
    sent = send_digest(report, store, ctx)
    status = report["status"]
    summary = {"status": status, "report": report.get("paths", {}), "alerts": sent}
    if status != "passed":
        failing = [c["name"] for c in report.get("checks", []) if c.get("status") in ("failed", "error")]
        _fail(f"reconciliation {status}: {', '.join(failing) or 'see report'} — {report.get('paths', {}).get('html')}")
    return summary
