"""Test-session setup: import paths, a private AIRFLOW_HOME, and the server fixtures of tests/servers.py.

The environment is set at import time, before anything imports Airflow, so that no test reads or
writes the developer's Airflow home or metadata database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "include"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from reconciliation.demo.servers import private_dir  # noqa: E402  (needs the path above; imports no Airflow)

if os.environ.get("RECON_TEST_AIRFLOW_HOME"):
    _airflow_home = os.environ["RECON_TEST_AIRFLOW_HOME"]
    os.makedirs(_airflow_home, exist_ok=True)
else:
    _airflow_home = str(private_dir("recon-airflow-home-"))
    atexit.register(shutil.rmtree, _airflow_home, True)
os.environ["AIRFLOW_HOME"] = _airflow_home
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_airflow_home}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    """A CI timeout's SIGTERM tears the session down like Ctrl-C (servers stopped, temp dirs removed)."""
    raise KeyboardInterrupt(f"signal {signum}")


if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)

from tests.servers import (  # noqa: E402  (after the environment is set)
    _slack_session,
    _smtp_session,
    local_stack,
    midaz_env,
    mongo_server,
    pg_server,
    redis_server,
    slack_server,
    smtp_server,
    startup_summary,
)

__all__ = [
    "_slack_session",
    "_smtp_session",
    "local_stack",
    "midaz_env",
    "mongo_server",
    "pg_server",
    "redis_server",
    "slack_server",
    "smtp_server",
]


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Report server start-up cost, so a slow environment is visible at a glance."""
    line = startup_summary()
    if line:
        terminalreporter.write_line(line)
