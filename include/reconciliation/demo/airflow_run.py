"""Run the reconciliation DAG with real Airflow (`airflow dags test`) against a MidazEnv.

Shared by `make demo` and the end-to-end tests, so both exercise exactly what an operator runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow_env(airflow_home: Path, report_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an isolated Airflow home (SQLite metadata DB, our dags folder, no examples)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
            "RECONCILIATION_REPORT_DIR": str(report_dir),
            "RECONCILIATION_RETRY_DELAY_S": env.get("RECONCILIATION_RETRY_DELAY_S", "1"),
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        }
    )
    env.update(extra or {})
    return env


def migrate(env: dict[str, str], log: Path | None = None) -> None:
    """`airflow db migrate` once per Airflow home (it is idempotent, but costs seconds)."""
    home = Path(env["AIRFLOW_HOME"])
    marker = home / ".migrated"
    if marker.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([airflow_bin(), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{out.stderr[-4000:]}")
    marker.write_text("ok")


@dataclass
class DagTestRun:
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    @property
    def log_tail(self) -> str:
        return (self.stdout[-3000:] + "\n" + self.stderr[-6000:]).strip()


def dags_test(
    dag_id: str, logical_date: str, env: dict[str, str], *, conf: dict[str, Any] | None = None, timeout: int = 1800
) -> DagTestRun:
    """`airflow dags test DAG_ID DATE -c CONF`; returns the exit code and the report it wrote."""
    migrate(env)
    report_dir = Path(env["RECONCILIATION_REPORT_DIR"])
    latest = report_dir / "latest.json"
    before = latest.stat().st_mtime if latest.exists() else None
    argv = [airflow_bin(), "dags", "test", dag_id, logical_date]
    if conf:
        argv += ["-c", json.dumps(conf)]
    t0 = time.monotonic()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - t0
    report = None
    if latest.exists() and latest.stat().st_mtime != before:
        report = load_report(latest)
    return DagTestRun(out.returncode, seconds, out.stdout, out.stderr, report)


def load_report(latest: Path) -> dict[str, Any]:
    """latest.json may be the report itself or a pointer to it."""
    data = json.loads(latest.read_text())
    if "checks" not in data and data.get("report_json"):
        path = Path(data["report_json"])
        data = json.loads((path if path.is_absolute() else latest.parent / path).read_text())
    return data
