"""Check 3 (reference §6.3): orphans, reversals and status sanity, plus backup-queue entries whose write was
lost (§4.4, §6.6).

PostgreSQL invariants (one SQL file each, sql/common/orphans/transaction__<kind>.sql, one GE SqlSuite):
  a  transaction_without_operations   a settled live transaction has live operations
  b  operation_transaction_mismatch   a live operation's transaction is live and in its org/ledger
  c  operation_balance_missing        the operation's balance row exists (no FK on balance_id)
     operation_balance_mismatch       … and has the operation's account, asset, key, alias, org, ledger
  d  reversal_invalid                 parent live, APPROVED, not a reversal, same ledger/amount/asset; child APPROVED
     multiple_reversals               at most one live reversal per parent (entity: the parent)
     reversal_asymmetric              per account: reversal DEBIT = parent CREDIT, reversal CREDIT = parent DEBIT
  e  persisted_created_status         CREATED is never stored
     unknown_transaction_status       the status is one of the four stored ones
     pending_body_mismatch            body set iff PENDING (judged for the four stored statuses)
  f  ageing_pending_hold (WARNING)    PENDING for longer than :pending_max_age since its last write
Redis (HSCAN of backup_queue:{transactions}, and tenant queues when configured):
     backup_entry_without_transaction an entry older than the hard grace whose transaction row does not
                                      exist (a soft-deleted row exists). Entry age per DESIGN §7: now − `ttl`
                                      when non-zero, else the UUIDv7 time of the transaction id; an entry
                                      with neither is not judged here (settlement warns about it).
Revision rules: R1 and R2 share these invariants (the R2 OVERDRAFT/BLOCK/UNBLOCK rows are ignored by the
reversal symmetry like ON_HOLD/RELEASE, since the revert copies only DEBIT and CREDIT legs).

In flight (never a violation; counted in `in_flight`): a transaction or operation written within the soft
grace (updated_at or UUIDv7 id time, never created_at); a transaction named by a backup-queue entry younger
than the hard grace (Midaz may still persist or recover it: 6.3-a, reversal symmetry and body/status are then
excused); a backup-queue entry younger than the hard grace without a transaction row yet.
Redis is read first and PostgreSQL second (per HSCAN chunk, READ COMMITTED), so a write that completes
during the run can never look lost.

WINDOW scope (UUIDv7 primary-key ranges, index-backed):
  * transaction kinds (a, d, e, f): transactions written in [start, end), or with an operation written in it
    (the commit/cancel operations of an older pending transaction), judged on all their operations;
  * operation kinds (b, c): operations written in [start, end);
  * multiple_reversals: a parent whose second (or later) reversal is in the transaction set above — the
    finding starts with that reversal — with all its reversals counted;
  * backup-queue entries whose age basis (ttl, else transaction time) lies in [start, end).
FULL scope: everything. Ageing holds are found in the window of the hold's last write; the full-scope run
(or a backfill) is what surfaces holds written long before the current window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciliation.checks.base import CheckContext, add_rows, make_violation
from reconciliation.checks.settlement import BackupEntry, backup_queue_keys, parse_backup_entry
from reconciliation.expectations import orphans as suite
from reconciliation.result import CheckResult
from reconciliation.sanitize import sanitize
from reconciliation.stores import redis as rstore
from reconciliation.stores.postgres import read_only

CHECK = suite.CHECK
HSCAN_COUNT = 1000
FRAME_ROWS = 5000  # backup-queue entries judged per GE validation


def _text(value: Any) -> str:
    """A Redis field as text; bytes that are not UTF-8 are kept visible (escaped) instead of crashing."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def iter_entry_batches(client: Any, ctx: CheckContext, count: int = HSCAN_COUNT) -> Iterator[list[BackupEntry]]:
    """HSCAN every backup queue in chunks (never HGETALL) and parse each chunk; parsing never raises."""
    now = ctx.window.now
    for key in backup_queue_keys(client):
        cursor: Any = 0
        while True:
            cursor, batch = client.hscan(key, cursor=cursor, count=count)
            entries = [parse_backup_entry(_text(f), v, now) for f, v in batch.items()]
            if entries:
                yield entries
            if int(cursor) == 0:
                break


def entry_state(entry: BackupEntry, exists: bool, ctx: CheckContext) -> str:
    """Classify one backup-queue entry (expectations/orphans.py ENTRY_*); `exists`: its transaction row exists."""
    if entry.written_at is None or entry.age_seconds is None:
        return suite.ENTRY_AGE_UNKNOWN
    if not ctx.window.is_full and not (ctx.window.start <= entry.written_at < ctx.window.end):
        return suite.ENTRY_OUTSIDE_WINDOW
    if exists:
        return suite.ENTRY_HAS_TRANSACTION
    if entry.age_seconds < ctx.window.hard_grace.total_seconds():
        return suite.ENTRY_IN_FLIGHT
    return suite.ENTRY_WITHOUT_TRANSACTION


def is_evidence(entry: BackupEntry, ctx: CheckContext) -> bool:
    """An entry younger than the hard grace is in-flight evidence for its transaction (§6.6)."""
    return (
        entry.transaction_id is not None
        and entry.age_seconds is not None
        and entry.age_seconds < ctx.window.hard_grace.total_seconds()
    )


def evidence_transactions(ctx: CheckContext) -> set[str]:
    """Transaction ids named by a backup-queue entry younger than the hard grace (HSCAN only, no judging):
    the in-flight evidence other checks (double entry) excuse a half-written transaction with."""
    client = rstore.hook_client(ctx.redis_conn_id)
    return {e.transaction_id for batch in iter_entry_batches(client, ctx) for e in batch  # type: ignore[misc]
            if is_evidence(e, ctx)}


@dataclass
class _Frame:
    entries: list[BackupEntry]
    states: list[str]


def _judge_frame(frame: _Frame, holder: dict[str, Any], result: CheckResult, ctx: CheckContext) -> None:
    """Let GE judge a frame of entry states; turn the unexpected rows into violations."""
    import pandas as pd

    if not frame.entries:
        return
    if "suite" not in holder:
        holder["suite"] = suite.entry_suite()
    df = pd.DataFrame({"field": [e.field for e in frame.entries], suite.ENTRY_COLUMN: frame.states})
    unexpected = holder["suite"].validate(df).get("backup_entry_without_transaction", [])
    hard_s = ctx.window.hard_grace.total_seconds()
    for idx in unexpected:
        e = frame.entries[int(idx)]
        result.add(
            make_violation(
                CHECK,
                "backup_entry_without_transaction",
                e.field,
                organization_id=e.organization_id,
                ledger_id=e.ledger_id,
                transaction_id=e.transaction_id,
                written_at=e.written_at,
                age_seconds=round(e.age_seconds or 0.0, 3),
                age_source=e.age_source,
                hard_grace_seconds=hard_s,
                transaction_status=e.status,
                parse_error=e.parse_error,
            )
        )
    frame.entries, frame.states = [], []


def scan_backup_queue(ctx: CheckContext, result: CheckResult) -> set[str]:
    """Judge every backup-queue entry; return the transaction ids with in-flight evidence.

    Per HSCAN chunk: parse, then one `= ANY` round trip for the transaction rows (READ COMMITTED, after the
    Redis read), classify, and hand frames of states to GE."""
    client = rstore.hook_client(ctx.redis_conn_id)
    evidence: set[str] = set()
    counts: dict[str, int] = {}
    frame = _Frame([], [])
    holder: dict[str, Any] = {}
    with read_only(ctx.transaction_conn_id, repeatable=False) as conn:
        for batch in iter_entry_batches(client, ctx):
            ids = sorted({e.transaction_id for e in batch if e.transaction_id})
            existing: set[str] = set()
            if ids:
                with conn.cursor() as cur:
                    cur.execute('SELECT id::text FROM "transaction" WHERE id = ANY(%s::uuid[])', (ids,))
                    existing = {r[0] for r in cur.fetchall()}
                conn.commit()  # a fresh snapshot per chunk: each chunk is read from Redis before PostgreSQL
            for e in batch:
                state = entry_state(e, e.transaction_id in existing, ctx)
                counts[state] = counts.get(state, 0) + 1
                if is_evidence(e, ctx):
                    evidence.add(e.transaction_id)  # type: ignore[arg-type]
                frame.entries.append(e)
                frame.states.append(state)
            if len(frame.entries) >= FRAME_ROWS:
                _judge_frame(frame, holder, result, ctx)
        _judge_frame(frame, holder, result, ctx)
    result.in_flight += counts.get(suite.ENTRY_IN_FLIGHT, 0)
    result.metrics["backup_entries"] = sum(counts.values())
    result.metrics["backup_entry_states"] = counts
    result.metrics["evidence_transactions"] = len(evidence)
    return evidence


def run(ctx: CheckContext) -> CheckResult:
    """Backup queue first (Redis before PostgreSQL), then the SQL suite with the evidence it found."""
    result = ctx.new_result(CHECK)
    t0 = time.monotonic()
    evidence = scan_backup_queue(ctx, result)
    result.metrics["backup_queue_seconds"] = round(time.monotonic() - t0, 3)
    t1 = time.monotonic()
    params = suite.sql_params(ctx, sorted(evidence))
    sql_suite, metric_sql = suite.sql_suite(ctx, params)
    if sql_suite is not None:
        for stem, outcome in sql_suite.run().items():
            if outcome.exception:
                raise RuntimeError(sanitize(f"{CHECK}: {stem} could not be evaluated: {outcome.exception}"))
            add_rows(result, CHECK, stem.split("__")[1], outcome.rows, outcome.total)
    result.metrics["transaction_sql_seconds"] = round(time.monotonic() - t1, 3)
    for sql in metric_sql:
        ctx.run_metrics("transaction", sql, params, result)
    result.metrics["seconds"] = round(time.monotonic() - t0, 3)
    return result.finish()
