"""Check 2 (reference §6.2): double entry per transaction — debits, credits, holds and releases match the
transaction amount for its status, value is conserved, one asset, known operation types, and
balance_affected false exactly for NOTED.

Revision rules (ctx.revision):
* R1: the status rule on Σ amount per type; conservation Σ Δ(available + on_hold) = 0 over the
  balance_affected operations (all balances credit-normal); types DEBIT CREDIT ON_HOLD RELEASE.
* R2: `unbalanced_transaction` only when a transaction breaks BOTH the direction rule (Σ debit-direction =
  Σ credit-direction amounts, OVERDRAFT companions excluded, NULL legacy directions inferred from the type)
  and the status rule, where the status rule also accepts the route-validation per-type totals (DESIGN §7:
  the pending mode is not recorded on the rows). A legacy-direction PENDING/CANCELED flow is single-sided by
  design (§6.2), so the direction rule cannot vouch for it: the status rule alone decides there. Conservation
  is signed by the balance's direction (a per-operation membership test in the debit-direction balances —
  an inlined id list when there are few, else a hashed sub-plan — keeps the scan order). Types add
  OVERDRAFT, BLOCK, UNBLOCK.
* Not here (DESIGN §7, reference §6.3): a persisted CREATED status and reversal amounts — the orphans check
  reports those; a transaction whose status is outside the four stored ones is judged by "its operations fit
  one of the status patterns". A transaction without any operation is judged like the reference's LEFT JOIN
  does (R1: its status rule fails; R2: the direction rule balances, 0 = 0) and is also orphans' 6.3-a.

Performance (DESIGN §4): ONE pass. "transaction" (primary key order) is merge-joined to its live operations
(idx_operation_organization_transaction_id order) and grouped by transaction id with a sorted GroupAggregate —
not a hash aggregate of 10M rows; per-row "any operation such that …" facts are OR-ed into one bit_or(), and
every kind is judged on that one aggregate. Rows come back as (transaction, kind) pairs with an exact
per-kind total; GE's capped expectation bounds the evidence. Measured at 10M operations (2 cores, loaded):
≈1.25× (R1) / ≈1.35–1.5× (R2) the reference's own §6.2 status query, which checks fewer rules.

In flight (never a violation; `in_flight` counts them): the transaction or any of its operations was written
within the soft grace — `updated_at`, or UUIDv7 id time as a primary-key comparison (never created_at) — or
a backup-queue entry younger than the hard grace names it (Midaz is still writing or will recover it, §6.6:
e.g. the transaction row is in, its operations are not yet).

WINDOW scope: transactions written in [start, end) by UUIDv7 id, plus transactions that gained an operation
in the window (the commit/cancel operations of an older pending transaction) — both primary-key ranges; each
such transaction is judged on ALL its operations (idx_operation_organization_transaction_id). FULL scope:
every live transaction.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from reconciliation.checks.base import CheckContext, add_rows
from reconciliation.checks.orphans import evidence_transactions
from reconciliation.expectations import double_entry as suite
from reconciliation.result import CheckResult
from reconciliation.sanitize import sanitize

CHECK = suite.CHECK


def group_rows(rows: list[dict[str, Any]]) -> dict[str, tuple[list[dict[str, Any]], int]]:
    """Split the one-pass query's rows by kind: {kind: (rows without kind/kind_total, exact total)}.

    Every sampled row carries its kind's exact total, so a kind keeps its count even when the sample cap
    cut most of its rows (the SQL interleaves kinds so each one is sampled first)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    totals: dict[str, int] = {}
    for row in rows:
        row = dict(row)
        kind = row.pop("kind")
        totals[kind] = max(totals.get(kind, 0), int(row.pop("kind_total", 0) or 0))
        grouped[kind].append(row)
    return {kind: (grouped[kind], max(totals[kind], len(grouped[kind]))) for kind in grouped}


def run(ctx: CheckContext) -> CheckResult:
    """Run the one-pass double-entry suite on the transaction database; count the in-flight transactions."""
    result = ctx.new_result(CHECK)
    t0 = time.monotonic()
    evidence = evidence_transactions(ctx)  # Redis first, PostgreSQL second
    result.metrics["evidence_transactions"] = len(evidence)
    result.metrics["backup_queue_seconds"] = round(time.monotonic() - t0, 3)
    t1 = time.monotonic()
    debit_ids = suite.list_debit_balances(ctx)
    if ctx.revision == "r2":
        result.metrics["debit_direction_balances"] = len(debit_ids) if debit_ids is not None else "many"
    params = suite.sql_params(ctx, sorted(evidence), debit_ids)
    outcomes = suite.build_suite(ctx, params).run()
    result.metrics["transaction_sql_seconds"] = round(time.monotonic() - t1, 3)
    for name, outcome in outcomes.items():
        if outcome.exception:
            raise RuntimeError(sanitize(f"{CHECK}: {name} could not be evaluated: {outcome.exception}"))
        grouped = group_rows(outcome.rows)
        for kind, (rows, total) in grouped.items():
            if kind not in suite.KINDS:
                raise ValueError(f"{CHECK}: the SQL returned kind {kind!r}, not a double_entry kind")
            add_rows(result, CHECK, kind, rows, total)
        # kinds the sample cap cut off entirely still count (every double-entry kind is an error)
        unsampled = outcome.total - sum(total for _, total in grouped.values())
        if unsampled > 0:
            result.violations += unsampled
            result.truncated = True
    t2 = time.monotonic()
    ctx.run_metrics("transaction", ctx.load_sql(CHECK, suite.IN_FLIGHT_QUERY), params, result)
    result.metrics["in_flight_seconds"] = round(time.monotonic() - t2, 3)
    result.metrics["seconds"] = round(time.monotonic() - t0, 3)
    return result.finish()
