"""Great Expectations suites of the orphans check (reference §6.3 a–f, reversal symmetry, §4.4 backup queue).

Two kinds of suite:

* SQL invariants. Each `sql/{common,r1,r2}/orphans/transaction__<kind>.sql` file returns the violating rows
  of one invariant (dbt style, a header comment per file); a revision folder's file replaces the common one.
  They run as one GE `SqlSuite` on the transaction database (ExpectNoViolatingRows: one capped pass with an
  exact count). Besides `CheckContext.sql_params()` the files use parameters the check computes:
    :young_id_lower    smallest UUIDv7 written at :settled_before (an id >= it is younger than the soft grace)
    :future_id_lower   smallest UUIDv7 a day after `now` (ids beyond it carry no usable write time)
    :pending_before    now − :pending_max_age (6.3-f)
    :pending_id_lower  smallest UUIDv7 written at :pending_before
    :evidence_txids    transactions named by a backup-queue entry younger than the hard grace: in-flight
                       evidence (§6.6) that excuses a half-written transaction until the hard grace
  Young tests are primary-key comparisons, so full scans decode no UUID text per row.

* Backup-queue entries (§4.4, DESIGN §7). The hash is HSCANned in chunks; each entry gets a `state`
  (`entry_suite()` judges it): an entry older than the hard grace whose transaction row does not exist is a
  lost write (`backup_entry_without_transaction`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from reconciliation.catalog import BY_KIND
from reconciliation.window import uuidv7_lower_bound

if TYPE_CHECKING:
    from reconciliation.checks.base import CheckContext
    from reconciliation.checks.ge import FrameSuite, SqlInvariant

CHECK = "orphans"

# ---- backup-queue entry states (the judged column of the entry frame) ----
ENTRY_HAS_TRANSACTION = "has_transaction"  # the transaction row exists (settlement judges whether it is stuck)
ENTRY_IN_FLIGHT = "in_flight"  # younger than the hard grace, no row yet: Midaz may still persist or recover it
ENTRY_AGE_UNKNOWN = "age_unknown"  # neither ttl nor a UUIDv7 transaction id: settlement warns, never judged here
ENTRY_OUTSIDE_WINDOW = "outside_window"  # window scope: its write time is not in [start, end)
ENTRY_WITHOUT_TRANSACTION = "without_transaction"  # older than the hard grace, no transaction row: a lost write
ENTRY_ALLOWED = (ENTRY_HAS_TRANSACTION, ENTRY_IN_FLIGHT, ENTRY_AGE_UNKNOWN, ENTRY_OUTSIDE_WINDOW)
ENTRY_COLUMN = "state"


@dataclass(frozen=True)
class Invariant:
    """One invariant of the check: its kind, the part of reference §6.3 it implements, what it asserts."""

    kind: str
    part: str
    description: str


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("transaction_without_operations", "a", "a settled live transaction has at least one live operation"),
    Invariant("operation_transaction_mismatch", "b",
              "a live operation belongs to a live transaction of its organization and ledger"),
    Invariant("operation_balance_missing", "c", "a live operation's balance_id names a balance row"),
    Invariant("operation_balance_mismatch", "c",
              "the operation's balance has its account, asset, key, alias, organization and ledger"),
    Invariant("reversal_invalid", "d",
              "a reversal's parent is a live APPROVED non-reversal of its ledger with the same amount and asset, "
              "and the reversal is APPROVED"),
    Invariant("multiple_reversals", "d", "a transaction is reversed at most once"),
    Invariant("reversal_asymmetric", "d",
              "per account, reversal DEBIT = parent CREDIT and reversal CREDIT = parent DEBIT"),
    Invariant("persisted_created_status", "e", "CREATED is never persisted"),
    Invariant("unknown_transaction_status", "e", "the status is APPROVED, PENDING, CANCELED or NOTED"),
    Invariant("pending_body_mismatch", "e", "body is set if and only if the transaction is PENDING"),
    Invariant("ageing_pending_hold", "f", "a PENDING hold is younger than the pending SLA (warning)"),
    Invariant("backup_entry_without_transaction", "§4.4",
              "a backup-queue entry older than the hard grace has a transaction row"),
)
assert all(BY_KIND[i.kind].check == CHECK for i in INVARIANTS)


def sql_params(ctx: CheckContext, evidence_txids: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The context's SQL parameters plus the ones the orphans SQL files need (module docstring)."""
    params = ctx.sql_params()
    window = ctx.window
    pending_before = window.now - ctx.params.pending_max_age
    params.update(
        young_id_lower=uuidv7_lower_bound(window.settled_before),
        future_id_lower=uuidv7_lower_bound(window.now + timedelta(days=1)),
        pending_before=pending_before,
        pending_id_lower=uuidv7_lower_bound(pending_before),
        evidence_txids=sorted(evidence_txids),
    )
    return params


def _describe(kind: str) -> str:
    for inv in INVARIANTS:
        if inv.kind == kind:
            return f"6.3-{inv.part}: {inv.description}" if len(inv.part) == 1 else f"{inv.part}: {inv.description}"
    return kind


def sql_invariants(ctx: CheckContext, params: dict[str, Any]) -> tuple[list[SqlInvariant], list[str]]:
    """(invariants rendered with `params`, raw metric queries) of the transaction database."""
    from reconciliation.checks.ge import SqlInvariant
    from reconciliation.stores.postgres import render

    invariants: list[SqlInvariant] = []
    metrics: list[str] = []
    for stem, path in ctx.sql_files(CHECK, "transaction").items():
        parts = stem.split("__")
        if len(parts) >= 2 and parts[1] == "metrics":
            metrics.append(path.read_text())
            continue
        kind = parts[1]
        if kind not in BY_KIND or BY_KIND[kind].check != CHECK:
            raise ValueError(f"{path.name}: kind {kind!r} is not an orphans kind in catalog.py")
        invariants.append(SqlInvariant(kind=stem, sql=render(path.read_text(), params), description=_describe(kind)))
    return invariants, metrics


def sql_suite(ctx: CheckContext, params: dict[str, Any]) -> tuple[Any, list[str]]:
    """The GE SqlSuite of the transaction database (None when there is no invariant) and its metric SQL."""
    from reconciliation.checks.ge import SqlSuite
    from reconciliation.stores.postgres import read_only_uri

    invariants, metrics = sql_invariants(ctx, params)
    if not invariants:
        return None, metrics
    uri = read_only_uri(ctx.transaction_conn_id)
    return SqlSuite(f"{CHECK}_transaction", uri, invariants, ctx.params.max_samples), metrics


def entry_suite() -> FrameSuite:
    """Backup-queue entries: every entry's state is acceptable; `without_transaction` is a lost write."""
    import great_expectations.expectations as gxe

    from reconciliation.checks.ge import FrameSuite

    return FrameSuite(
        f"{CHECK}_backup_queue",
        [
            gxe.ExpectColumnValuesToBeInSet(
                column=ENTRY_COLUMN,
                value_set=list(ENTRY_ALLOWED),
                description=_describe("backup_entry_without_transaction"),
                meta={"kind": "backup_entry_without_transaction"},
            )
        ],
    )
