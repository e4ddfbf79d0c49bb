"""Check 6 (reference §6.6): is every recent transaction settled, in flight or stuck?

Midaz accepts a transaction in Redis first (Lua + backup-queue entry) and makes PostgreSQL consistent later
(BTO write, backup-queue recovery after ≥ 30 min, balance-sync worker). This check classifies, from Midaz's
own evidence, each recent transaction and each balance it touched:

- settled: the row has a final status (APPROVED / CANCELED / NOTED; a PENDING row with its body is a *hold*,
  settled as such), it has operations, every balance it touched has `pg.version ≥` the version of its
  operation there, and no backup-queue entry names it;
- in flight: unsettled but younger than the soft grace (+ replica lag, `ctx.extra["replica_lag_seconds"]`),
  or with evidence younger than the hard grace: a backup-queue entry, a `pending_transaction` lock, a sync
  schedule member or sync lock for one of its lagging balances;
- stuck: anything else, and anything still unsettled past the hard grace.

Violations (the rest is metrics; double entry, orphans and lost flushes have their own checks):
- `stuck_backup_entry`: a backup-queue entry older than the hard grace (entity = the hash field);
- `backup_entry_age_unknown` (warning): an entry with neither a `ttl` nor a UUIDv7 transaction id (DESIGN §7);
- `quarantined_transaction` (R2): every `transaction_backup_quarantine` row (entity = transaction_id).

Entry age (DESIGN §7): now − `ttl` (the enqueue time) when it is non-zero; else the UUIDv7 write time of the
referenced transaction (R1 commit/cancel entries written by Lua have no `ttl`).

WINDOW. Window scope: transactions written in [start, end) by UUIDv7 id, plus those that gained an operation
in the window (commit/cancel of an older pending: operation ids are UUIDv7 too), both index-backed PK ranges;
backup-queue entries whose age basis (ttl or transaction time) lies in [start, end) — entries without any time
are reported in every run, they cannot be placed; quarantine rows whose transaction was written in
[start, end). Full scope: transactions of the last hard-grace period (older ones are settled or stuck by
definition and judged by the other checks), every backup-queue entry and every quarantine row. A windowed run
sees a stuck entry only when it runs at least the hard grace after the entry's write: the full-scope run is
the backstop.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from reconciliation import config
from reconciliation.checks.base import CheckContext, make_violation
from reconciliation.result import CheckResult
from reconciliation.stores import redis as rstore
from reconciliation.window import uuidv7_lower_bound, uuidv7_time

CHECK = "settlement"
FINAL_STATUSES = frozenset({"APPROVED", "CANCELED", "NOTED"})
CHUNK = 5_000  # transactions per streamed chunk (one Redis pipeline of evidence per chunk)
FRAME_ENTRIES = 50_000  # backup-queue entries per GE frame

_GO_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?$"
)


# ---------------------------------------------------------------------------------------------------------
# Backup-queue entries (reference §4.4); shared with redis_sync, which uses them as in-flight evidence.
# ---------------------------------------------------------------------------------------------------------


def parse_go_time(value: Any) -> datetime | None:
    """Go's time.Time JSON (RFC 3339, up to ns) or a Unix number; None for Go's zero time or garbage."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if value <= 0:
            return None
        seconds = value / 1000.0 if value > 1e11 else float(value)  # ms or s since the epoch
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    m = _GO_TIME.match(value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, frac, tz = m.groups()
    if int(year) <= 1:  # 0001-01-01T00:00:00Z is Go's zero time: "no ttl"
        return None
    micro = int((frac or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if tz and tz not in ("Z", "z"):
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    try:
        naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    except ValueError:
        return None
    return (naive - offset).replace(tzinfo=UTC)


def _uuid_text(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value))).lower()
    except (ValueError, TypeError, AttributeError):
        return None


def alias_identity(org: str, ledger: str, alias_text: Any, key_text: Any = None) -> str | None:
    """`org:ledger:alias#key` from the alias forms Midaz writes into entries: `<i>#<alias>#<key>`
    (ConcatAlias, Lua snapshots), `<alias>#<key>`, or a plain alias with a separate key (default 'default')."""
    if not isinstance(alias_text, str) or not alias_text:
        return None
    parts = alias_text.split("#")
    key = key_text if isinstance(key_text, str) and key_text else None
    if len(parts) >= 3 and parts[0].isdigit():
        alias, key = parts[1], "#".join(parts[2:]) or key
    elif len(parts) == 2:
        if parts[0].isdigit():
            alias = parts[1]
        else:
            alias, key = parts[0], parts[1] or key
    elif len(parts) == 1:
        alias = parts[0]
    else:
        return None
    if not alias:
        return None
    return f"{org}:{ledger}:{alias}#{key or 'default'}"


@dataclass
class BackupEntry:
    """One `backup_queue:{transactions}` field, reduced to what the checks judge."""

    field: str
    organization_id: str | None
    ledger_id: str | None
    transaction_id: str | None
    written_at: datetime | None  # the age basis (ttl, else the transaction's UUIDv7 time)
    age_source: str | None  # "ttl" | "transaction_id" | None
    age_seconds: float | None
    status: str | None = None
    has_validate: bool = False
    parse_error: str | None = None
    balance_ids: set[str] = field(default_factory=set)
    identities: set[str] = field(default_factory=set)  # org:ledger:alias#key


def _lower_keys(obj: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items()} if isinstance(obj, dict) else {}


def parse_backup_entry(field_name: str, raw: bytes | str | None, now: datetime, *, names: bool = True) -> BackupEntry:
    """Parse one backup-queue field and value; never raises (bad input is judged, not crashed on).
    `names`: also collect the balances the entry names (redis_sync's in-flight evidence)."""
    parsed_field = rstore.parse_backup_field(field_name)
    org, ledger, tx = parsed_field if parsed_field else (None, None, None)
    obj: dict[str, Any] = {}
    error = None
    try:
        loaded = orjson.loads(raw) if raw is not None else None
        if isinstance(loaded, dict):
            obj = _lower_keys(loaded)
        else:
            error = "value is not a JSON object"
    except orjson.JSONDecodeError:
        error = "value is not JSON"
    org = org or _uuid_text(obj.get("organization_id"))
    ledger = ledger or _uuid_text(obj.get("ledger_id"))
    tx = tx or _uuid_text(obj.get("transaction_id"))
    written_at, source = parse_go_time(obj.get("ttl")), "ttl"
    if written_at is None and tx is not None:
        written_at, source = uuidv7_time(tx), "transaction_id"
    if written_at is None:
        source = None
    age = max(0.0, (now - written_at).total_seconds()) if written_at is not None else None
    status = obj.get("transaction_status")
    entry = BackupEntry(
        field=field_name,
        organization_id=org,
        ledger_id=ledger,
        transaction_id=tx,
        written_at=written_at,
        age_source=source,
        age_seconds=age,
        status=status if isinstance(status, str) else None,
        has_validate=isinstance(obj.get("validate"), dict),
        parse_error=error,
    )
    if names and org and ledger:
        _collect_names(entry, obj, org, ledger)
    return entry


def _collect_names(entry: BackupEntry, obj: dict[str, Any], org: str, ledger: str) -> None:
    """Balances an entry names: its Lua/Go snapshots (ID, Alias, Key), R2 operations, the validate block."""
    for list_key in ("balances", "balancesafter", "operations"):
        items = obj.get(list_key)
        if not isinstance(items, list):
            continue
        for item in items:
            low = _lower_keys(item)
            if not low:
                continue
            bid = _uuid_text(low.get("id") if list_key != "operations" else low.get("balanceid", low.get("balance_id")))
            if bid:
                entry.balance_ids.add(bid)
            alias = low.get("alias", low.get("accountalias", low.get("account_alias")))
            key = low.get("key", low.get("balancekey", low.get("balance_key")))
            ident = alias_identity(org, ledger, alias, key)
            if ident:
                entry.identities.add(ident)
    # validate (lib-commons Responses): `aliases` = sources ++ destinations, and the from/to maps are keyed by
    # the same aliases, so those two carry every leg.
    validate = _lower_keys(obj.get("validate"))
    for side in ("from", "to", "aliases"):
        legs = validate.get(side)
        if isinstance(legs, (dict, list)):
            for alias in legs:  # dict: keys are the aliases; list: the aliases themselves
                ident = alias_identity(org, ledger, alias)
                if ident:
                    entry.identities.add(ident)


def backup_queue_keys(client: Any) -> list[str]:
    """The plain backup queue plus tenant-prefixed ones (R2 multi-tenant, config ENV_REDIS_TENANTS)."""
    import os

    keys = [rstore.BACKUP_QUEUE]
    tenants = os.environ.get(config.ENV_REDIS_TENANTS, "")
    if tenants.strip() == "*":
        for batch in rstore.scan_keys(client, "tenant:*:" + rstore.BACKUP_QUEUE):
            keys.extend(sorted(batch))
    elif tenants.strip():
        keys += [f"tenant:{t.strip()}:{rstore.BACKUP_QUEUE}" for t in tenants.split(",") if t.strip()]
    return keys


def key_has_type(client: Any, key: str, expected: str) -> bool:
    """True when `key` is of the Redis type Midaz gives it (or absent): a key of another type is bad input to
    skip (and name in the metrics), not a reason to crash the check."""
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    return kind in (expected, "none")


def iter_backup_entries(
    client: Any, now: datetime, count: int = 1000, *, names: bool = True, skipped: list[str] | None = None
) -> Iterator[BackupEntry]:
    """HSCAN every backup queue once, in batches (never HGETALL: the hash can be large when degraded).
    Queues that are not hashes are left out and appended to `skipped`."""
    for key in backup_queue_keys(client):
        if not key_has_type(client, key, "hash"):
            if skipped is not None:
                skipped.append(key)
            continue
        cursor = 0
        while True:
            cursor, batch = client.hscan(key, cursor=cursor, count=count)
            for f, v in batch.items():
                name = f.decode() if isinstance(f, bytes) else str(f)
                yield parse_backup_entry(name, v, now, names=names)
            if int(cursor) == 0:
                break


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------------------


def classify_entry(entry: BackupEntry, hard_s: float) -> str:
    """stuck_backup_entry | backup_entry_age_unknown | in_flight (the suite's acceptable class)."""
    if entry.age_seconds is None:
        return "backup_entry_age_unknown"
    if entry.age_seconds >= hard_s:
        return "stuck_backup_entry"
    return "in_flight"


def entry_in_window(entry: BackupEntry, ctx: CheckContext) -> bool:
    """Window scope judges the entries whose age basis lies in [start, end); undated ones always."""
    if ctx.window.is_full or entry.written_at is None:
        return True
    return ctx.window.start <= entry.written_at < ctx.window.end


@dataclass
class TxFacts:
    """One recent transaction as PostgreSQL shows it (load__recent_transactions.sql)."""

    id: str
    organization_id: str
    ledger_id: str
    status: str
    has_body: bool
    written_at: datetime
    n_ops: int
    behind_keys: list[str]  # identities of balances whose pg.version < this transaction's op version


def classify_transaction(
    tx: TxFacts,
    now: datetime,
    soft_s: float,
    hard_s: float,
    *,
    has_entry: bool,
    entry_age: float | None,
    pending_lock: bool,
    balance_evidence: bool,
) -> str:
    """held | settled | in_flight | stuck for one transaction (reference §6.6).

    A backup-queue entry decides on its own (settled condition 4): in flight until the hard grace, stuck after
    it. Otherwise a complete row is settled (a PENDING row with its body: a hold); an incomplete one is in
    flight within the soft grace, or with evidence (pending lock, a lagging balance's schedule/lock) within the
    hard grace, and stuck otherwise."""
    age = max(0.0, (now - tx.written_at).total_seconds())
    hold = tx.status == "PENDING" and tx.has_body
    complete = (tx.status in FINAL_STATUSES or hold) and tx.n_ops > 0 and not tx.behind_keys
    if has_entry:
        return "stuck" if entry_age is not None and entry_age >= hard_s else "in_flight"
    if complete:
        if hold:
            return "in_flight" if pending_lock else "held"
        return "settled"
    if age < soft_s:
        return "in_flight"
    if age < hard_s and (pending_lock or balance_evidence):
        return "in_flight"
    return "stuck"


# ---------------------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Tally:
    counts: dict[str, int] = field(
        default_factory=lambda: {"settled": 0, "in_flight": 0, "stuck": 0, "held": 0, "age_unknown": 0}
    )
    oldest_in_flight_s: float = 0.0

    def add(self, state: str, age_s: float) -> None:
        self.counts[state] += 1
        if state == "in_flight":
            self.oldest_in_flight_s = max(self.oldest_in_flight_s, age_s)


def _soft_grace_s(ctx: CheckContext) -> float:
    lag = float(ctx.extra.get("replica_lag_seconds") or 0.0)
    return ctx.window.grace.total_seconds() + max(0.0, lag)


def _sql_params(ctx: CheckContext) -> dict[str, Any]:
    params = ctx.sql_params()
    params["settled_before"] = ctx.window.now - timedelta(seconds=_soft_grace_s(ctx))
    params["recent_lower"] = uuidv7_lower_bound(ctx.window.now - ctx.window.hard_grace)
    return params


def _lookup_evidence(client: Any, idents: list[str], txs: list[TxFacts]) -> tuple[dict[str, bool], dict[str, bool]]:
    """One pipeline: sync evidence per balance identity (key exists, and a schedule entry or a sync lock), and
    the pending_transaction lock per transaction."""
    zsets = [z for z in (rstore.SCHEDULE_R1, rstore.SCHEDULE_R2) if key_has_type(client, z, "zset")] if idents else []
    width = 2 + len(zsets)
    pipe = client.pipeline(transaction=False)
    for ident in idents:
        key = rstore.BALANCE_PREFIX + ident
        pipe.exists(key)
        pipe.exists(rstore.SYNC_LOCK_PREFIX + key)
        for zkey in zsets:
            pipe.zscore(zkey, key)
    for tx in txs:
        pipe.exists(f"{rstore.PENDING_LOCK_PREFIX}{tx.organization_id}:{tx.ledger_id}:{tx.id}")
    res = pipe.execute()
    balance = {}
    for i, ident in enumerate(idents):
        exists, lock, *scores = res[width * i : width * (i + 1)]
        balance[ident] = bool(exists) and (bool(lock) or any(sc is not None for sc in scores))
    offset = width * len(idents)
    locks = {tx.id: bool(res[offset + i]) for i, tx in enumerate(txs)}
    return balance, locks


class _TxEntry:
    """What the classification needs of a transaction's backup-queue entries (compact: the queue can be big)."""

    __slots__ = ("age", "in_window", "seen")

    def __init__(self, age: float | None, in_window: bool) -> None:
        self.age = age
        self.in_window = in_window
        self.seen = False


class _EntryJudge:
    """Backup-queue entries judged by the GE DataFrame suite one frame at a time, while HSCAN streams them."""

    def __init__(self, result: CheckResult, hard_s: float) -> None:
        self.result = result
        self.hard_s = hard_s
        self.suite: Any = None
        self.classes: list[str] = []
        self.evidence: dict[int, Any] = {}
        self.judged = 0
        self.in_flight = 0
        self.seconds = 0.0

    def add(self, entry: BackupEntry) -> None:
        cls = classify_entry(entry, self.hard_s)
        self.judged += 1
        if cls == "in_flight":
            self.in_flight += 1
        else:
            self.evidence[len(self.classes)] = _entry_violation(entry, cls, self.hard_s)
        self.classes.append(cls)
        if len(self.classes) >= FRAME_ENTRIES:
            self.flush()

    def flush(self) -> None:
        import pandas as pd

        from reconciliation.expectations.settlement import ENTRY_COLUMN, entry_suite

        if not self.classes:
            return
        t0 = time.monotonic()
        if self.suite is None:
            self.suite = entry_suite()
        for indices in self.suite.validate(pd.DataFrame({ENTRY_COLUMN: self.classes})).values():
            for i in indices:
                violation = self.evidence.get(int(i))
                if violation is None:
                    raise RuntimeError(f"{CHECK}: class {self.classes[int(i)]!r} judged unexpected without evidence")
                self.result.add(violation)
        self.classes, self.evidence = [], {}
        self.seconds += time.monotonic() - t0


def run(ctx: CheckContext) -> CheckResult:
    """Classify recent transactions and balances; report stuck/undated backup entries and quarantine rows."""
    from reconciliation.stores.postgres import read_only, render

    result = ctx.new_result(CHECK)
    t_start = time.monotonic()
    now = ctx.window.now
    soft_s, hard_s = _soft_grace_s(ctx), ctx.window.hard_grace.total_seconds()
    params = _sql_params(ctx)
    client = rstore.hook_client(ctx.redis_conn_id)
    tx_tally, bal_tally = _Tally(), _Tally()
    metrics = result.metrics
    judge = _EntryJudge(result, hard_s)

    with read_only(ctx.transaction_conn_id) as conn:
        with conn.cursor() as cur:  # PostgreSQL first: fix the snapshot before reading Redis (§6.5)
            cur.execute("SELECT 1")
        # Backup queue: one HSCAN; entries judged as they stream, a compact evidence map per transaction.
        entries: dict[str, _TxEntry] = {}
        depth, oldest_entry_s = 0, 0.0
        t0 = time.monotonic()
        wrong_type: list[str] = []
        for entry in iter_backup_entries(client, now, names=False, skipped=wrong_type):
            depth += 1
            if entry.age_seconds is not None:
                oldest_entry_s = max(oldest_entry_s, entry.age_seconds)
            in_window = entry_in_window(entry, ctx)
            if entry.transaction_id:
                prev = entries.get(entry.transaction_id)
                if prev is None:
                    entries[entry.transaction_id] = _TxEntry(entry.age_seconds, in_window)
                else:  # the oldest dated entry of a transaction decides
                    if entry.age_seconds is not None and (prev.age is None or entry.age_seconds > prev.age):
                        prev.age = entry.age_seconds
                    prev.in_window = prev.in_window or in_window
            if in_window:
                judge.add(entry)
        judge.flush()
        metrics["backup_queue_depth"] = depth
        if wrong_type:
            metrics["wrong_type_keys"] = wrong_type
        metrics["backup_queue_oldest_age_seconds"] = round(oldest_entry_s, 3)
        metrics["backup_scan_seconds"] = round(time.monotonic() - t0, 3)

        # Recent transactions: the complete ones arrive as one count, the rest streamed with their facts;
        # evidence is looked up only for the unsettled ones.
        t0 = time.monotonic()
        sql = render(ctx.load_sql(CHECK, "load__recent_transactions"), params)
        for rows in _stream(conn, sql, {"entry_ids": list(entries)}):
            summary = [r for r in rows if r[0] is None]
            for r in summary:
                tx_tally.counts["settled"] += int(r[8] or 0)
            txs = [_tx(r) for r in rows if r[0] is not None]
            candidates = [
                t for t in txs
                if t.id not in entries
                and not ((t.status in FINAL_STATUSES or (t.status == "PENDING" and t.has_body))
                         and t.n_ops > 0 and not t.behind_keys)
                and (now - t.written_at).total_seconds() >= soft_s
            ]
            holds = [t for t in txs if t.status == "PENDING" and t.id not in entries]
            idents = sorted({k for t in candidates for k in t.behind_keys})
            balance_ev, locks = ({}, {})
            if idents or candidates or holds:
                balance_ev, locks = _lookup_evidence(client, idents, candidates + holds)
            for t in txs:
                e = entries.get(t.id)
                if e is not None:
                    e.seen = True
                state = classify_transaction(
                    t, now, soft_s, hard_s,
                    has_entry=e is not None, entry_age=e.age if e else None,
                    pending_lock=locks.get(t.id, False),
                    balance_evidence=any(balance_ev.get(k, False) for k in t.behind_keys),
                )
                age = e.age if e is not None and e.age is not None else (now - t.written_at).total_seconds()
                tx_tally.add(state, max(0.0, age))
        # Transactions known only from the backup queue (no PostgreSQL row, or outside the recent set).
        for e in entries.values():
            if e.seen or not e.in_window:
                continue
            if e.age is None:
                tx_tally.add("age_unknown", 0.0)  # reported as backup_entry_age_unknown
            elif e.age >= hard_s:
                tx_tally.add("stuck", e.age)
            else:
                tx_tally.add("in_flight", e.age)
        entries.clear()
        metrics["transactions_seconds"] = round(time.monotonic() - t0, 3)

        # Balances touched by the recent transactions.
        t0 = time.monotonic()
        sql = render(ctx.load_sql(CHECK, "load__recent_balances"), params)
        for rows in _stream(conn, sql, {}):
            for r in rows:
                if r[0] is None:
                    bal_tally.counts["settled"] += int(r[5] or 0)
            behind = [r for r in rows if r[0] is not None]  # pg.version below its recent operations'
            idents = [r[1] for r in behind if (now - r[4]).total_seconds() >= soft_s]
            ev, _ = _lookup_evidence(client, idents, []) if idents else ({}, {})
            for r in behind:
                age = max(0.0, (now - r[4]).total_seconds())
                if age < soft_s or (age < hard_s and ev.get(r[1], False)):
                    bal_tally.add("in_flight", age)
                else:
                    bal_tally.add("stuck", age)
        metrics["balances_seconds"] = round(time.monotonic() - t0, 3)

    # Schedule depth (R1 ZSET; R2 v2 + the legacy one being drained).
    z1 = int(client.zcard(rstore.SCHEDULE_R1)) if key_has_type(client, rstore.SCHEDULE_R1, "zset") else 0
    z2 = int(client.zcard(rstore.SCHEDULE_R2)) if key_has_type(client, rstore.SCHEDULE_R2, "zset") else 0
    metrics["schedule_depth"] = int(z1) + int(z2)
    metrics["schedule_depth_legacy"] = int(z1)
    metrics["schedule_depth_v2"] = int(z2)
    metrics["entries_judged"] = judge.judged
    metrics["entries_in_flight"] = judge.in_flight
    metrics["ge_seconds"] = round(judge.seconds, 3)

    # Quarantine (R2): SQL invariant through the GE SQL suite.
    before = result.violations
    ctx.run_sql_invariants(CHECK, result, dbs=("transaction",))
    quarantined = result.violations - before
    tx_tally.counts["stuck"] += quarantined
    metrics["quarantined_transactions"] = quarantined

    for state, n in tx_tally.counts.items():
        metrics[f"transactions_{state}"] = n
    for state in ("settled", "in_flight", "stuck"):
        metrics[f"balances_{state}"] = bal_tally.counts[state]
    metrics["oldest_in_flight_age_seconds"] = round(
        max(tx_tally.oldest_in_flight_s, bal_tally.oldest_in_flight_s), 3
    )
    metrics["soft_grace_seconds"] = soft_s
    metrics["hard_grace_seconds"] = hard_s
    result.in_flight = tx_tally.counts["in_flight"]
    metrics["seconds"] = round(time.monotonic() - t_start, 3)
    return result.finish()


def _stream(conn: Any, sql: str, params: dict[str, Any]) -> Iterator[list[tuple]]:
    """Rows in chunks through a server-side cursor, with psycopg-bound arrays (`%(name)s`)."""
    with conn.cursor(name="recon_settlement") as cur:
        cur.itersize = CHUNK
        cur.execute(sql, params)
        while rows := cur.fetchmany(CHUNK):
            yield rows


def _tx(row: tuple) -> TxFacts:
    tid, org, ledger, status, has_body, written_at, n_ops, behind = row[:8]
    return TxFacts(str(tid), str(org), str(ledger), status, bool(has_body), written_at, int(n_ops), list(behind or []))


def _entry_violation(entry: BackupEntry, kind: str, hard_s: float) -> Any:
    return make_violation(
        CHECK,
        kind,
        entry.field,
        organization_id=entry.organization_id,
        ledger_id=entry.ledger_id,
        transaction_id=entry.transaction_id,
        details={
            "age_seconds": int(entry.age_seconds) if entry.age_seconds is not None else None,
            "age_source": entry.age_source,
            "written_at": entry.written_at.isoformat() if entry.written_at else None,
            "hard_grace_seconds": int(hard_s),
            "transaction_status": entry.status,
            "has_validate": entry.has_validate,
            "parse_error": entry.parse_error,
        },
    )
