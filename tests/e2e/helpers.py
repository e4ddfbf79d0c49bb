"""Shared by the end-to-end tests: Airflow environments for a MidazEnv, report and manifest comparisons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciliation.demo.airflow_run import airflow_env


def conn_smtp(smtp: Any) -> str:
    return json.dumps({"conn_type": "smtp", "host": smtp.host, "port": smtp.port,
                       "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "recon@example.com",
                                 "to": "ledger-ops@example.com"}})


def conn_slack(slack: Any) -> str:
    base, _, token = slack.url.partition("/services/")
    return json.dumps({"conn_type": "slackwebhook", "host": f"{base}/services", "password": token})


def env_for(tmp: Path, midaz: Any, smtp: Any = None, slack: Any = None, **extra: str) -> dict[str, str]:
    conns = dict(midaz.airflow_conn_env())
    if smtp is not None:
        conns["AIRFLOW_CONN_RECONCILIATION_SMTP"] = conn_smtp(smtp)
    if slack is not None:
        conns["AIRFLOW_CONN_RECONCILIATION_SLACK"] = conn_slack(slack)
    conns.update(extra)
    return airflow_env(tmp / "airflow", tmp / "reports", conns)


def entry_tuple(entry: Any) -> tuple[str, str, str]:
    get = entry.get if isinstance(entry, dict) else (lambda k: getattr(entry, k))
    return (get("check"), get("kind"), get("entity"))


def manifest_set(manifest: Any, **filters: Any) -> set[tuple[str, str, str]]:
    entries = manifest.expected(**filters) if filters else manifest.entries
    return {entry_tuple(e) for e in entries}


def report_set(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    found = set()
    for chk in report["checks"]:
        assert not chk.get("truncated"), f"{chk['name']} truncated its samples"
        for s in chk.get("samples", []):
            if s["severity"] in ("error", "warning"):
                found.add((s["check"], s["kind"], s["entity"]))
    return found


def diff_message(expected: set, found: set) -> str:
    missed = sorted(expected - found)
    extra = sorted(found - expected)
    return f"missed {len(missed)}: {missed[:20]}\nextra {len(extra)}: {extra[:20]}"
