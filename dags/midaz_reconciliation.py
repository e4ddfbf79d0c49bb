"""Prove a Midaz ledger is consistent: no money appeared, vanished or drifted between its PostgreSQL
databases, its MongoDB metadata and its Redis hot balances — and tell the operators, with evidence.

preflight ─► one task per consistency check (in parallel) ─► compile_report (+ one digest on failure)

Two DAGs from one factory: `midaz_reconciliation` judges each data interval (hourly by default), and
`midaz_reconciliation_full` judges the whole ledger (daily by default). Everything heavy is imported
inside the tasks, so parsing this file stays cheap and needs no connection.
"""

from __future__ import annotations

from reconciliation.airflow_dag import build_reconciliation_dag

windowed = build_reconciliation_dag("midaz_reconciliation", scope="window")
full = build_reconciliation_dag("midaz_reconciliation_full", scope="full")
