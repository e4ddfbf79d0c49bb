"""Great Expectations suite of the settlement check (reference §6.6).

Invariants:
- every backup-queue entry is younger than the hard grace (`stuck_backup_entry` otherwise);
- every backup-queue entry has an age: a non-zero `ttl` or a UUIDv7 transaction id
  (`backup_entry_age_unknown`, a warning, otherwise; DESIGN §7);
- R2: `transaction_backup_quarantine` is empty (SQL file
  `sql/r2/settlement/transaction__quarantined_transaction.sql`, run by base.py's SqlSuite).

The check computes each entry's class in Python; GE's ExpectColumnValuesToBeInSet over the acceptable class
returns the unexpected rows, which become violations of the kind named by their class.
"""

from __future__ import annotations

from typing import Any

ENTRY_COLUMN = "entry_class"
ENTRY_ACCEPTABLE = ("in_flight",)
ENTRY_KINDS = ("stuck_backup_entry", "backup_entry_age_unknown")


def expectations() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeInSet(
            column=ENTRY_COLUMN,
            value_set=list(ENTRY_ACCEPTABLE),
            description="Every backup-queue entry is dated and younger than the hard grace (§6.6, DESIGN §7)",
            meta={"kind": "backup_entry", "unexpected_kinds": list(ENTRY_KINDS)},
        )
    ]


def entry_suite() -> Any:
    """The DataFrame suite judging one frame of backup-queue entries."""
    from reconciliation.checks.ge import FrameSuite

    return FrameSuite("settlement_backup_entries", expectations())
