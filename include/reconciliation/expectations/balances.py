"""Great Expectations suites of the balances check (reference §6.1 A–G).

Two kinds of suite:

* SQL invariants (A–E, G). Each `sql/{common,r1,r2}/balances/<db>__<kind>.sql` file is a query returning
  the violating rows of one invariant; a revision folder's file replaces the common one of the same name.
  They run as one GE `SqlSuite` per database (ExpectNoViolatingRows: one capped pass, exact count).
  Besides the usual `CheckContext.sql_params()`, these files use parameters the check computes:
    :redis_ahead       balance ids whose Redis key is ahead of PostgreSQL (in flight for 6.1-A/B), as one
                       comma-separated text (`string_to_array(:redis_ahead, ',')::uuid[]`: one literal, folded
                       to a constant array and hashed by the planner, cheap even for many ids)
    :young_id_lower    smallest UUIDv7 written within the soft grace (young = id >= this, < :future_id_lower)
    :future_id_lower   smallest UUIDv7 a day after `now`: ids beyond it carry no usable write time
                       (non-v7 ids, clock skew), so they are never taken as young or post-fix
    :gap_fix_id_lower  smallest UUIDv7 written on the version-gap fix date (DESIGN §7)
  Writing a young / post-fix test as a primary-key comparison keeps full scans free of per-row UUID text
  decoding (the uuidv7_time() expression costs more than the scan itself at 10M rows).

* Zero sum (F). The effective net per (organization, ledger, asset) is computed by the check from a
  PostgreSQL GROUP BY plus the Redis overlay; a frame of groups with a `verdict` column is judged by
  `zero_sum_suite()`.
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

CHECK = "balances"

# ---- 6.1-F verdicts (the judged column of the zero-sum frame) ----
NET_ZERO = "zero"  # effective net is exactly zero
NET_IN_FLIGHT = "in_flight"  # non-zero on the first read, but it moved on a confirming re-read: a read race
NET_NOT_ZERO = "not_zero"  # non-zero on two consecutive reads with the same value: money appeared or vanished
ZERO_SUM_ALLOWED = (NET_ZERO, NET_IN_FLIGHT)


@dataclass(frozen=True)
class Invariant:
    """One invariant of the check: its kind, the form of reference §6.1 it implements, what it asserts."""

    kind: str
    form: str
    description: str


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("balance_last_operation_mismatch", "A", "a live balance equals the after-values of its last operation"),
    Invariant("balance_replay_mismatch", "B", "a live balance equals the replay of all its operations from zero"),
    Invariant("operation_arithmetic_invalid", "C", "each operation's before/after values follow type and amount"),
    Invariant("version_chain_broken", "D", "no repeated or overlapping versions, amounts continuous per balance"),
    Invariant("version_gap", "D", "R2: no version gaps between operations written after the gap fix"),
    Invariant("balance_sign_invalid", "E", "non-external balances >= 0; externals <= 0 (by direction), no holds"),
    Invariant("deleted_balance_not_zero", "E", "a soft-deleted balance holds nothing"),
    Invariant("ledger_not_zero_sum", "F", "the effective balances of (organization, ledger, asset) sum to zero"),
    Invariant("duplicate_balance", "G", "one live balance per (organization, ledger, alias, key)"),
    Invariant("duplicate_account_alias", "G", "one live account per (organization, ledger, alias)"),
    Invariant("duplicate_asset_code", "G", "one live asset per (organization, ledger, code)"),
)
assert all(BY_KIND[i.kind].check == CHECK for i in INVARIANTS)


def sql_params(ctx: CheckContext, redis_ahead: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The context's SQL parameters plus the ones the balances SQL files need (module docstring)."""
    params = ctx.sql_params()
    window = ctx.window
    params.update(
        redis_ahead=",".join(sorted(redis_ahead)),
        young_id_lower=uuidv7_lower_bound(window.settled_before),
        future_id_lower=uuidv7_lower_bound(window.now + timedelta(days=1)),
        gap_fix_id_lower=uuidv7_lower_bound(params["gap_fix_at"]),
    )
    return params


def sql_invariants(ctx: CheckContext, db: str, params: dict[str, Any]) -> tuple[list[SqlInvariant], list[str]]:
    """(invariants rendered with `params`, raw metric queries) of one database for this revision."""
    from reconciliation.checks.ge import SqlInvariant
    from reconciliation.stores.postgres import render

    invariants: list[SqlInvariant] = []
    metrics: list[str] = []
    for stem, path in ctx.sql_files(CHECK, db).items():
        parts = stem.split("__")
        if len(parts) >= 2 and parts[1] == "metrics":
            metrics.append(path.read_text())
            continue
        sql = render(path.read_text(), params)
        kind = parts[1]
        if kind not in BY_KIND or BY_KIND[kind].check != CHECK:
            raise ValueError(f"{path.name}: kind {kind!r} is not a balances kind in catalog.py")
        invariants.append(SqlInvariant(kind=stem, sql=sql, description=_describe(kind)))
    return invariants, metrics


def sql_suite(ctx: CheckContext, db: str, params: dict[str, Any]) -> tuple[Any, list[str]]:
    """The GE SqlSuite of one database (None when the revision has no invariant there) and its metric SQL."""
    from reconciliation.checks.ge import SqlSuite
    from reconciliation.stores.postgres import read_only_uri

    invariants, metrics = sql_invariants(ctx, db, params)
    if not invariants:
        return None, metrics
    uri = without_jit(read_only_uri(ctx.conn_id(db)))
    return SqlSuite(f"{CHECK}_{db}", uri, invariants, ctx.params.max_samples), metrics


def without_jit(uri: str) -> str:
    """Sessions of this suite run with jit=off. Why: the scope branches a constant guard prunes at run time
    (`WHERE :full_scope`, `WHERE NOT :full_scope`) still count towards jit_above_cost, so PostgreSQL would
    compile (seconds per query, measured) plans whose live part is a scan it runs faster interpreted."""
    from urllib.parse import quote

    if "options=" in uri:  # read_only_uri() ends with its options parameter: extend it
        return uri + quote(" -c jit=off")
    return uri + ("&" if "?" in uri else "?") + "options=" + quote("-c jit=off")


def zero_sum_suite() -> FrameSuite:
    """6.1-F: every group's verdict is zero or in flight; a `not_zero` row is a ledger_not_zero_sum finding."""
    import great_expectations.expectations as gxe

    from reconciliation.checks.ge import FrameSuite

    return FrameSuite(
        f"{CHECK}_zero_sum",
        [
            gxe.ExpectColumnValuesToBeInSet(
                column="verdict",
                value_set=list(ZERO_SUM_ALLOWED),
                description=_describe("ledger_not_zero_sum"),
                meta={"kind": "ledger_not_zero_sum"},
            )
        ],
    )


def _describe(kind: str) -> str:
    for inv in INVARIANTS:
        if inv.kind == kind:
            return f"6.1-{inv.form}: {inv.description}"
    return kind
