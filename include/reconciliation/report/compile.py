"""Compile one run's report (DESIGN §1 compile_report, §3 Report): every check, crashed ones included, into
report.json + report.html under `<report_dir>/<run>/`, with `latest.json` beside the run folders, and the
run recorded in the history store (new / persisting / resolved findings).

The report is written even when the history store is down: the operator still needs the findings; the
change columns then say that history was unavailable. Every error text is sanitised before it is written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciliation.catalog import CHECKS
from reconciliation.config import ENV_REPORT_DIR
from reconciliation.result import STATUSES, CheckResult, jsonable
from reconciliation.sanitize import describe_error, sanitize

if TYPE_CHECKING:
    from reconciliation.report.history import HistoryStore

REPORT_VERSION = 1
TREND_RUNS = 20
CRASHED_TEXT = "The check task crashed or never ran; no result was stored."
_DURATION_KEYS = ("duration", "duration_seconds", "seconds")


def default_report_dir() -> Path:
    """$RECONCILIATION_REPORT_DIR, else $AIRFLOW_HOME/reconciliation/reports."""
    base = os.environ.get(ENV_REPORT_DIR)
    if base:
        return Path(base)
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return Path(home) / "reconciliation" / "reports"


def safe_name(text: str, limit: int = 150) -> str:
    """A run id as a folder name: Airflow run ids hold ':' and '+' (e.g. scheduled__2026-01-01T00:00:00+00:00)."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return (out or "run")[:limit]


def _duration(result: dict[str, Any]) -> float | None:
    for source in (result, result.get("metrics") or {}):
        for key in _DURATION_KEYS:
            value = source.get(key)
            if value is None:
                continue
            try:
                return round(float(value), 3)
            except (TypeError, ValueError):
                continue
    return None


def _sanitize_tree(value: Any) -> Any:
    """Sanitise every string of an operator-facing structure (preflight notes, error maps, doc links)."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, dict):
        return {str(k): _sanitize_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize_tree(v) for v in value]
    return value


def _normalise_check(name: str, raw: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    """A CheckResult dict in its canonical shape; a missing result (crashed task) becomes status error."""
    if raw is None:
        data = CheckResult(name=name, status="error", error=sanitize(error or CRASHED_TEXT)).to_dict()
        data.update(crashed=True, duration=None)
        return data
    raw = dict(raw)
    raw.setdefault("name", name)
    try:
        data = CheckResult.from_dict(raw).to_dict()
    except Exception as exc:  # an unreadable result is reported, never allowed to sink the report
        data = CheckResult(name=name, status="error", error=f"unreadable result: {describe_error(exc)}").to_dict()
    if data["status"] not in STATUSES:
        data["error"] = f"unknown status {data['status']!r}" + (f"; {data['error']}" if data.get("error") else "")
        data["status"] = "error"
    if data["status"] == "error" and not data.get("error"):
        data["error"] = error or "the check reported an error without a message"
    data["error"] = sanitize(data["error"]) if data.get("error") else None
    data["crashed"] = False
    data["duration"] = _duration(raw)
    return data


def entity_counts(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Entity counts from the `counts` check's metrics: its `counts` / `entity_counts` map when it has one,
    else every metric that is not a timing."""
    for check in checks:
        if check["name"] != "counts" or check.get("status") in ("error", "skipped"):
            continue
        metrics = check.get("metrics") or {}
        for key in ("counts", "entity_counts"):
            if isinstance(metrics.get(key), dict):
                return dict(metrics[key])
        return {k: v for k, v in metrics.items()
                if not (k in _DURATION_KEYS or k.endswith("_seconds") or k.endswith("_ms"))}
    return {}


def overall_status(checks: list[dict[str, Any]], run_errors: dict[str, str]) -> str:
    """error when anything could not be judged, failed when a check found violations, else passed."""
    if run_errors or any(c["status"] == "error" for c in checks):
        return "error"
    if any(c["status"] == "failed" for c in checks):
        return "failed"
    return "passed"


def _summary(checks: list[dict[str, Any]]) -> dict[str, int]:
    out = {"checks": len(checks), **{s: 0 for s in STATUSES}, "violations": 0, "warnings": 0, "in_flight": 0}
    for c in checks:
        out[c["status"]] = out.get(c["status"], 0) + 1
        for key in ("violations", "warnings", "in_flight"):
            out[key] += int(c.get(key) or 0)
    return out


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader (the UI, the API) never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _run_dir(report_dir: Path, run_id: str, dag_id: str) -> Path:
    """`<report_dir>/<safe run_id>`; if another DAG already owns that folder (scheduled run ids repeat
    across DAGs) the DAG id is appended. The history store keeps the path, so the API finds either."""
    name = safe_name(run_id)
    candidate = report_dir / name
    existing = candidate / "report.json"
    if existing.exists():
        try:
            owner = json.loads(existing.read_text(encoding="utf-8")).get("dag_id")
        except (OSError, ValueError):
            owner = dag_id
        if owner not in (None, dag_id):
            candidate = report_dir / f"{name}__{safe_name(dag_id)}"
    return candidate


def compile_report(
    *,
    run_id: str,
    dag_id: str,
    scope: str,
    window: dict[str, Any],
    revision: str | None,
    results: dict[str, dict[str, Any] | None],
    preflight: dict[str, Any] | None,
    errors: dict[str, str],
    history: HistoryStore | None,
    report_dir: Path,
    generated_at: datetime | str | None = None,
    gx_docs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build, record and write the report of one run; return it (with `paths`).

    `results` maps check name -> CheckResult dict, or None when the task crashed (its error text, if any,
    is in `errors[name]`). Entries of `errors` that name no check (e.g. "preflight") are run-level errors."""
    from reconciliation.report.html import render_report

    errors = {str(k): sanitize(v) for k, v in (errors or {}).items() if v}
    names = list(results)
    names += [n for n in errors if n in CHECKS and n not in results]
    order = {n: i for i, n in enumerate(CHECKS)}
    names.sort(key=lambda n: (order.get(n, len(order)), n))
    checks = [_normalise_check(n, results.get(n), errors.get(n)) for n in names]
    run_errors = {k: v for k, v in errors.items() if k not in names}

    gen = generated_at if isinstance(generated_at, datetime) else (
        datetime.fromisoformat(generated_at) if generated_at else datetime.now(UTC))
    gen = gen.replace(tzinfo=UTC) if gen.tzinfo is None else gen.astimezone(UTC)
    win = jsonable(dict(window or {}))
    win["scope"] = scope

    report_dir = Path(report_dir)
    run_dir = _run_dir(report_dir, run_id, dag_id)
    paths = {
        "dir": str(run_dir),
        "run_dir_name": run_dir.name,
        "json": str(run_dir / "report.json"),
        "html": str(run_dir / "report.html"),
        "latest": str(report_dir / "latest.json"),
    }
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "run_id": run_id,
        "dag_id": dag_id,
        "scope": scope,
        "window": win,
        "revision": revision,
        "generated_at": gen.isoformat(),
        "status": overall_status(checks, run_errors),
        "summary": _summary(checks),
        "errors": run_errors,
        "preflight": _sanitize_tree(jsonable(preflight)) if preflight is not None else None,
        "counts": jsonable(entity_counts(checks)),
        "checks": checks,
        "checks_by_name": {c["name"]: {k: c.get(k) for k in ("status", "violations", "warnings", "in_flight",
                                                             "error")} for c in checks},
        "gx_docs": _sanitize_tree(jsonable(gx_docs)) if gx_docs else None,
        "paths": paths,
    }

    # ---- history: new / persisting / resolved, trend
    report.update(history_available=False, history_error=None, previous_run=None, fingerprints={}, resolved=[],
                  unverified=[], trend={})
    if history is not None:
        try:
            judged = history.record(report)
            report.update(history_available=True, previous_run=judged["previous_run"],
                          fingerprints=judged["fingerprints"], resolved=judged["resolved"],
                          unverified=judged["unverified"])
            report["trend"] = {c["name"]: history.trend(c["name"], TREND_RUNS, dag_id=dag_id, scope=scope)
                               for c in checks}
        except Exception as exc:
            report["history_error"] = f"history store unavailable: {describe_error(exc)}"
    else:
        report["history_error"] = "no history store configured"
    statuses = report["fingerprints"]
    totals = {"new": 0, "persisting": 0, "resolved": 0, "unverified": 0}
    resolved_by_check: dict[str, int] = {}
    unverified_by_check: dict[str, int] = {}
    for item in report["resolved"]:
        resolved_by_check[item["check"]] = resolved_by_check.get(item["check"], 0) + 1
    for item in report["unverified"]:
        unverified_by_check[item["check"]] = unverified_by_check.get(item["check"], 0) + 1
    for check in checks:
        changes = {"new": 0, "persisting": 0, "resolved": resolved_by_check.get(check["name"], 0),
                   "unverified": unverified_by_check.get(check["name"], 0)}
        seen: set[str] = set()
        for sample in check["samples"]:
            state = statuses.get(sample.get("fingerprint", ""))
            if state in ("new", "persisting"):
                sample["change"] = state
                if sample["fingerprint"] not in seen:
                    seen.add(sample["fingerprint"])
                    changes[state] += 1
        check["changes"] = changes
        for key in totals:
            totals[key] += changes[key]
    report["changes"] = totals

    # ---- files
    report_json = json.dumps(report, indent=1, ensure_ascii=False, default=str)
    _write(Path(paths["json"]), report_json + "\n")
    _write(Path(paths["html"]), render_report(report))
    latest = {
        "run_id": run_id,
        "dag_id": dag_id,
        "scope": scope,
        "status": report["status"],
        "generated_at": report["generated_at"],
        "window": win,
        "revision": revision,
        "summary": report["summary"],
        "changes": report["changes"],
        "run_dir_name": paths["run_dir_name"],
        "report_json": f"{paths['run_dir_name']}/report.json",
        "report_html": f"{paths['run_dir_name']}/report.html",
    }
    _write(Path(paths["latest"]), json.dumps(latest, indent=1, ensure_ascii=False) + "\n")
    return report
