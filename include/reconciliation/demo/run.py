"""`make demo`: throwaway PostgreSQL/Redis/Mongo-wire servers, a seeded demo ledger with a few faults, one
real Airflow run of the full-scope DAG, a summary table in the terminal and the path of report.html.

Exits 0 once the run completed and the report was written, whatever its verdict (finding the demo's
faults is the point); non-zero only when it could not do its job."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciliation.demo.airflow_run import ROOT, airflow_env, dags_test

DEMO_FAULTS = [
    "balance_behind_last_operation",
    "version_fork",
    "unbalanced_transaction",
    "transaction_without_operations",
    "redis_version_behind",
    "metadata_orphan",
    "stuck_backup_entry",
]


def summary_table(report: dict) -> str:
    rows = [("check", "status", "violations", "warnings", "in flight", "seconds")]
    for chk in report.get("checks", []):
        seconds = (chk.get("metrics") or {}).get("seconds", "")
        rows.append((chk["name"], chk["status"], str(chk.get("violations", 0)), str(chk.get("warnings", 0)),
                      str(chk.get("in_flight", 0)), str(seconds)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--revision", choices=["r1", "r2"], default="r1")
    ap.add_argument("--operations", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default=str(ROOT / ".demo"))
    ap.add_argument("--faults", default=",".join(DEMO_FAULTS), help="comma-separated fault names, 'all' or 'none'")
    args = ap.parse_args(argv)

    from reconciliation.demo.faults import inject
    from reconciliation.demo.generator import generate
    from reconciliation.demo.servers import LocalStack

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    print(f"[demo] starting throwaway PostgreSQL, Redis and MongoDB-wire servers (work dir {work})", flush=True)
    try:
        with LocalStack(use_env=False) as stack:
            env = stack.new_env(args.revision)
            print(f"[demo] seeding a Midaz {args.revision.upper()} ledger: {args.operations} operations, "
                  f"seed {args.seed}", flush=True)
            stats = generate(env, operations=args.operations, seed=args.seed, now=now)
            faults = [] if args.faults == "none" else ("all" if args.faults == "all" else args.faults.split(","))
            manifest = inject(env, faults=faults, seed=args.seed, now=now) if faults else None
            if manifest is not None:
                manifest_path = work / "manifest.json"
                manifest.save(manifest_path)
                print(f"[demo] injected {len(faults) if faults != 'all' else 'all'} fault(s); "
                      f"expected findings: {len(manifest.entries)} ({manifest_path})", flush=True)
            print(f"[demo] ledger: {stats.get('transactions')} transactions, {stats.get('operations')} operations, "
                  f"{stats.get('accounts')} accounts, {stats.get('balance')} balances "
                  f"({stats.get('redis', {}).get('balance_keys')} hot in Redis)", flush=True)
            afenv = airflow_env(work / "airflow", work / "reports", env.airflow_conn_env())
            logical = (now + timedelta(days=1)).strftime("%Y-%m-%d")
            print("[demo] running the DAG midaz_reconciliation_full with real Airflow (airflow dags test) ...",
                  flush=True)
            run = dags_test("midaz_reconciliation_full", logical, afenv, conf={"scope": "full"})
    except Exception as exc:  # the demo could not do its job
        from reconciliation.sanitize import describe_error

        print(f"[demo] failed: {describe_error(exc)}", file=sys.stderr)
        return 2
    if run.report is None:
        print("[demo] the DAG run wrote no report; its log tail:\n" + run.log_tail, file=sys.stderr)
        return 1
    report = run.report
    print()
    print(summary_table(report))
    print()
    paths = report.get("paths") or {}
    print(f"verdict: {report['status'].upper()}  (DAG run took {run.seconds:.0f}s; "
          f"the run is marked failed when violations are found — that is the point of the demo)")
    print(f"report:  {paths.get('html')}")
    print(f"json:    {paths.get('json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
