"""Check 5 (reference §6.5): Redis balance keys vs PostgreSQL balances and their operation trail.

Redis holds the hot, authoritative copy of each recently used balance; PostgreSQL catches up through the
BTO write (R1) and the balance-sync worker (R2: the only writer). Read order is PostgreSQL FIRST (the
REPEATABLE READ snapshot is fixed before Redis is touched), Redis second: Redis only moves forward, so the
order can never produce a false "PostgreSQL ahead".

Steps:
1. HSCAN the backup queue once into a compact map: balance id / identity → youngest entry age (DESIGN §7).
2. SCAN `balance:{transactions}:*` (+ tenant prefixes, config ENV_REDIS_TENANTS) with COUNT 1000; per batch
   ONE MGET (the next batch's overlaps this one's query) and ONE PostgreSQL query (unnest arrays: the rows
   the values' IDs name + their operation high-water mark L; a second one by identity only for keys whose
   row is missing, deleted or of another identity).
3. Classify each key (`classify_key`) twice — versus PostgreSQL and versus L. Keys not plainly in sync get
   ONE more pipeline (TTL, ZSCORE in the R1/legacy and v2 schedules, sync lock) and are judged again; a
   finding PostgreSQL may have resolved since the snapshot is confirmed on a fresh READ COMMITTED read
   (which can only clear it). GE judges both class columns per 50k-key frame.
4. Schedule hygiene: ZSCAN the schedule ZSETs; leaked members (key gone), stuck members (overdue, unlocked).
5. Cold balances: the lost-flush SQL invariant (GE SqlSuite), minus the hot keys found in step 2.

In flight (never a violation): a key ahead of PostgreSQL with a schedule entry, a sync lock, or written
within the soft grace (age = 3600 − TTL, every Lua write resets EX 3600); a key whose amounts differ from
its last operation while a backup-queue entry younger than the hard grace names its balance, or within the
soft grace. Both count in `in_flight`.

WINDOW. Redis is current state: every key and schedule member is judged in both scopes. The cold-balance
rule is restricted, in window scope, to balances whose last operation was written in [start, end) (found
through the window's UUIDv7 PK range of `operation`): each lost flush is placed at its last operation, as the
balances check places it. Full scope judges every live balance.

Multi-tenant keys (`tenant:<id>:balance:…`) are compared with the one transaction database this check is
configured with; their schedule and lock keys carry the same tenant prefix.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from reconciliation import config
from reconciliation.catalog import BY_KIND
from reconciliation.checks.base import CheckContext, add_rows, make_violation
from reconciliation.checks.settlement import iter_backup_entries, key_has_type
from reconciliation.result import CheckResult, Violation
from reconciliation.stores import redis as rstore

CHECK = "redis_sync"
BALANCE_TTL_S = 3600  # add_sub.lua / balance_atomic_operation.lua: SET … EX 3600 on every write
R1_EXPIRING_TTL_S = 600  # R1 sync is due 600 s before expiry (score = write + 3000)
R1_OVERDUE_S = 600  # R1 hygiene: due score older than this with no lock = worker stuck
SCAN_COUNT = 1000
_OP_PLAIN = ("op_match", "no_operations", "not_applicable")
_OP_ACCEPT = ("op_match", "op_in_flight", "no_operations", "not_applicable")
_CONFIRMABLE = ("redis_ahead_unscheduled", "redis_ahead_expiring")  # PostgreSQL catching up resolves them
FRAME_KEYS = 50_000  # keys per GE frame (a validation costs ~50-150 ms, nearly whatever its size)


# ---------------------------------------------------------------------------------------------------------
# Facts and classification (pure: unit-tested without stores)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class PgRow:
    """A PostgreSQL balance row for one key, with its operation high-water mark L (None = no operations)."""

    id: str
    organization_id: str
    ledger_id: str
    alias: str
    key: str
    available: Decimal
    on_hold: Decimal
    version: int
    deleted: bool
    updated_at: datetime | None = None
    op_id: str | None = None
    op_transaction_id: str | None = None
    op_available: Decimal | None = None
    op_on_hold: Decimal | None = None
    op_version: int | None = None
    op_written_at: datetime | None = None


@dataclass
class KeyFacts:
    raw: str
    parsed: rstore.BalanceKey | None
    value: rstore.BalanceValue | None = None
    value_error: str | None = None
    missing: bool = False  # GET found nothing: the key expired between SCAN and GET
    ttl: int | None = None  # None until read (only keys whose class depends on their age); −1 = no expiry
    score_legacy: float | None = None  # R1 schedule (drained as "legacy" at R2)
    score_v2: float | None = None
    locked: bool = False
    row: PgRow | None = None  # the balance row the value's ID names (live or deleted)
    live_ids: list[str] | None = None  # live rows of the key's identity (looked up only when row is unfit)
    backup_age: float | None = None  # youngest backup-queue entry naming the balance; None = none
    backup_named: bool = False

    @property
    def identity(self) -> str | None:
        p = self.parsed
        return f"{p.organization_id}:{p.ledger_id}:{p.alias}#{p.key}" if p else None

    @property
    def scheduled(self) -> bool:
        return self.score_legacy is not None or self.score_v2 is not None


def key_age(ttl: int | None) -> int | None:
    """Seconds since the last Lua write (3600 − TTL); None when unknown or the key has no expiry (TTL −1)."""
    if ttl is None or ttl < 0:
        return None
    return max(0, BALANCE_TTL_S - ttl)


def classify_key(
    f: KeyFacts,
    *,
    revision: str,
    soft_s: float,
    hard_s: float,
    gap_fix_at: datetime,
) -> tuple[str, str]:
    """Two classes of one key (reference §6.5 step 4, DESIGN §7); `key_evidence` explains a failing one.

    - versus PostgreSQL: in_sync | in_flight | vanished, or a kind of catalog.py;
    - versus its operation high-water mark L: op_match | op_in_flight | no_operations | not_applicable, or
      redis_operation_mismatch. Two invariants: a key may break both (a stale Redis value is behind
      PostgreSQL *and* behind its last operation)."""
    na = "not_applicable"
    if f.parsed is None:
        return "redis_key_unparseable", na
    if f.missing:
        return "vanished", na
    if f.value is None:
        return "redis_value_unparseable", na
    v = f.value
    p = f.parsed
    match = f.row
    if match is None or (match.organization_id, match.ledger_id, match.alias, match.key) != (
        p.organization_id, p.ledger_id, p.alias, p.key
    ):
        return "redis_balance_unknown", na
    if match.deleted:
        if any(i != v.id for i in (f.live_ids or [])):
            return "redis_balance_unknown", na  # the balance was recreated: the key names the old one
        return "redis_key_for_deleted_balance", na
    age = key_age(f.ttl)
    young = age is not None and age < soft_s
    beyond_hard = age is not None and age >= hard_s

    # Versus PostgreSQL (Redis only moves forward, PostgreSQL was read first).
    if v.version < match.version:
        pg_class = "redis_version_behind"
    elif v.version == match.version:
        same = v.available == match.available and v.on_hold == match.on_hold
        pg_class = "in_sync" if same else "redis_amount_divergent"
    elif (f.scheduled or f.locked or young) and not beyond_hard:
        pg_class = "in_flight"
    elif revision == "r1" and f.ttl is not None and 0 <= f.ttl < R1_EXPIRING_TTL_S and not f.scheduled:
        pg_class = "redis_ahead_expiring"
    else:
        pg_class = "redis_ahead_unscheduled"

    # Versus the operation high-water mark: once its operations are written, Redis equals L.
    if match.op_id is None:
        return pg_class, "no_operations"
    if v.available == match.op_available and v.on_hold == match.op_on_hold and _version_ok(f, revision, gap_fix_at):
        return pg_class, "op_match"
    pending = f.backup_named and (f.backup_age is None or f.backup_age < hard_s)
    if pending or young:
        return pg_class, "op_in_flight"
    return pg_class, "redis_operation_mismatch"


def _strict(row: PgRow, revision: str, gap_fix_at: datetime) -> bool:
    """R2 after the version-gap fix: Version = L.version_after; otherwise >= (R1 no-op increments)."""
    return revision == "r2" and row.op_written_at is not None and row.op_written_at >= gap_fix_at


def _version_ok(f: KeyFacts, revision: str, gap_fix_at: datetime) -> bool:
    row, v = f.row, f.value
    if _strict(row, revision, gap_fix_at):
        return v.version == row.op_version
    return v.version >= (row.op_version or 0)


def key_evidence(f: KeyFacts, *, revision: str, gap_fix_at: datetime) -> dict[str, Any]:
    """What an operator needs to see for a failing key (built only for violations: cost ∝ findings)."""
    ev: dict[str, Any] = {"ttl": f.ttl, "age_seconds": key_age(f.ttl)}
    if f.value is None:
        ev["reason"] = f.value_error
        return ev
    v, row = f.value, f.row
    ev.update(redis_id=v.id, redis_version=v.version, redis_available=v.available, redis_on_hold=v.on_hold,
              scheduled=f.scheduled, locked=f.locked)
    if f.live_ids is not None:
        ev["pg_live_ids"] = sorted(i for i in f.live_ids if i != v.id)
    if row is None:
        return ev
    ev.update(pg_id=row.id, pg_version=row.version, pg_available=row.available, pg_on_hold=row.on_hold,
              pg_deleted=row.deleted)
    if _key_identity(f) != _identity(row):
        ev["pg_identity_of_id"] = f"{row.organization_id}/{row.ledger_id}/{row.alias}#{row.key}"
    if row.op_id is not None:
        ev.update(
            last_operation_id=row.op_id,
            last_transaction_id=row.op_transaction_id,
            expected_available=row.op_available,
            expected_on_hold=row.op_on_hold,
            expected_version=row.op_version,
            version_rule="=" if _strict(row, revision, gap_fix_at) else ">=",
            backup_entry_age_seconds=None if f.backup_age is None else int(f.backup_age),
        )
    return ev


def classify_member(
    *, schedule: str, score: float, key_exists: bool, locked: bool, now_s: float, soft_s: float
) -> str:
    """Schedule hygiene class of one ZSET member: ok | schedule_member_leaked | schedule_worker_stuck.

    `schedule` is "due" (R1 and the legacy ZSET: score = due time, write + 3000 s) or "enqueued" (R2 v2:
    score = write time, due immediately)."""
    if not key_exists:
        return "schedule_member_leaked"
    if schedule == "due":
        return "schedule_worker_stuck" if score < now_s - R1_OVERDUE_S and not locked else "ok"
    return "schedule_worker_stuck" if now_s - score > soft_s else "ok"


# ---------------------------------------------------------------------------------------------------------
# Store access
# ---------------------------------------------------------------------------------------------------------


def ident_hash(identity: str) -> int:
    """8-byte digest of `org:ledger:alias#key`: a million hot keys in ~60 MB instead of ~200 MB of text."""
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=8).digest(), "big")


def _dedupe_hash(raw: str) -> tuple[bool, int]:
    """(is an untenanted balance key, hash): an untenanted key's hash is its identity's, shared with `hot`."""
    p = rstore.parse_balance_key(raw)
    if p is not None and not p.tenant:
        identity = f"{p.organization_id}:{p.ledger_id}:{p.alias}#{p.key}"
        if raw == rstore.BALANCE_PREFIX + identity:  # canonical (lower-case ids): one key per identity
            return True, ident_hash(identity)
    return False, ident_hash(raw)


def lock_keys(raw: str, parsed: rstore.BalanceKey | None) -> list[str]:
    """Sync-lock keys that may guard a balance key (tenant keys: prefixed lock, member with or without it)."""
    keys = [rstore.SYNC_LOCK_PREFIX + raw]
    if parsed is not None and parsed.tenant:
        bare = raw[len(parsed.tenant):]
        keys = [parsed.tenant + rstore.SYNC_LOCK_PREFIX + raw, parsed.tenant + rstore.SYNC_LOCK_PREFIX + bare]
    return keys


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def build_backup_map(
    client: Any, now: datetime, skipped: list[str] | None = None
) -> tuple[dict[str, float | None], int]:
    """name ("id:<balance>" or identity) → youngest age of an entry naming it (None = undated entry)."""
    names: dict[str, float | None] = {}
    n = 0
    for entry in iter_backup_entries(client, now, skipped=skipped):
        n += 1
        age = entry.age_seconds
        for name in [*("id:" + b for b in entry.balance_ids), *entry.identities]:
            if name in names:
                prev = names[name]
                names[name] = None if (prev is None or age is None) else min(prev, age)
            else:
                names[name] = age
    return names, n


_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def parse_value(raw: bytes | str) -> rstore.BalanceValue:
    """A balance value with its ID checked to be a UUID. Fast path for what Lua writes (PascalCase, decimal
    strings, integer Version): a million values must not cost a million generic parses; anything else goes
    through the case-insensitive parser of stores/redis.py. Raises ValueError when it is no balance."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise rstore.ValueError_(f"not JSON: {exc}") from None
    value = None
    if type(obj) is dict and "id" not in obj and "available" not in obj and "onhold" not in obj:
        bid, av, oh, ver = obj.get("ID"), obj.get("Available"), obj.get("OnHold"), obj.get("Version")
        if type(bid) is str and type(av) is str and type(oh) is str and type(ver) is int:
            try:
                available, on_hold = Decimal(av), Decimal(oh)
            except InvalidOperation:
                available = on_hold = None
            if available is not None and available.is_finite() and on_hold.is_finite():
                value = rstore.BalanceValue(
                    id=bid.lower(), available=available, on_hold=on_hold, version=ver, account_id=None,
                    asset_code=None, account_type=None, key=None, direction=None, overdraft_used=None, raw=obj,
                )
    if value is None:
        value = rstore.parse_balance_value(raw)
    if not _UUID_RE.fullmatch(value.id):
        raise rstore.ValueError_(f"ID is not a UUID: {value.id[:64]!r}")
    return value


def zmscore_supported(client: Any) -> bool:
    """ZMSCORE (Redis >= 6.2, Valkey): one command per tenant and schedule instead of one per key."""
    import redis

    try:
        client.zmscore(rstore.SCHEDULE_R1, ["-"])
        return True
    except redis.ResponseError:
        return False


def fetch_values(client: Any, keys: list[str]) -> list[KeyFacts]:
    """Phase 1 of a SCAN batch: ONE MGET. Most keys are plainly in sync and need nothing else from Redis."""
    values = client.mget(keys)
    facts = []
    for raw, value in zip(keys, values, strict=True):
        p = rstore.parse_balance_key(raw)
        f = KeyFacts(raw=raw, parsed=p)
        if value is None:
            f.missing = True  # gone since SCAN, or not a string: fetch_details tells which
        elif p is not None:
            try:
                f.value = parse_value(value)
            except ValueError as exc:
                f.value_error = str(exc)[:300]
        facts.append(f)
    return facts


def fetch_details(
    client: Any, facts: list[KeyFacts], *, zmscore: bool = True, zsets: dict[str, bool] | None = None
) -> None:
    """Phase 2, only for the keys whose class depends on them: ONE pipeline of TTL, ZSCORE in the R1/legacy
    and v2 schedules (ZMSCORE per tenant), and the sync-lock keys. A key MGET missed is either gone (TTL −2:
    it expired after SCAN, vanished) or not a string at all (another type under the prefix): unparseable."""
    if not facts:
        return
    by_tenant: dict[str, list[int]] = {}
    for i, f in enumerate(facts):
        by_tenant.setdefault(f.parsed.tenant if f.parsed else "", []).append(i)
    pipe = client.pipeline(transaction=False)
    for f in facts:
        pipe.ttl(f.raw)
        pipe.exists(*lock_keys(f.raw, f.parsed))
    zsets = {} if zsets is None else zsets  # schedule key -> is a ZSET (or absent); looked up once per run
    asked: list[tuple[list[int], str, bool]] = []
    for tenant, idx in by_tenant.items():
        members = [facts[i].raw for i in idx]
        for attr, zkey in (("score_legacy", tenant + rstore.SCHEDULE_R1), ("score_v2", tenant + rstore.SCHEDULE_R2)):
            if zkey not in zsets:
                zsets[zkey] = key_has_type(client, zkey, "zset")
            if not zsets[zkey]:
                continue  # a schedule of another type holds no entry (named in the metrics)
            asked.append((idx, attr, zmscore))
            if zmscore:
                pipe.zmscore(zkey, members)
            else:
                for m in members:
                    pipe.zscore(zkey, m)
    res = pipe.execute()
    for i, f in enumerate(facts):
        f.ttl, f.locked = int(res[2 * i]), bool(res[2 * i + 1])
        if f.ttl == -2:
            f.missing = True
        elif f.missing:
            f.missing = False
            f.value, f.value_error = None, "not a string value (another Redis type under the balance prefix)"
    pos = 2 * len(facts)
    for idx, attr, multi in asked:
        if multi:
            scores, pos = res[pos], pos + 1
        else:
            scores, pos = res[pos : pos + len(idx)], pos + len(idx)
        for i, sc in zip(idx, scores, strict=True):
            setattr(facts[i], attr, _score(sc))


def _score(z: Any) -> float | None:
    return None if z is None else float(z)


def load_pg(conn: Any, sql_by_id: str, sql_by_identity: str, facts: list[KeyFacts]) -> None:
    """At most two queries per batch (unnest arrays): rows by the values' IDs with their high-water marks,
    then, for the rare keys whose row is missing, deleted or of another identity, the identity's live rows.
    Run on the check's snapshot, and again on a fresh read to confirm a finding (see `run`)."""
    todo = [(i, f) for i, f in enumerate(facts) if f.parsed is not None and f.value is not None]
    if not todo:
        return
    for _, f in todo:
        f.row, f.live_ids = None, None
    todo.sort(key=lambda t: t[1].value.id)  # UUIDv7 order: neighbouring index pages, fewer buffer misses
    with conn.cursor() as cur:
        cur.execute(sql_by_id, {"ord": ",".join(str(i) for i, _ in todo), "rid": ",".join(f.value.id for _, f in todo)})
        for r in cur.fetchall():
            facts[r[0]].row = PgRow(
                id=r[1], organization_id=r[2], ledger_id=r[3], alias=r[4], key=r[5],
                available=r[6], on_hold=r[7], version=int(r[8]), deleted=bool(r[9]), updated_at=r[10],
                op_id=r[11], op_transaction_id=r[12], op_available=r[13], op_on_hold=r[14],
                op_version=None if r[15] is None else int(r[15]), op_written_at=r[16],
            )
        unfit = [(i, f) for i, f in todo if f.row is None or f.row.deleted or _identity(f.row) != _key_identity(f)]
        if not unfit:
            return
        for _, f in unfit:
            f.live_ids = []
        cur.execute(sql_by_identity, {
            "ord": [i for i, _ in unfit],
            "org": [f.parsed.organization_id for _, f in unfit],
            "ledger": [f.parsed.ledger_id for _, f in unfit],
            "alias": [f.parsed.alias for _, f in unfit],
            "key": [f.parsed.key for _, f in unfit],
        })
        for ord_, bid in cur.fetchall():
            facts[ord_].live_ids.append(bid)


def _identity(row: PgRow) -> tuple[str, str, str, str]:
    return (row.organization_id, row.ledger_id, row.alias, row.key)


def _key_identity(f: KeyFacts) -> tuple[str, str, str, str] | None:
    p = f.parsed
    return (p.organization_id, p.ledger_id, p.alias, p.key) if p else None


def attach_backup(facts: Iterable[KeyFacts], backup: dict[str, float | None]) -> None:
    """Youngest backup-queue entry naming each key's balance (by Redis ID or identity)."""
    if not backup:
        return
    for f in facts:
        ages = []
        names = []
        if f.value is not None:
            names.append("id:" + f.value.id)
        if f.identity:
            names.append(f.identity)
        for name in names:
            if name in backup:
                f.backup_named = True
                ages.append(backup[name])
        if f.backup_named:
            f.backup_age = None if any(a is None for a in ages) else min(a for a in ages if a is not None)


def tenant_prefixes() -> list[str]:
    """Configured tenant prefixes (ENV_REDIS_TENANTS): "" always; '*' means discover them while scanning."""
    raw = os.environ.get(config.ENV_REDIS_TENANTS, "")
    out = [""]
    if raw.strip() and raw.strip() != "*":
        out += [f"tenant:{t.strip()}:" for t in raw.split(",") if t.strip()]
    return out


# ---------------------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------------------


def _violation(kind: str, f: KeyFacts, ev: dict[str, Any]) -> Violation:
    """A key's violation; `ev` = key_evidence(f)."""
    p = f.parsed
    balance_id = f.value.id if f.value is not None else None
    return make_violation(
        CHECK, kind, f.raw,
        redis_key=f.raw,
        organization_id=p.organization_id if p else None,
        ledger_id=p.ledger_id if p else None,
        balance_id=balance_id,
        details={k: v for k, v in ev.items() if v is not None},
    )


class _KeyJudge:
    """Collects classified keys and lets the GE suite judge them one frame at a time.

    Only the classes of an acceptable key are kept until its frame is judged; a would-be violation keeps its
    evidence (a million healthy keys cost two lists of short strings, not a million evidence dicts)."""

    def __init__(self, result: CheckResult) -> None:
        from reconciliation.expectations.redis_sync import KEY_ACCEPTABLE, OP_ACCEPTABLE, key_suite

        self.result = result
        self.acceptable = frozenset(KEY_ACCEPTABLE) | frozenset(OP_ACCEPTABLE)
        self.suite = key_suite()
        self.pg_classes: list[str] = []
        self.op_classes: list[str] = []
        self.evidence: dict[tuple[int, str], Violation] = {}
        self.counts: dict[str, int] = {}
        self.seconds = 0.0
        self.frames = 0

    def add(self, f: KeyFacts, pg_class: str, op_class: str, rules: dict[str, Any]) -> None:
        row = len(self.pg_classes)
        ev: dict[str, Any] | None = None
        for cls in (pg_class, op_class):
            self.counts[cls] = self.counts.get(cls, 0) + 1
            if cls not in self.acceptable:
                if ev is None:
                    ev = key_evidence(f, revision=rules["revision"], gap_fix_at=rules["gap_fix_at"])
                self.evidence[(row, cls)] = _violation(cls, f, ev)
        if pg_class == "in_flight" or op_class == "op_in_flight":
            self.result.in_flight += 1
        self.pg_classes.append(pg_class)
        self.op_classes.append(op_class)
        if len(self.pg_classes) >= FRAME_KEYS:
            self.flush()

    def flush(self) -> None:
        import pandas as pd

        from reconciliation.expectations.redis_sync import KEY_COLUMN, OP_COLUMN

        if not self.pg_classes:
            return
        t0 = time.monotonic()
        columns = {KEY_COLUMN: self.pg_classes, OP_COLUMN: self.op_classes}
        frame = pd.DataFrame(columns)
        for column, indices in self.suite.validate(frame).items():
            values = columns[_column_of(column)]
            for i in indices:
                cls = values[int(i)]
                violation = self.evidence.get((int(i), cls))
                if violation is None:  # GE and the acceptable sets disagree: a programming error
                    raise RuntimeError(f"{CHECK}: class {cls!r} judged unexpected without evidence")
                self.result.add(violation)
        self.pg_classes, self.op_classes, self.evidence = [], [], {}
        self.frames += 1
        self.seconds += time.monotonic() - t0


def _column_of(expectation_key: str) -> str:
    from reconciliation.expectations.redis_sync import KEY_COLUMN, OP_COLUMN

    return {"redis_vs_postgres": KEY_COLUMN, "redis_vs_operations": OP_COLUMN}.get(expectation_key, expectation_key)


def _scan_keys(client: Any, ctx_metrics: dict[str, Any]) -> Iterable[list[str]]:
    patterns = rstore.balance_key_patterns(os.environ.get(config.ENV_REDIS_TENANTS))
    seen_patterns = 0
    for pattern in patterns:
        seen_patterns += 1
        yield from rstore.scan_keys(client, pattern, count=SCAN_COUNT)
    ctx_metrics["scan_patterns"] = seen_patterns


def run(ctx: CheckContext) -> CheckResult:
    """Judge every Redis balance key, the sync schedules, and the cold balances (reference §6.5)."""
    from concurrent.futures import ThreadPoolExecutor

    from reconciliation.stores.postgres import read_only

    result = ctx.new_result(CHECK)
    metrics = result.metrics
    t_start = time.monotonic()
    now = ctx.window.now
    lag = max(0.0, float(ctx.extra.get("replica_lag_seconds") or 0.0))
    soft_s = ctx.window.grace.total_seconds() + lag
    hard_s = ctx.window.hard_grace.total_seconds()
    rules = {"revision": ctx.revision, "soft_s": soft_s, "hard_s": hard_s, "gap_fix_at": ctx.sql_params()["gap_fix_at"]}
    client = rstore.hook_client(ctx.redis_conn_id)
    sql_by_id = ctx.load_sql(CHECK, "load__balances")
    sql_by_identity = ctx.load_sql(CHECK, "load__balances_by_identity")
    judge = _KeyJudge(result)
    hot: set[int] = set()  # identities of the keys found (also the SCAN dedupe set of untenanted keys)
    seen_other: set[int] = set()  # SCAN dedupe of tenant-prefixed and unparseable keys
    tenants_seen: set[str] = set(tenant_prefixes())
    timing = {"redis_wait": 0.0, "postgres": 0.0, "details": 0.0, "confirm": 0.0}
    counts = {"keys": 0, "dupes": 0, "details": 0, "confirmed_away": 0}
    zsets: dict[str, bool] = {}
    wrong_type: list[str] = []

    def fresh_batches() -> Iterable[list[str]]:
        for batch in _scan_keys(client, metrics):
            fresh = []
            for k in batch:  # SCAN may return a key twice: judge it once
                untenanted, h = _dedupe_hash(k)
                seen = hot if untenanted else seen_other
                if h in seen:
                    counts["dupes"] += 1
                    continue
                seen.add(h)
                fresh.append(k)
            if fresh:
                yield fresh

    def judge_batch(conn: Any, fresh_conn: Any, facts: list[KeyFacts]) -> None:
        t0 = time.monotonic()
        load_pg(conn, sql_by_id, sql_by_identity, facts)
        timing["postgres"] += time.monotonic() - t0
        attach_backup(facts, backup)
        classes = [classify_key(f, **rules) for f in facts]
        # Age (3600 − TTL), schedule entries and sync locks matter only to keys that are not plainly in sync:
        # read them for those keys, judge again.
        again = [i for i, c in enumerate(classes) if c[0] != "in_sync" or c[1] not in _OP_PLAIN]
        if again:
            t0 = time.monotonic()
            fetch_details(client, [facts[i] for i in again], zmscore=zmscore, zsets=zsets)
            timing["details"] += time.monotonic() - t0
            counts["details"] += len(again)
            for i in again:
                classes[i] = classify_key(facts[i], **rules)
        # A finding PostgreSQL may have resolved since the snapshot (the sync worker flushed the key, the BTO
        # wrote the operations) is confirmed on a fresh read. Confirmation only clears: Redis may have moved on
        # meanwhile, so a fresh read never creates a finding.
        confirm = [i for i in again if classes[i][0] in _CONFIRMABLE or classes[i][1] == "redis_operation_mismatch"]
        if confirm:
            t0 = time.monotonic()
            subset = [facts[i] for i in confirm]
            saved = [(f.row, f.live_ids) for f in subset]
            load_pg(fresh_conn, sql_by_id, sql_by_identity, subset)
            for i, f, (row, live) in zip(confirm, subset, saved, strict=True):
                pg_new, op_new = classify_key(f, **rules)
                pg_old, op_old = classes[i]
                pg = pg_new if pg_old in _CONFIRMABLE and pg_new in ("in_sync", "in_flight") else pg_old
                op = op_new if op_old == "redis_operation_mismatch" and op_new in _OP_ACCEPT else op_old
                if (pg, op) != (pg_old, op_old):
                    counts["confirmed_away"] += 1
                else:
                    f.row, f.live_ids = row, live  # the evidence stays the snapshot's
                classes[i] = (pg, op)
            timing["confirm"] += time.monotonic() - t0
        for f, (pg_class, op_class) in zip(facts, classes, strict=True):
            counts["keys"] += 1
            if f.parsed is not None:
                identity = f.identity
                if f.parsed.tenant or f.raw != rstore.BALANCE_PREFIX + identity:
                    hot.add(ident_hash(identity))  # canonical keys are in `hot` already (SCAN dedupe)
                tenants_seen.add(f.parsed.tenant)
            judge.add(f, pg_class, op_class, rules)

    # `fresh` is READ COMMITTED: each confirmation statement sees the rows committed before it (read-only too).
    with read_only(ctx.transaction_conn_id) as conn, read_only(ctx.transaction_conn_id, repeatable=False) as fresh:
        with conn.cursor() as cur:  # PostgreSQL FIRST: the snapshot is fixed before Redis is read
            cur.execute("SELECT 1")
        t0 = time.monotonic()
        zmscore = zmscore_supported(client)
        backup, depth = build_backup_map(client, now, wrong_type)
        metrics["backup_queue_depth"] = depth
        metrics["backup_scan_seconds"] = round(time.monotonic() - t0, 3)
        # The MGET of batch N+1 overlaps the PostgreSQL query of batch N (one reader thread).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="redis_sync_fetch") as pool:
            pending = None
            for batch in fresh_batches():
                future = pool.submit(fetch_values, client, batch)
                if pending is not None:
                    t0 = time.monotonic()
                    facts = pending.result()
                    timing["redis_wait"] += time.monotonic() - t0
                    judge_batch(conn, fresh, facts)
                pending = future
            if pending is not None:
                judge_batch(conn, fresh, pending.result())
        judge.flush()
    seen_other.clear()
    metrics.update(
        keys_scanned=counts["keys"],
        keys_scan_duplicates=counts["dupes"],
        keys_by_class=dict(sorted(judge.counts.items())),
        keys_detailed=counts["details"],
        findings_confirmed_away=counts["confirmed_away"],
        redis_wait_seconds=round(timing["redis_wait"], 3),
        redis_details_seconds=round(timing["details"], 3),
        postgres_seconds=round(timing["postgres"], 3),
        confirm_seconds=round(timing["confirm"], 3),
        ge_keys_seconds=round(judge.seconds, 3),
        ge_key_frames=judge.frames,
        soft_grace_seconds=soft_s,
        hard_grace_seconds=hard_s,
    )

    if wrong_type:
        metrics["wrong_type_keys"] = wrong_type
    _schedule_hygiene(ctx, client, result, sorted(tenants_seen), soft_s, hot)
    _cold_balances(ctx, result, hot, backup, soft_s)
    metrics["seconds"] = round(time.monotonic() - t_start, 3)
    return result.finish()


# ---- step 5: schedule hygiene ----


def _schedules(client: Any, tenants: list[str], revision: str) -> list[tuple[str, str]]:
    """(ZSET key, rule) to inspect: the R1/legacy ZSET uses the due-time rule, v2 the enqueue-time rule."""
    out = []
    for t in tenants:
        out.append((t + rstore.SCHEDULE_R1, "due"))
        out.append((t + rstore.SCHEDULE_R2, "enqueued"))
    return out


class _MemberJudge:
    """Schedule members judged by the GE DataFrame suite in 50k-member frames (R1 schedules every hot key)."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        self.suite: Any = None
        self.classes: list[str] = []
        self.evidence: dict[int, Violation] = {}
        self.reported: set[tuple[str, str]] = set()
        self.seconds = 0.0

    def add(self, cls: str, member: str, details: dict[str, Any]) -> None:
        if cls != "ok":
            p = rstore.parse_balance_key(member)
            self.evidence[len(self.classes)] = make_violation(
                CHECK, cls, member, redis_key=member, organization_id=p.organization_id if p else None,
                ledger_id=p.ledger_id if p else None, details=details,
            )
        self.classes.append(cls)
        if len(self.classes) >= FRAME_KEYS:
            self.flush()

    def flush(self) -> None:
        import pandas as pd

        from reconciliation.expectations.redis_sync import SCHEDULE_COLUMN, schedule_suite

        if not self.classes:
            return
        t0 = time.monotonic()
        if self.suite is None:
            self.suite = schedule_suite()
        for indices in self.suite.validate(pd.DataFrame({SCHEDULE_COLUMN: self.classes})).values():
            for i in indices:
                violation = self.evidence.get(int(i))
                if violation is None:
                    raise RuntimeError(f"{CHECK}: member class {self.classes[int(i)]!r} judged without evidence")
                if (violation.kind, violation.entity) in self.reported:
                    continue  # the same member in the legacy and the v2 ZSET: one finding
                self.reported.add((violation.kind, violation.entity))
                self.result.add(violation)
        self.classes, self.evidence = [], {}
        self.seconds += time.monotonic() - t0


def _schedule_hygiene(
    ctx: CheckContext, client: Any, result: CheckResult, tenants: list[str], soft_s: float, hot: set[int]
) -> None:
    """Step 5. A member whose key the SCAN just found exists; only the others cost an EXISTS, and only overdue
    members of a due-time ZSET (R1 rule) cost a sync-lock lookup."""
    t0 = time.monotonic()
    now_s = ctx.window.now.timestamp()
    judge = _MemberJudge(result)
    sizes: dict[str, int] = {}
    oldest: dict[str, float] = {}
    for zkey, rule in _schedules(client, tenants, ctx.revision):
        if not key_has_type(client, zkey, "zset"):
            result.metrics.setdefault("wrong_type_keys", []).append(zkey)
            continue
        size = int(client.zcard(zkey))
        if not size:
            continue
        sizes[zkey] = size
        first = client.zrange(zkey, 0, 0, withscores=True)
        if first:
            oldest[zkey] = round(now_s - float(first[0][1]), 3)
        cursor = 0
        while True:
            cursor, members = client.zscan(zkey, cursor=cursor, count=SCAN_COUNT)
            names = [_text(m) for m, _ in members]
            scores = [float(sc) for _, sc in members]
            exists = [_in_hot(n, hot) for n in names]
            overdue = [rule == "due" and sc < now_s - R1_OVERDUE_S for sc in scores]
            locked = [False] * len(names)
            ask_exists = [i for i, e in enumerate(exists) if not e]
            ask_lock = [i for i, o in enumerate(overdue) if o]
            if ask_exists or ask_lock:
                pipe = client.pipeline(transaction=False)
                for i in ask_exists:
                    pipe.exists(names[i])
                for i in ask_lock:
                    pipe.exists(*lock_keys(names[i], rstore.parse_balance_key(names[i])))
                res = pipe.execute()
                for i, r in zip(ask_exists, res[: len(ask_exists)], strict=True):
                    exists[i] = bool(r)
                for i, r in zip(ask_lock, res[len(ask_exists) :], strict=True):
                    locked[i] = bool(r)
            for i, name in enumerate(names):
                cls = classify_member(schedule=rule, score=scores[i], key_exists=exists[i], locked=locked[i],
                                      now_s=now_s, soft_s=soft_s)
                details = None if cls == "ok" else {
                    "schedule": zkey, "rule": rule, "score": str(scores[i]),
                    "age_seconds": int(now_s - scores[i]), "locked": locked[i],
                }
                judge.add(cls, name, details or {})
            if int(cursor) == 0:
                break
    judge.flush()
    result.metrics["schedule_sizes"] = sizes
    result.metrics["schedule_oldest_score_age_seconds"] = oldest
    result.metrics["ge_schedule_seconds"] = round(judge.seconds, 3)
    result.metrics["schedule_seconds"] = round(time.monotonic() - t0, 3)


def _in_hot(member: str, hot: set[int]) -> bool:
    untenanted, h = _dedupe_hash(member)
    return untenanted and h in hot


# ---- step 6: cold balances ----


def _cold_balances(
    ctx: CheckContext, result: CheckResult, hot: set[int], backup: dict[str, float | None], soft_s: float
) -> None:
    from datetime import timedelta

    from reconciliation.checks.ge import SqlInvariant, SqlSuite
    from reconciliation.stores.postgres import read_only, read_only_uri, render

    t0 = time.monotonic()
    params = ctx.sql_params()
    params["settled_before"] = ctx.window.now - timedelta(seconds=soft_s)
    sql = render(ctx.load_sql(CHECK, "transaction__lost_flush"), params)
    hard_s = ctx.window.hard_grace.total_seconds()
    cap = ctx.params.max_samples
    suite = SqlSuite(f"{CHECK}_transaction", read_only_uri(ctx.transaction_conn_id),
                     [SqlInvariant(kind="lost_flush", sql=sql, description=BY_KIND["lost_flush"].hint)], cap)
    outcome = suite.run()["lost_flush"]
    if outcome.exception:
        raise RuntimeError(f"{CHECK}: lost_flush could not be evaluated: {outcome.exception}")
    stats = {"hot": 0, "in_flight": 0}

    def keep(row: dict[str, Any]) -> bool:
        identity = f"{row['organization_id']}:{row['ledger_id']}:{row['alias']}#{row['key']}"
        if ident_hash(identity) in hot:
            stats["hot"] += 1
            return False
        for name in ("id:" + str(row["balance_id"]), identity):
            if name in backup and (backup[name] is None or backup[name] < hard_s):
                stats["in_flight"] += 1
                return False
        return True

    if outcome.total <= len(outcome.rows):
        kept = [r for r in outcome.rows if keep(r)]
        add_rows(result, CHECK, "lost_flush", kept, len(kept))
    else:  # more violating rows than samples: one exact streamed pass to count the cold ones
        kept, total = [], 0
        with read_only(ctx.transaction_conn_id) as conn, conn.cursor(name="recon_lost_flush") as cur:
            cur.itersize = 10_000
            cur.execute(sql)
            names: list[str] | None = None
            while rows := cur.fetchmany(10_000):
                names = names or [d.name for d in cur.description or []]
                for r in rows:
                    row = dict(zip(names, r, strict=True))
                    if keep(row):
                        total += 1
                        if len(kept) < cap:
                            kept.append(row)
        add_rows(result, CHECK, "lost_flush", kept, total)
    result.in_flight += stats["in_flight"]
    result.metrics["cold_rule_hot_skipped"] = stats["hot"]
    result.metrics["cold_rule_in_flight"] = stats["in_flight"]
    result.metrics["cold_seconds"] = round(time.monotonic() - t0, 3)

