"""`make ui`: the demo ledger behind a real Airflow UI on 127.0.0.1 (airflow standalone), stopped cleanly.

Seeds the same demo ledger as `make demo`, starts `airflow standalone` with its connections, and waits
for Ctrl-C; then stops every Airflow component (process group) and the throwaway servers."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from reconciliation.demo.airflow_run import ROOT, airflow_env
from reconciliation.demo.run import DEMO_FAULTS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--revision", choices=["r1", "r2"], default="r1")
    ap.add_argument("--operations", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--workdir", default=str(ROOT / ".demo"))
    args = ap.parse_args(argv)

    from reconciliation.demo.faults import inject
    from reconciliation.demo.generator import generate
    from reconciliation.demo.servers import LocalStack
    from reconciliation.demo.standalone import Standalone

    work = Path(args.workdir).resolve()
    stop = {"flag": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(flag=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    with LocalStack(use_env=False) as stack:
        env = stack.new_env(args.revision)
        now = datetime.now(UTC)
        generate(env, operations=args.operations, seed=args.seed, now=now)
        inject(env, faults=DEMO_FAULTS, seed=args.seed, now=now)
        afenv = airflow_env(work / "ui-airflow", work / "reports", env.airflow_conn_env())
        with Standalone(afenv, port=args.port) as af:
            pw = Path(afenv["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
            print(f"Airflow UI: {af.url}  (user admin; password in {pw})")
            print("Trigger midaz_reconciliation_full (or use 'Trigger DAG w/ config'); reports land in "
                  f"{work / 'reports'}. Ctrl-C stops everything.", flush=True)
            while not stop["flag"]:
                time.sleep(0.5)
            print("stopping Airflow and the demo servers ...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
