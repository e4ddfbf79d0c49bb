"""Great Expectations suites of the referential check (reference §6.4).

Same-database rules are SQL invariants (sql/{common,r1,r2}/referential/<db>__<kind>.sql), run as one
SqlSuite per database. Cross-database rules cannot be joined in PostgreSQL: the check streams extracts
of both databases, classifies each judged row in Python, and lets the DataFrame suites below judge the
classification columns chunk by chunk. A value outside the expected set is the violation `kind` itself.

Columns (None = the rule does not apply to the row; GE ignores missing values):
- `balance_account` (rule 1): ok | in_flight | skipped | balance_account_missing | balance_account_mismatch
- `balance_account_live` (rule 1): ok | balance_account_deleted
- `default_balance` (rule 2): ok | in_flight | account_default_balance_missing | account_default_balance_duplicate
- `operation_account` (rule 5): ok | in_flight | skipped | operation_account_mismatch
- `ledger_ref` (rule 3): ok | unknown_ledger
- `transaction_asset` (rule 4): ok | transaction_asset_deleted | transaction_asset_unknown
- `asset_rate_code` (rule 4): ok | in_flight | skipped | asset_rate_asset_unknown
"""

from __future__ import annotations

from typing import Any

# What each classification column may hold without being a finding.
ACCEPTED: dict[str, tuple[str, ...]] = {
    "balance_account": ("ok", "in_flight", "skipped"),
    "balance_account_live": ("ok",),
    "default_balance": ("ok", "in_flight"),
    "operation_account": ("ok", "in_flight", "skipped"),
}
REF_ACCEPTED: dict[str, tuple[str, ...]] = {
    "ledger_ref": ("ok",),
    "transaction_asset": ("ok",),
    "asset_rate_code": ("ok", "in_flight", "skipped"),
}
ACCOUNT_JOIN_COLUMNS = tuple(ACCEPTED)
REF_COLUMNS = tuple(REF_ACCEPTED)

# The SQL invariants of the check, by database (documentation; the files are the source of truth).
SQL_INVARIANTS = {
    "onboarding": (
        "account_ledger_org_mismatch",
        "account_parent_mismatch",
        "account_portfolio_mismatch",
        "account_segment_mismatch",
        "account_asset_missing",
        "asset_without_external_account",
        "live_child_of_deleted_parent",
        "account_type_unknown",
    ),
    "transaction": ("transaction_route_missing", "operation_route_missing"),
}


def _in_set(column: str, accepted: tuple[str, ...], description: str) -> Any:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeInSet(
        column=column, value_set=list(accepted), meta={"kind": column}, description=description
    )


def account_join_suite(name: str = "referential_account_join") -> Any:
    """Rules 1, 2 and 5: balances and operations against the onboarding accounts (one frame per chunk)."""
    from reconciliation.checks.ge import FrameSuite

    return FrameSuite(
        name,
        [
            _in_set("balance_account", ACCEPTED["balance_account"],
                    "every live balance has its account, with the same org, ledger, alias, asset and type"),
            _in_set("balance_account_live", ACCEPTED["balance_account_live"],
                    "the account of a live balance is live (R1: a warning, R2: an error)"),
            _in_set("default_balance", ACCEPTED["default_balance"],
                    "every live account has exactly one live 'default' balance"),
            _in_set("operation_account", ACCEPTED["operation_account"],
                    "every operation's account exists with the same org, ledger and alias"),
        ],
    )


def reference_suite(name: str = "referential_refs") -> Any:
    """Rules 3 and 4: ledger and asset references of the transaction-database rows."""
    from reconciliation.checks.ge import FrameSuite

    return FrameSuite(
        name,
        [
            _in_set("ledger_ref", REF_ACCEPTED["ledger_ref"],
                    "every row references an existing ledger owned by its organization"),
            _in_set("transaction_asset", REF_ACCEPTED["transaction_asset"],
                    "every transaction's asset_code is a live asset of its ledger"),
            _in_set("asset_rate_code", REF_ACCEPTED["asset_rate_code"],
                    "asset_rate from/to are asset codes of its ledger"),
        ],
    )
