"""Great Expectations suites of the redis_sync check (reference §6.5, DESIGN §7).

Invariants judged on DataFrames of streamed Redis keys (one frame per 50k keys, two class columns computed
in Python by `checks/redis_sync.classify_key`: versus PostgreSQL, and versus the operation trail):
- every balance key parses (`redis_key_unparseable`) and holds balance JSON (`redis_value_unparseable`);
- it names a live PostgreSQL balance of the same identity (`redis_balance_unknown`; a soft-deleted one is
  the warning `redis_key_for_deleted_balance`);
- Redis version >= PostgreSQL version (`redis_version_behind`); at equal versions the amounts agree
  (`redis_amount_divergent`);
- a key ahead of PostgreSQL is in flight (schedule entry, sync lock, or written within the soft grace),
  otherwise `redis_ahead_expiring` (R1, TTL < 600 s, unscheduled) or `redis_ahead_unscheduled`;
- its amounts equal its operation high-water mark (version >= it at R1, = at R2 after the gap fix), unless a
  backup-queue entry younger than the hard grace names the balance (`redis_operation_mismatch`).
Schedule hygiene (§6.5 step 5), on frames of schedule members:
- every member's key exists (`schedule_member_leaked`, warning);
- no member is overdue without a lock (R1 rule: due score < now − 600 s) or, in the v2 ZSET, older than
  the soft grace (`schedule_worker_stuck`).
Cold balances (§6.5 step 6) are the SQL invariant `sql/common/redis_sync/transaction__lost_flush.sql`,
run through the GE SqlSuite.
"""

from __future__ import annotations

from typing import Any

KEY_COLUMN = "classification"
KEY_ACCEPTABLE = ("in_sync", "in_flight", "vanished")
KEY_KINDS = (
    "redis_key_unparseable",
    "redis_value_unparseable",
    "redis_balance_unknown",
    "redis_key_for_deleted_balance",
    "redis_version_behind",
    "redis_amount_divergent",
    "redis_ahead_expiring",
    "redis_ahead_unscheduled",
)
OP_COLUMN = "operation_classification"
OP_ACCEPTABLE = ("op_match", "op_in_flight", "no_operations", "not_applicable")
OP_KINDS = ("redis_operation_mismatch",)
SCHEDULE_COLUMN = "schedule_class"
SCHEDULE_ACCEPTABLE = ("ok",)
SCHEDULE_KINDS = ("schedule_member_leaked", "schedule_worker_stuck")


def key_expectations() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeInSet(
            column=KEY_COLUMN,
            value_set=list(KEY_ACCEPTABLE),
            description="Each Redis balance key parses, names its live PostgreSQL balance, and is not behind, "
            "divergent or unsyncably ahead of it (§6.5 step 4)",
            meta={"kind": "redis_vs_postgres", "unexpected_kinds": list(KEY_KINDS)},
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=OP_COLUMN,
            value_set=list(OP_ACCEPTABLE),
            description="Each Redis balance equals its operation high-water mark unless a young backup-queue "
            "entry names it (§6.5 step 4, DESIGN §7)",
            meta={"kind": "redis_vs_operations", "unexpected_kinds": list(OP_KINDS)},
        ),
    ]


def schedule_expectations() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeInSet(
            column=SCHEDULE_COLUMN,
            value_set=list(SCHEDULE_ACCEPTABLE),
            description="Each sync schedule member names a live key and is not overdue (§6.5 step 5)",
            meta={"kind": "schedule_member", "unexpected_kinds": list(SCHEDULE_KINDS)},
        )
    ]


def key_suite() -> Any:
    from reconciliation.checks.ge import FrameSuite

    return FrameSuite("redis_sync_keys", key_expectations())


def schedule_suite() -> Any:
    from reconciliation.checks.ge import FrameSuite

    return FrameSuite("redis_sync_schedule", schedule_expectations())
