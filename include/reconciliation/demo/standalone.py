"""Start and stop `airflow standalone` cleanly (scheduler, dag-processor, api-server, triggerer).

Standalone ignores SIGINT when started in the background from a script, and SIGTERM kills only its
parent (stack notes §6). We start it in its own session with SIGINT restored, and stop the whole process
group: SIGINT, then SIGTERM, then SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from reconciliation.demo.airflow_run import airflow_bin, migrate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Standalone:
    """`with Standalone(env) as af: af.cli("dags", "list")` — a real Airflow on 127.0.0.1."""

    def __init__(self, env: dict[str, str], *, port: int | None = None, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.env = dict(env)
        self.env.update({
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": self.env.get("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "5"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__CORE__PARALLELISM": self.env.get("AIRFLOW__CORE__PARALLELISM", "4"),
        })
        self.log = log or Path(self.env["AIRFLOW_HOME"]) / "standalone.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> Standalone:
        migrate(self.env)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        launcher = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                    "os.execvp(sys.argv[1], sys.argv[1:])")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", launcher, airflow_bin(), "standalone"],
            env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"airflow standalone exited ({self.proc.returncode}); see {self.log}")
            if self.healthy():
                return self
            time.sleep(1)
        self.stop()
        raise TimeoutError(f"airflow standalone not healthy after {timeout}s; see {self.log}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=3) as r:
                data = json.loads(r.read())
            return all((data.get(k) or {}).get("status") == "healthy" for k in ("metadatabase", "scheduler"))
        except Exception:
            return False

    def cli(self, *args: str, timeout: int = 300, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run([airflow_bin(), *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed: {out.stderr[-3000:]}")
        return out

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        out = self.cli("dags", "list-runs", dag_id, "-o", "json")
        lines = out.stdout.splitlines()
        # Log lines (e.g. "... [warning  ] Could not import graphviz") may precede the JSON document.
        for i, line in enumerate(lines):
            if line.startswith("[") and not line.startswith("[warning") and not line.startswith("[info"):
                try:
                    return json.loads("\n".join(lines[i:]))
                except json.JSONDecodeError:
                    continue
        return []

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.5)
            else:
                continue
            break
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def __enter__(self) -> Standalone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
