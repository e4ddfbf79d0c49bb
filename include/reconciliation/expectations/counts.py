"""Great Expectations suite of the counts check (reference §6.8).

The counts are aggregated in each store (SQL COUNT / GROUP BY, Mongo document counts, Redis SCAN /
ZCARD / HLEN); the cross-store invariants are judged by one DataFrame suite over the comparison rows the
check builds. Each row carries one classification column (None = not this rule):
- `ledger_accounts`: live accounts vs live 'default' balances of one (organization, ledger), after grace:
  ok | in_flight | live_accounts_default_balances_mismatch
- `metadata_rows`: documents of one Mongo collection vs rows of its PostgreSQL table:
  ok | metadata_exceeds_rows
- `row_count`: rows of one PostgreSQL table vs the previous run: ok | row_count_decreased
A value outside the accepted set is the violation `kind` itself.
"""

from __future__ import annotations

from typing import Any

ACCEPTED: dict[str, tuple[str, ...]] = {
    "ledger_accounts": ("ok", "in_flight"),
    "metadata_rows": ("ok",),
    "row_count": ("ok",),
}
COLUMNS = tuple(ACCEPTED)


def counts_suite(name: str = "counts_invariants") -> Any:
    """The suite judging the comparison rows (one validation per run: the frame is small)."""
    import great_expectations.expectations as gxe

    from reconciliation.checks.ge import FrameSuite

    descriptions = {
        "ledger_accounts": "live accounts = live 'default' balances per (organization, ledger), after grace",
        "metadata_rows": "documents per Mongo collection <= rows of the matching PostgreSQL table",
        "row_count": "PostgreSQL row counts never decrease between runs (no hard deletes)",
    }
    return FrameSuite(
        name,
        [
            gxe.ExpectColumnValuesToBeInSet(
                column=c, value_set=list(ACCEPTED[c]), meta={"kind": c}, description=descriptions[c]
            )
            for c in COLUMNS
        ],
    )
