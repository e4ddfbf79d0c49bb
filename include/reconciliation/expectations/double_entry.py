"""Great Expectations suite of the double-entry check (reference §6.2, DESIGN §7).

Why one expectation and not one per kind: every rule of §6.2 is a predicate on the same per-transaction
aggregate of `operation`, and that aggregate is the expensive part (10M operations: a GROUP BY of several
seconds). Running one query per kind would scan the table five times; the benchmark target is ≤ 1.3× a
single GROUP BY. So `sql/{r1,r2}/double_entry/transaction__per_transaction.sql` computes the aggregate
once and returns one row per (transaction, violated kind) — `kind` names the catalog kind, `kind_total`
its exact count — and GE judges it with one `ExpectNoViolatingRows` (one capped pass, exact total).

The invariants it asserts, per settled live transaction (one without any operation included):
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from reconciliation.catalog import BY_KIND
from reconciliation.window import uuidv7_lower_bound

if TYPE_CHECKING:
    from reconciliation.checks.base import CheckContext
    from reconciliation.checks.ge import SqlSuite

CHECK = "double_entry"
QUERY = "transaction__per_transaction"  # sql/{r1,r2}/double_entry/<QUERY>.sql
IN_FLIGHT_QUERY = "transaction__metrics__in_flight"


@dataclass(frozen=True)
class Invariant:
    kind: str
    r1: str
    r2: str


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "unbalanced_transaction",
        "Σ amount per type fits the status: APPROVED DEBIT = CREDIT = amount, RELEASE 0, ON_HOLD 0 or amount; "
        "NOTED DEBIT = CREDIT = amount, no ON_HOLD/RELEASE; PENDING ON_HOLD = amount only; CANCELED ON_HOLD = "
        "RELEASE = amount only; another status: one of these patterns",
        "reported only when BOTH fail: the status rule (R1 rule, or the route-validation totals PENDING DEBIT = "
        "ON_HOLD = amount; APPROVED DEBIT = CREDIT = amount, ON_HOLD = 2×amount; CANCELED DEBIT = ON_HOLD = "
        "RELEASE = CREDIT = amount) and the direction rule (Σ debit-direction = Σ credit-direction amounts, "
        "OVERDRAFT excluded, legacy NULL directions inferred; it cannot vouch for a legacy single-sided "
        "PENDING/CANCELED flow, where the status rule alone decides)",
    ),
    Invariant(
        "value_not_conserved",
        "Σ over balance_affected operations of (available_after + on_hold_after) − (available + on_hold) = 0",
        "the same, each operation signed by its balance's direction (debit-direction balances count −1)",
    ),
    Invariant("operation_asset_mismatch", "every operation's asset_code = the transaction's asset_code", "same"),
    Invariant(
        "unknown_operation_type",
        "every operation type is DEBIT, CREDIT, ON_HOLD or RELEASE",
        "… or OVERDRAFT, BLOCK, UNBLOCK",
    ),
    Invariant("balance_affected_mismatch", "balance_affected is false exactly for NOTED transactions", "same"),
)
assert all(BY_KIND[i.kind].check == CHECK for i in INVARIANTS)
KINDS: tuple[str, ...] = tuple(i.kind for i in INVARIANTS)
__doc__ = (__doc__ or "") + "".join(f"\n* {i.kind}: R1 {i.r1}; R2 {i.r2}." for i in INVARIANTS)


DEBIT_BALANCES_LISTED_MAX = 10_000  # beyond this many debit-direction balances, R2 SQL probes `balance` itself


def sql_params(
    ctx: CheckContext,
    evidence_txids: list[str] | tuple[str, ...] = (),
    debit_balance_ids: list[str] | None = None,
) -> dict[str, Any]:
    """The context's SQL parameters plus what the double-entry SQL needs:

    :young_id_lower         smallest UUIDv7 written at :settled_before — an id >= it was written within the
                            grace (a primary-key comparison instead of decoding every id's time);
    :future_id_lower        smallest UUIDv7 a day after `now` — ids beyond carry no usable write time;
    :evidence_txids         transactions named by a backup-queue entry younger than the hard grace (in flight);
    :debit_balance_ids      R2: every debit-direction balance id, when there are at most
                            DEBIT_BALANCES_LISTED_MAX (:debit_balances_listed) — a constant list PostgreSQL
                            hashes once is cheaper per operation than a sub-plan probe."""
    params = ctx.sql_params()
    params.update(
        young_id_lower=uuidv7_lower_bound(ctx.window.settled_before),
        future_id_lower=uuidv7_lower_bound(ctx.window.now + timedelta(days=1)),
        evidence_txids=sorted(evidence_txids),
        debit_balances_listed=debit_balance_ids is not None,
        debit_balance_ids=sorted(debit_balance_ids or ()),
    )
    return params


def list_debit_balances(ctx: CheckContext) -> list[str] | None:
    """R2: the debit-direction balance ids, or None when there are too many to inline (or at R1: none exist)."""
    if ctx.revision != "r2":
        return None
    from reconciliation.stores.postgres import read_only

    with read_only(ctx.transaction_conn_id) as conn, conn.cursor() as cur:
        cur.execute("SELECT id::text FROM balance WHERE direction = 'debit' LIMIT %s", (DEBIT_BALANCES_LISTED_MAX + 1,))
        ids = [r[0] for r in cur.fetchall()]
    return ids if len(ids) <= DEBIT_BALANCES_LISTED_MAX else None


def build_suite(ctx: CheckContext, params: dict[str, Any]) -> SqlSuite:
    """One GE SqlSuite on the transaction database with the one-pass invariant of this revision."""
    from reconciliation.checks.ge import SqlInvariant, SqlSuite
    from reconciliation.stores.postgres import read_only_uri, render

    sql = render(ctx.load_sql(CHECK, QUERY), params)
    description = "6.2 double entry per transaction — " + "; ".join(
        f"{i.kind}: {i.r2 if ctx.revision == 'r2' and i.r2 != 'same' else i.r1}" for i in INVARIANTS)
    invariant = SqlInvariant(kind=QUERY, sql=sql, description=description)
    return SqlSuite(f"{CHECK}_transaction", read_only_uri(ctx.transaction_conn_id), [invariant], ctx.params.max_samples)
