"""The DAG factory: the graph of DESIGN §1, the params form, schedule, retries and operator docs.

Only Airflow's SDK is imported here (parsing must stay cheap); task bodies live in `tasks.py` and import
GE, drivers and hooks when they run."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from reconciliation.catalog import CHECKS
from reconciliation.config import DEFAULT_HARD_GRACE_MINUTES

CHECK_DOCS = {
    "balances": "Every balance equals its operation trail: last operation (A), full replay (B), per-operation "
    "arithmetic (C), version chain without forks (D), sign rules (E), zero sum per ledger and asset on the "
    "effective Redis-or-PostgreSQL balance (F), no duplicate balances, aliases or asset codes (G).",
    "double_entry": "Credits equal debits per transaction for its status (APPROVED, PENDING, CANCELED, NOTED), "
    "value is conserved inside every transaction, assets and operation types are valid; at R2 also by direction.",
    "orphans": "No transaction without operations, no operation without its balance, reversals point at one "
    "APPROVED original and mirror it, statuses and PENDING bodies are sane, old PENDING holds are flagged, and "
    "no backup-queue entry outlives its lost transaction.",
    "referential": "Rows point at what they claim across both databases: balances at their accounts, accounts "
    "at one default balance, every row at an existing ledger of its organization, assets and routes exist.",
    "redis_sync": "Redis hot balances agree with PostgreSQL: never behind, never divergent at the same version, "
    "ahead only while the sync schedule or a young write explains it; cold balances match their last operation "
    "(the lost-flush signature of Midaz #2425).",
    "settlement": "Recent transactions are settled or demonstrably in flight; backup-queue entries older than the "
    "hard grace and R2 quarantine rows are failures.",
    "metadata": "Every MongoDB metadata document describes an existing PostgreSQL row, once, with a flat valid shape.",
    "counts": "Entity counts per store, ledger and status as metrics, plus the cross-store count invariants.",
}


def _doc_md(dag_id: str, scope: str) -> str:
    lines = [
        f"# {dag_id}",
        "Proves a Midaz ledger is consistent across PostgreSQL, MongoDB and Redis and alerts with evidence.",
        "",
        "**Scope:** " + ("each data interval (UUIDv7 id ranges)" if scope == "window" else "the whole ledger"),
        "",
        "Data younger than `grace_minutes` is never reported (in flight); unsettled data older than "
        "`hard_grace_minutes` is *stuck*. The report (JSON + HTML) lands in `$RECONCILIATION_REPORT_DIR/<run_id>/`; "
        "one digest goes to email and Slack when anything failed.",
        "",
        "| check | what it proves |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {CHECK_DOCS[name]} |" for name in CHECKS]
    return "\n".join(lines)


def params_form(scope: str) -> dict[str, Param]:
    """The 'Trigger DAG w/ config' form; Airflow refuses values outside these schemas with a clear message."""
    return {
        "scope": Param(scope, type="string", enum=["window", "full"],
                       description="window: only data written in the data interval; full: the whole ledger."),
        "checks": Param(list(CHECKS), type="array", items={"type": "string", "enum": list(CHECKS)},
                        uniqueItems=True, minItems=1, description="Which checks to run (default: all)."),
        "grace_minutes": Param(15, type="integer", minimum=0, maximum=10080,
                               description="Soft grace: data younger than this is in flight, never reported."),
        "hard_grace_minutes": Param(None, type=["null", "integer"], minimum=1, maximum=43200,
                                    description="Older unsettled data is stuck (an error). Empty = revision default "
                                    f"(R1 {DEFAULT_HARD_GRACE_MINUTES['r1']}, R2 {DEFAULT_HARD_GRACE_MINUTES['r2']})."),
        "schema": Param("auto", type="string", enum=["auto", "r1", "r2"],
                        description="Midaz schema revision: auto-detected from schema_migrations, or forced."),
        "max_samples": Param(1000, type="integer", minimum=1, maximum=1000000,
                             description="Violations kept as samples per check (counts stay exact)."),
        "pending_max_age_hours": Param(168, type="integer", minimum=1, maximum=87600,
                                       description="PENDING holds older than this are reported as warnings."),
    }


def build_reconciliation_dag(dag_id: str, scope: str = "window"):
    """One reconciliation DAG: preflight >> checks (parallel) >> compile_report."""
    default_cron = "@hourly" if scope == "window" else "@daily"
    cron = os.environ.get(
        "RECONCILIATION_SCHEDULE" if scope == "window" else "RECONCILIATION_FULL_SCHEDULE", default_cron
    )

    @dag(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable(cron, timezone="UTC"),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        params=params_form(scope),
        tags=["midaz", "reconciliation", scope],
        doc_md=_doc_md(dag_id, scope),
        default_args={
            "owner": "ledger-ops",
            "retries": 2,
            "retry_delay": timedelta(seconds=int(os.environ.get("RECONCILIATION_RETRY_DELAY_S", "60"))),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=10),
            "execution_timeout": timedelta(hours=2),
        },
    )
    def reconciliation():
        @task
        def preflight() -> dict:
            from reconciliation.tasks import preflight_task

            return preflight_task()

        pre = preflight()
        check_tasks = []
        for name in CHECKS:

            @task(task_id=f"check_{name}", doc_md=CHECK_DOCS[name])
            def run_one(pre: dict, check: str = name) -> dict:
                from reconciliation.tasks import check_task

                return check_task(check, pre)

            check_tasks.append(run_one(pre))

        @task(trigger_rule="all_done", retries=0)
        def compile_report() -> dict:
            from reconciliation.tasks import compile_report_task

            return compile_report_task()

        report = compile_report()
        check_tasks >> report
        pre >> report

    return reconciliation()
