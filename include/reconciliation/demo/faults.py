"""Fault injector: corrupts a generated Midaz ledger on chosen entities and returns the Manifest of every
error/warning finding a correct reconciliation must then report — including the cascades into other checks.

Why: a check is only proven when it finds exactly what was broken (DESIGN §5). Each fault models damage that
happened when its entity was written (timestamps stay in the past, older than every grace window), picks
entities no other fault uses (deterministically, from the seed), and prefers a distinct ledger/asset where an
aggregate finding (zero-sum, counts) would otherwise merge. Aggregate cascades — ledger_not_zero_sum,
live_accounts_default_balances_mismatch, metadata_exceeds_rows — are computed from the stores after all
faults are in, so the manifest states what the data really shows.

Redis evidence is only as durable as its keys: a faulted key keeps at least 15 minutes of TTL (R1's
redis_ahead_expiring: 10 minutes); `manifest.expires_at` says when the first one goes. Inject once per ledger
(one call with every fault wanted): a second call does not know which entities the first one used.

    manifest = inject(env, faults="all", seed=7)
    manifest.expected(check="balances")
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import redis
from pymongo import MongoClient

from reconciliation.config import version_gap_fix_date
from reconciliation.demo.gen_model import (
    BACKUP_QUEUE,
    REDIS_BALANCE_PREFIX,
    SCHEDULE_R1,
    SCHEDULE_R2,
    MidazEnvLike,
    dec,
    dt_ms,
    go_time,
    ms_dt,
    uuid7,
    uuid7_ms,
)
from reconciliation.demo.manifest import Manifest

MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SETTLED_MARGIN_MS = 2 * HOUR_MS  # faulted rows are at least this old (beyond R1 75 / R2 100 min hard grace)

_OP_COLS = ("id, transaction_id, type, amount, available_balance, on_hold_balance, available_balance_after, "
            "on_hold_balance_after, balance_version_before, balance_version_after, balance_affected")


class FaultSkipped(Exception):
    """The ledger offers no entity this fault can use (too small, or revision not supported)."""


@dataclass(frozen=True)
class Fault:
    fn: Callable[[Ctx, str], None]
    revisions: tuple[str, ...] = ("r1", "r2")
    in_all: tuple[str, ...] = ("r1", "r2")  # revisions at which faults="all" includes it

    @property
    def doc(self) -> str:
        return " ".join((self.fn.__doc__ or "").split())


@dataclass
class Bal:
    id: str
    org: str
    ledger: str
    account_id: str
    alias: str
    key: str
    asset: str
    available: Decimal
    on_hold: Decimal
    version: int
    account_type: str
    direction: str
    updated_ms: int = 0

    @property
    def redis_key(self) -> str:
        return f"{REDIS_BALANCE_PREFIX}{self.org}:{self.ledger}:{self.alias}#{self.key}"

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.org, self.ledger, self.asset)


@dataclass
class Op:
    id: str
    transaction_id: str
    type: str
    amount: Decimal
    av: Decimal
    oh: Decimal
    av_after: Decimal
    oh_after: Decimal
    v_before: int
    v_after: int
    affected: bool


class Ctx:
    """Connections, the ledger's shape, and the bookkeeping that keeps faults disjoint."""

    def __init__(self, env: MidazEnvLike, seed: int, now: datetime, on_day: dict[str, date]) -> None:
        self.env = env
        self.rev = env.revision.lower()
        self.r2 = self.rev == "r2"
        self.rng = random.Random(seed)
        self.now = now
        self.now_ms = dt_ms(now)
        self.on_day = on_day
        self.onb = psycopg.connect(env.onboarding_conninfo)
        self.txn = psycopg.connect(env.transaction_conninfo)
        self.redis = redis.Redis.from_url(env.redis_url)
        self.mongo: MongoClient[dict[str, Any]] = MongoClient(env.mongo_uri)
        self.monb = self.mongo[env.mongo_onboarding_db]
        self.mtxn = self.mongo[env.mongo_transaction_db]
        self.manifest = Manifest(self.rev, seed, now.isoformat())
        self.used: set[str] = set()
        self.group_touch: dict[tuple[str, str, str], tuple[str, datetime]] = {}
        self.ledger_touch: dict[tuple[str, str], tuple[str, datetime]] = {}
        self.coll_touch: dict[tuple[str, str], tuple[str, datetime]] = {}
        self.zero_sum_faults: list[tuple[str, str, str]] = []
        self.fault = ""
        self._load_shape()

    # ------------------------------------------------------------------ shape of the ledger
    def _load_shape(self) -> None:
        t = self.txn
        r = t.execute('SELECT id::text FROM "transaction" ORDER BY id LIMIT 1').fetchone()
        if not r:
            raise FaultSkipped("the ledger has no transactions: generate it first")
        self.history_start_ms = uuid7_ms(r[0])
        cols = "id::text, organization_id::text, ledger_id::text, account_id::text, alias, key, asset_code, " \
               "available, on_hold, COALESCE(version, 0), account_type, " + ("direction" if self.r2 else "'credit'") + \
               ", (extract(epoch FROM updated_at) * 1000)::bigint"
        self.balances = [Bal(*row) for row in t.execute(
            f"SELECT {cols} FROM balance WHERE deleted_at IS NULL ORDER BY id").fetchall()]
        self.bal_by_id = {b.id: b for b in self.balances}
        self.ledgers = [(row[0], row[1]) for row in self.onb.execute(
            "SELECT id::text, organization_id::text FROM ledger WHERE deleted_at IS NULL ORDER BY created_at, id").fetchall()]
        self.orgs = sorted({org for _, org in self.ledgers})
        self.assets: dict[str, list[str]] = {}
        for led, code in self.onb.execute(
                "SELECT ledger_id::text, code FROM asset WHERE deleted_at IS NULL ORDER BY created_at, id").fetchall():
            self.assets.setdefault(led, []).append(code)
        self.ledger_org = dict(self.ledgers)
        # Redis: hot balances and everything the backup queue names (in-flight evidence we must not disturb)
        self.hot: dict[str, tuple[str, dict[str, Any] | None, int]] = {}
        self.hot_keys: set[str] = set()
        for key in self.redis.scan_iter(match=REDIS_BALANCE_PREFIX + "*", count=1000):
            k = key.decode()
            self.hot_keys.add(k)
            raw = self.redis.get(key)
            try:
                val = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                val = None
            if isinstance(val, dict) and "ID" in val:
                self.hot[val["ID"]] = (k, val, int(self.redis.ttl(key)))
        self.backup_named: set[str] = set()
        self.backup_tx: set[str] = set()
        for f, raw in self.redis.hgetall(BACKUP_QUEUE).items():
            self.backup_tx.add(f.decode().rsplit(":", 1)[-1])
            try:
                entry = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            for snap in entry.get("balances") or []:
                if isinstance(snap, dict) and snap.get("ID"):
                    self.backup_named.add(snap["ID"])
                    alias = str(snap.get("Alias", "")).split("#")
                    if len(alias) == 3:
                        self.backup_named.add(f"{alias[1]}#{alias[2]}")
            for alias in (entry.get("validate") or {}).get("aliases", []) or []:
                parts = str(alias).split("#")
                if len(parts) == 3:
                    self.backup_named.add(f"{parts[1]}#{parts[2]}")

    # ------------------------------------------------------------------ time
    def window_ms(self) -> tuple[int, int]:
        """Where this fault may pick entities: settled history, or the day asked for in on_day."""
        hi = self.now_ms - SETTLED_MARGIN_MS
        lo = self.history_start_ms
        day = self.on_day.get(self.fault)
        if day is not None:
            d0 = dt_ms(datetime.combine(day, time(0), UTC))
            lo, hi = max(lo, d0), min(hi, d0 + DAY_MS)
            if lo >= hi:
                raise FaultSkipped(f"no settled data on {day}")
        return lo, hi

    def new_ms(self) -> int:
        """Write time for a row the fault creates: inside the fault's window, never younger than the margin."""
        lo, hi = self.window_ms()
        lo = max(lo, hi - 2 * DAY_MS)
        return self.rng.randrange(lo, hi)

    def id_at(self, ms: int) -> str:
        return uuid7(ms, self.rng)

    @staticmethod
    def id_bound(ms: int) -> str:
        return str(uuid.UUID(int=ms << 80))

    def in_window(self, ident: str) -> bool:
        lo, hi = self.window_ms()
        return lo <= uuid7_ms(ident) < hi

    # ------------------------------------------------------------------ bookkeeping
    def add(self, check: str, kind: str, entity: str, at: datetime | int | str, severity: str | None = None) -> None:
        if isinstance(at, int):
            at = ms_dt(at)
        self.manifest.add(check, kind, entity, at, self.fault, severity)

    def claim(self, *ids: str) -> None:
        self.used.update(ids)

    def free(self, *ids: str) -> bool:
        return not any(i in self.used for i in ids)

    def _touch(self, store: dict, key: Any, at: int) -> None:
        # An aggregate finding dates from the EARLIEST fault that touched its group, whatever the order
        # the faults ran in: that is when the aggregate first went wrong (window attribution).
        prev = store.get(key)
        when = ms_dt(at)
        if prev is None or when < prev[1]:
            store[key] = (self.fault, when)

    def touch_group(self, group: tuple[str, str, str], at: int) -> None:
        self._touch(self.group_touch, group, at)

    def touch_ledger(self, org: str, ledger: str, at: int) -> None:
        self._touch(self.ledger_touch, (org, ledger), at)

    def touch_coll(self, db: str, coll: str, at: int) -> None:
        self._touch(self.coll_touch, (db, coll), at)

    def note(self, **details: Any) -> None:
        self.manifest.faults.setdefault(self.fault, {}).update(details)

    def ledger_pick(self) -> tuple[str, str]:
        """A (ledger, org) no count-affecting fault used yet, when there is one (keeps count findings apart)."""
        ledgers = self.shuffled(self.ledgers)
        ledgers.sort(key=lambda lo: (lo[1], lo[0]) in self.ledger_touch)
        return ledgers[0]

    def shuffled(self, items: list[Any]) -> list[Any]:
        items = list(items)
        self.rng.shuffle(items)
        return items

    # ------------------------------------------------------------------ queries
    def ops_of(self, b: Bal) -> list[Op]:
        rows = self.txn.execute(
            f"SELECT {_OP_COLS} FROM operation WHERE organization_id = %s AND ledger_id = %s AND account_id = %s "
            "AND balance_id = %s AND deleted_at IS NULL AND balance_affected "
            "ORDER BY balance_version_after, id", (b.org, b.ledger, b.account_id, b.id)).fetchall()
        return [Op(str(r[0]), str(r[1]), *r[2:]) for r in rows]

    def is_cold(self, b: Bal) -> bool:
        """No Redis key, and (deterministically, whatever expired since) not written in the last two hours."""
        return (b.updated_ms < self.now_ms - SETTLED_MARGIN_MS and b.id not in self.hot
                and b.redis_key not in self.hot_keys and f"{b.alias}#{b.key}" not in self.backup_named)

    def cold_balances(self, *, external: bool | None = False, key: str | None = None,
                      zero_sum_group: bool = False, fresh_ledger: bool = False) -> list[Bal]:
        out = [b for b in self.balances if self.is_cold(b) and self.free(b.id, b.account_id)
               and (external is None or (b.account_type == "external") == external)
               and (key is None or (b.key == key if key != "!default" else b.key != "default"))]
        out = self.shuffled(out)
        if zero_sum_group:  # prefer groups no other zero-sum fault touched
            out.sort(key=lambda b: b.group in self.group_touch)
        if fresh_ledger:  # prefer ledgers no count-affecting fault touched
            out.sort(key=lambda b: (b.org, b.ledger) in self.ledger_touch)
        return out

    def transactions(self, where: str, limit: int = 60, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Candidate transactions in the fault's window (index-backed id range from a random start)."""
        lo, hi = self.window_ms()
        start = self.rng.randrange(lo, hi)
        q = f"""SELECT t.id::text, t.organization_id::text, t.ledger_id::text, t.asset_code, t.amount, t.status
                FROM "transaction" t WHERE t.id >= %(lo)s AND t.id < %(hi)s AND t.deleted_at IS NULL AND {where}
                ORDER BY t.id LIMIT %(limit)s"""
        out: list[tuple[Any, ...]] = []
        for a, b in ((start, hi), (lo, start)):
            p = {"lo": self.id_bound(a), "hi": self.id_bound(b), "limit": limit, **(params or {})}
            out += [r for r in self.txn.execute(q, p).fetchall() if self.free(r[0]) and r[0] not in self.backup_tx]
            if len(out) >= 5:
                break
        return out

    def simple_transfers(self) -> list[tuple[Any, ...]]:
        return self.transactions("""t.status = 'APPROVED' AND t.parent_transaction_id IS NULL
            AND NOT EXISTS (SELECT 1 FROM "transaction" c WHERE c.parent_transaction_id = t.id)
            AND (SELECT count(*) FROM operation o WHERE o.transaction_id = t.id) = 2""")

    def tx_ops(self, tx_id: str) -> list[tuple[Any, ...]]:
        return self.txn.execute(
            "SELECT id::text, type, amount, balance_id::text, account_id::text, balance_affected FROM operation "
            "WHERE transaction_id = %s ORDER BY id", (tx_id,)).fetchall()

    def in_sync_hot(self, min_age_s: int = 20 * 60, max_age_s: int = 45 * 60) -> list[Bal]:
        """Hot balances whose Redis value equals PostgreSQL, aged past the soft grace, named by no backup entry."""
        out = []
        for b in self.balances:
            got = self.hot.get(b.id)
            if not got or not self.free(b.id, got[0]) or f"{b.alias}#{b.key}" in self.backup_named:
                continue
            key, val, ttl = got
            if val is None or key != b.redis_key or ttl < 600:
                continue
            age = (self.now_ms - b.updated_ms) / 1000  # the last write (PostgreSQL is in sync with it)
            if not (min_age_s <= age <= max_age_s):
                continue
            try:
                same = (int(val["Version"]) == b.version and Decimal(val["Available"]) == b.available
                        and Decimal(val["OnHold"]) == b.on_hold)
            except Exception:
                same = False
            if same:
                out.append(b)
        # youngest past 20 min first: the fault then lives longest (a key's evidence expires with it)
        return sorted(self.shuffled(out), key=lambda b: -b.updated_ms // (5 * MIN_MS))

    def last_op(self, b: Bal) -> Op | None:
        ops = self.ops_of(b)
        return ops[-1] if ops else None

    def commit(self) -> None:
        self.onb.commit()
        self.txn.commit()

    def close(self) -> None:
        for c in (self.onb, self.txn):
            try:
                c.close()
            except Exception:
                pass
        self.redis.close()
        self.mongo.close()


def _ent(*parts: str) -> str:
    return "/".join(parts)


# ====================================================================== balances (§6.1)
def f_balance_behind_last_operation(c: Ctx, name: str) -> None:
    """§8.4 / §7.1 lost flush: the PostgreSQL balance is set back to before its last operation, no Redis key."""
    for b in c.cold_balances(zero_sum_group=True):
        ops = c.ops_of(b)
        if len(ops) < 2 or not c.in_window(ops[-1].id) or ops[-1].type not in ("DEBIT", "CREDIT"):
            continue
        last = ops[-1]
        c.txn.execute("UPDATE balance SET available = %s, on_hold = %s, version = %s, updated_at = %s WHERE id = %s",
                      (last.av, last.oh, last.v_before, ms_dt(uuid7_ms(ops[-2].id)), b.id))
        at = uuid7_ms(last.id)
        c.claim(b.id, b.account_id, last.transaction_id)
        c.add("balances", "balance_last_operation_mismatch", b.id, at)
        c.add("balances", "balance_replay_mismatch", b.id, at)
        c.add("redis_sync", "lost_flush", b.id, at)
        c.touch_group(b.group, at)
        c.note(balance_id=b.id, last_operation_id=last.id)
        return
    raise FaultSkipped("no cold balance with two plain operations")


def _chain_candidates(c: Ctx, min_ops: int) -> list[tuple[Bal, list[Op]]]:
    out = []
    for b in c.cold_balances(external=None)[:400]:
        ops = c.ops_of(b)
        if len(ops) >= min_ops:
            out.append((b, ops))
        if len(out) >= 30:
            break
    return out


def f_version_fork(c: Ctx, name: str) -> None:
    """§8.4 / §7.2: two mutations computed from the same state — operation j repeats j-1's versions (later
    versions shifted down, the balance row with them, so nothing else breaks)."""
    for b, ops in _chain_candidates(c, 4):
        for j in range(1, len(ops) - 1):
            o, p = ops[j], ops[j - 1]
            if o.v_before == p.v_after and o.id > p.id and c.in_window(o.id) and uuid7_ms(o.id) > uuid7_ms(p.id):
                ids = [x.id for x in ops[j:]]
                c.txn.execute("UPDATE operation SET balance_version_before = balance_version_before - 1, "
                              "balance_version_after = balance_version_after - 1 WHERE id = ANY(%s::uuid[])", (ids,))
                c.txn.execute("UPDATE balance SET version = version - 1 WHERE id = %s", (b.id,))
                c.claim(b.id, b.account_id)
                c.add("balances", "version_chain_broken", o.id, uuid7_ms(o.id))
                c.note(balance_id=b.id, operation_id=o.id, repeats=p.id)
                return
    raise FaultSkipped("no balance with a gap-free chain of four operations")


def f_version_gap(c: Ctx, name: str) -> None:
    """R2: a version skipped between two operations written after the gap fix (later versions shifted up)."""
    if not c.r2:
        raise FaultSkipped("version gaps are legitimate at R1")
    fix_ms = dt_ms(datetime.combine(version_gap_fix_date(), time(0), UTC))
    for b, ops in _chain_candidates(c, 3):
        for j in range(1, len(ops)):
            o, p = ops[j], ops[j - 1]
            if o.v_before == p.v_after and uuid7_ms(p.id) >= fix_ms and c.in_window(o.id) and \
                    uuid7_ms(o.id) > uuid7_ms(p.id):
                ids = [x.id for x in ops[j:]]
                c.txn.execute("UPDATE operation SET balance_version_before = balance_version_before + 1, "
                              "balance_version_after = balance_version_after + 1 WHERE id = ANY(%s::uuid[])", (ids,))
                c.txn.execute("UPDATE balance SET version = version + 1 WHERE id = %s", (b.id,))
                c.claim(b.id, b.account_id)
                c.add("balances", "version_gap", o.id, uuid7_ms(o.id))
                c.note(balance_id=b.id, operation_id=o.id)
                return
    raise FaultSkipped("no gap-free chain written after the gap-fix date")


def f_operation_arithmetic(c: Ctx, name: str) -> None:
    """§6.1-C: a middle operation whose version does not advance by one (before = after). At R2 the skipped
    version is also a gap against the previous operation."""
    for b, ops in _chain_candidates(c, 3):
        for j in range(1, len(ops) - 1):
            o, p = ops[j], ops[j - 1]
            if o.v_before == p.v_after and c.in_window(o.id) and uuid7_ms(o.id) > uuid7_ms(p.id) \
                    and uuid7_ms(ops[j + 1].id) > uuid7_ms(o.id):
                c.txn.execute("UPDATE operation SET balance_version_before = balance_version_after WHERE id = %s", (o.id,))
                c.claim(b.id, b.account_id)
                at = uuid7_ms(o.id)
                c.add("balances", "operation_arithmetic_invalid", o.id, at)
                if c.r2 and at >= dt_ms(datetime.combine(version_gap_fix_date(), time(0), UTC)):
                    c.add("balances", "version_gap", o.id, at)
                c.note(balance_id=b.id, operation_id=o.id)
                return
    raise FaultSkipped("no balance with three operations")


def _mini_asset(c: Ctx, code: str, n_users: int, at: int) -> tuple[str, str, str, list[tuple[str, str, str]]]:
    """A new asset in a ledger with its @external account/balance and `n_users` accounts/balances, all zero.
    Returns (asset_id, org, ledger, [(account_id, balance_id, alias)] with the external first)."""
    for led, org in c.shuffled(c.ledgers):
        if code in c.assets.get(led, []) or not c.free(led + code):
            continue
        c.claim(led + code)
        c.assets.setdefault(led, []).append(code)
        asset_id = c.id_at(at)
        c.onb.execute("INSERT INTO asset (id, name, type, code, status, ledger_id, organization_id, created_at, updated_at) "
                      "VALUES (%s, %s, 'currency', %s, 'ACTIVE', %s, %s, %s, %s)",
                      (asset_id, code, code, led, org, ms_dt(at), ms_dt(at)))
        accounts = []
        direction = "debit" if c.r2 and ms_dt(at).date() > date(2026, 7, 13) else "credit"
        for i in range(n_users + 1):
            ams = at + 10 + i
            acc_id, bal_id = c.id_at(ams), c.id_at(ams + 1)
            alias = f"@external/{code}" if i == 0 else f"@{code.lower()}-{c.rng.randrange(10**6):06d}"
            typ = "external" if i == 0 else "deposit"
            _insert_account(c, acc_id, org, led, code, alias, typ, ams, status="external" if i == 0 else "ACTIVE")
            _insert_balance(c, bal_id, org, led, acc_id, alias, code, typ, ams + 1,
                            direction=direction if i == 0 else "credit")
            accounts.append((acc_id, bal_id, alias))
        return asset_id, org, led, accounts
    raise FaultSkipped(f"every ledger already has {code}")


def _insert_account(c: Ctx, acc_id: str, org: str, led: str, code: str, alias: str, typ: str, ms: int,
                    status: str = "ACTIVE", deleted: int | None = None) -> None:
    c.onb.execute("INSERT INTO account (id, name, asset_code, organization_id, ledger_id, status, alias, type, "
                  "created_at, updated_at, deleted_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                  (acc_id, f"{code} {typ} account", code, org, led, status, alias, typ, ms_dt(ms), ms_dt(ms),
                   ms_dt(deleted) if deleted else None))


def _insert_balance(c: Ctx, bal_id: str, org: str, led: str, acc_id: str, alias: str, code: str, typ: str,
                    ms: int, key: str = "default", available: Decimal = Decimal(0), version: int = 0,
                    direction: str = "credit", deleted: int | None = None) -> None:
    cols = "id, organization_id, ledger_id, account_id, alias, asset_code, available, on_hold, version, " \
           "account_type, allow_sending, allow_receiving, created_at, updated_at, deleted_at, key"
    vals: list[Any] = [bal_id, org, led, acc_id, alias, code, available, Decimal(0), version, typ, True, True,
                       ms_dt(ms), ms_dt(ms), ms_dt(deleted) if deleted else None, key]
    if c.r2:
        cols += ", direction, overdraft_used"
        vals += [direction, Decimal(0)]
    c.txn.execute(f"INSERT INTO balance ({cols}) VALUES ({', '.join(['%s'] * len(vals))})", vals)


def _insert_transaction(c: Ctx, tx_id: str, org: str, led: str, code: str, amount: Decimal, status: str, ms: int,
                        body: Any = None, parent: str | None = None) -> None:
    c.txn.execute('INSERT INTO "transaction" (id, parent_transaction_id, description, status, status_description, '
                  "amount, asset_code, chart_of_accounts_group_name, ledger_id, organization_id, body, created_at, "
                  "updated_at) VALUES (%s, %s, '', %s, %s, %s, %s, '', %s, %s, %s, %s, %s)",
                  (tx_id, parent, status, status, amount, code, led, org,
                   orjson.dumps(body).decode() if body is not None else None, ms_dt(ms), ms_dt(ms)))


def _insert_op(c: Ctx, tx_id: str, org: str, led: str, code: str, typ: str, direction: str, amount: Decimal,
               acc_id: str, alias: str, bal_id: str, before: Decimal, after: Decimal, vb: int, ms: int,
               on_hold: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0))) -> str:
    op_id = c.id_at(ms)
    cols = ("id, transaction_id, description, type, asset_code, amount, available_balance, on_hold_balance, "
            "available_balance_after, on_hold_balance_after, status, account_id, account_alias, balance_id, "
            "chart_of_accounts, organization_id, ledger_id, created_at, updated_at, balance_affected, balance_key, "
            "balance_version_before, balance_version_after")
    vals: list[Any] = [op_id, tx_id, "", typ, code, amount, before, on_hold[0], after, on_hold[1], "", acc_id, alias,
                       bal_id, "", org, led, ms_dt(ms), ms_dt(ms), True, "default", vb, vb + 1]
    if c.r2:
        cols += ", direction"
        vals.append(direction)
    c.txn.execute(f"INSERT INTO operation ({cols}) VALUES ({', '.join(['%s'] * len(vals))})", vals)
    return op_id


def f_balance_sign_negative(c: Ctx, name: str) -> None:
    """§6.1-E: a non-external balance driven below zero by a self-consistent transfer (new asset, so that no
    other invariant moves: double entry, chain, last operation and zero sum all still hold)."""
    at = c.new_ms()
    _, org, led, accs = _mini_asset(c, "GBP", 2, at)
    (_, _, _), (a_acc, a_bal, a_alias), (b_acc, b_bal, b_alias) = accs
    amount = Decimal("5.00")
    tms = at + MIN_MS
    tx_id = c.id_at(tms)
    _insert_transaction(c, tx_id, org, led, "GBP", amount, "APPROVED", tms)
    _insert_op(c, tx_id, org, led, "GBP", "DEBIT", "debit", amount, a_acc, a_alias, a_bal, Decimal(0), -amount, 0, tms)
    _insert_op(c, tx_id, org, led, "GBP", "CREDIT", "credit", amount, b_acc, b_alias, b_bal, Decimal(0), amount, 0, tms)
    c.txn.execute("UPDATE balance SET available = %s, version = 1, updated_at = %s WHERE id = %s", (-amount, ms_dt(tms), a_bal))
    c.txn.execute("UPDATE balance SET available = %s, version = 1, updated_at = %s WHERE id = %s", (amount, ms_dt(tms), b_bal))
    c.claim(a_bal, b_bal, tx_id)
    c.add("balances", "balance_sign_invalid", a_bal, tms)
    c.note(balance_id=a_bal, transaction_id=tx_id)


def f_deleted_balance_with_funds(c: Ctx, name: str) -> None:
    """§6.1-E: a soft-deleted balance that still holds funds (Midaz requires zero to delete)."""
    cands = c.cold_balances(key=None)
    cands.sort(key=lambda b: (b.key == "default", b.group in c.group_touch))  # extra key, fresh group first
    for b in cands:
        if b.available <= 0:
            continue
        last = c.last_op(b)
        if last is None or not c.in_window(last.id):
            continue
        at = uuid7_ms(last.id) + 10 * MIN_MS
        c.txn.execute("UPDATE balance SET deleted_at = %s WHERE id = %s", (ms_dt(at), b.id))
        c.claim(b.id, b.account_id)
        c.add("balances", "deleted_balance_not_zero", b.id, at)
        c.touch_group(b.group, at)
        if b.key == "default":  # the account is left without a live default balance
            c.add("referential", "account_default_balance_missing", b.account_id, at)
            c.touch_ledger(b.org, b.ledger, at)
        c.note(balance_id=b.id)
        return
    raise FaultSkipped("no cold balance with funds")


def f_duplicate_balance(c: Ctx, name: str) -> None:
    """§6.1-G: a second live row for one alias#key (R1's idx_unique_balance_alias_key is not unique). At R2 the
    real unique index is per account, so the duplicate carries an account id that does not exist."""
    cands = c.cold_balances(key="!default") if not c.r2 else []
    cands += c.cold_balances(key="default")
    for b in cands:
        at = c.new_ms()
        new_id = c.id_at(at)
        acc = b.account_id if not c.r2 else c.id_at(at - 1)
        _insert_balance(c, new_id, b.org, b.ledger, acc, b.alias, b.asset, b.account_type, at, key=b.key,
                        direction=b.direction)
        c.claim(b.id, b.account_id, new_id)
        c.add("balances", "duplicate_balance", _ent(b.org, b.ledger, f"{b.alias}#{b.key}"), at)
        if c.r2:
            c.add("referential", "balance_account_missing", new_id, at)
            if b.key == "default":
                c.touch_ledger(b.org, b.ledger, at)
        elif b.key == "default":
            c.add("referential", "account_default_balance_duplicate", b.account_id, at)
            c.touch_ledger(b.org, b.ledger, at)
        c.note(balance_id=new_id, duplicates=b.id)
        return
    raise FaultSkipped("no cold balance")


def f_duplicate_account_alias(c: Ctx, name: str) -> None:
    """§6.1-G: a second live account (with its default balance) under an existing alias."""
    for b in c.cold_balances(key="default"):
        at = c.new_ms()
        acc_id, bal_id = c.id_at(at), c.id_at(at + 1)
        _insert_account(c, acc_id, b.org, b.ledger, b.asset, b.alias, b.account_type, at)
        _insert_balance(c, bal_id, b.org, b.ledger, acc_id, b.alias, b.asset, b.account_type, at + 1)
        c.claim(b.id, b.account_id, acc_id, bal_id)
        c.add("balances", "duplicate_account_alias", _ent(b.org, b.ledger, b.alias), at)
        c.add("balances", "duplicate_balance", _ent(b.org, b.ledger, f"{b.alias}#default"), at)
        c.note(account_id=acc_id, duplicates=b.account_id)
        return
    raise FaultSkipped("no cold default balance")


def f_duplicate_asset_code(c: Ctx, name: str) -> None:
    """§6.1-G: a second live asset with an existing code (no unique constraint on asset.code)."""
    for led, org in c.shuffled(c.ledgers):
        if not c.free(led + "dup-asset") or not c.assets.get(led):
            continue
        code = c.assets[led][0]
        at = c.new_ms()
        asset_id = c.id_at(at)
        c.onb.execute("INSERT INTO asset (id, name, type, code, status, ledger_id, organization_id, created_at, "
                      "updated_at) VALUES (%s, %s, 'currency', %s, 'ACTIVE', %s, %s, %s, %s)",
                      (asset_id, code + " again", code, led, org, ms_dt(at), ms_dt(at)))
        c.claim(led + "dup-asset")
        c.add("balances", "duplicate_asset_code", _ent(org, led, code), at)
        c.note(asset_id=asset_id)
        return
    raise FaultSkipped("no ledger")


# ====================================================================== double entry (§6.2)
def _noted(c: Ctx) -> tuple[Any, ...]:
    rows = c.transactions("t.status = 'NOTED'")
    if not rows:
        raise FaultSkipped("no NOTED transaction in the window")
    return c.rng.choice(rows)


def f_unbalanced_transaction(c: Ctx, name: str) -> None:
    """§8.4: debits and credits differ (on a NOTED transaction, so no balance invariant moves)."""
    tx = _noted(c)
    ops = c.tx_ops(tx[0])
    credit = next(o for o in ops if o[1] == "CREDIT")
    c.txn.execute("UPDATE operation SET amount = amount + 1 WHERE id = %s", (credit[0],))
    c.claim(tx[0])
    c.add("double_entry", "unbalanced_transaction", tx[0], uuid7_ms(tx[0]))
    c.note(transaction_id=tx[0], operation_id=credit[0])


def f_value_not_conserved(c: Ctx, name: str) -> None:
    """§6.2 conservation: a transfer's credit leg (the balance's last operation, balance updated with it)
    credits one unit more than was debited — value is created, and the ledger's zero sum breaks."""
    for b in c.cold_balances(zero_sum_group=True):
        last = c.last_op(b)
        if last is None or last.type != "CREDIT" or not c.in_window(last.id) or not c.free(last.transaction_id):
            continue
        tx = c.txn.execute("""SELECT t.status, t.parent_transaction_id, (SELECT count(*) FROM operation o
                                WHERE o.transaction_id = t.id), EXISTS (SELECT 1 FROM "transaction" k
                                WHERE k.parent_transaction_id = t.id) FROM "transaction" t WHERE t.id = %s""",
                           (last.transaction_id,)).fetchone()
        if not tx or tx[0] != "APPROVED" or tx[1] is not None or tx[2] != 2 or tx[3]:
            continue
        one = Decimal(1)
        c.txn.execute("UPDATE operation SET amount = amount + %s, available_balance_after = available_balance_after + %s "
                      "WHERE id = %s", (one, one, last.id))
        c.txn.execute("UPDATE balance SET available = available + %s WHERE id = %s", (one, b.id))
        at = uuid7_ms(last.transaction_id)
        c.claim(b.id, b.account_id, last.transaction_id)
        c.add("double_entry", "value_not_conserved", last.transaction_id, at)
        c.add("double_entry", "unbalanced_transaction", last.transaction_id, at)
        c.touch_group(b.group, at)
        c.note(transaction_id=last.transaction_id, balance_id=b.id)
        return
    raise FaultSkipped("no cold balance whose last operation is a plain transfer credit")


def f_operation_asset_mismatch(c: Ctx, name: str) -> None:
    """§6.2: the transaction's asset is changed to another live asset of its ledger; its operations differ."""
    multi = [led for led, codes in c.assets.items() if len(codes) >= 2]
    for tx in c.simple_transfers():
        if tx[2] in multi:
            other = next(code for code in c.assets[tx[2]] if code != tx[3])
            c.txn.execute('UPDATE "transaction" SET asset_code = %s WHERE id = %s', (other, tx[0]))
            c.claim(tx[0])
            c.add("double_entry", "operation_asset_mismatch", tx[0], uuid7_ms(tx[0]))
            c.note(transaction_id=tx[0], asset_code=other)
            return
    raise FaultSkipped("no transfer in a multi-asset ledger")


def f_unknown_operation_type(c: Ctx, name: str) -> None:
    """§6.2: an operation type Midaz does not know (on a NOTED transaction: no balance invariant moves). The R1
    status rule then fails too; at R2 the direction rule still balances, so only the type is reported."""
    tx = _noted(c)
    credit = next(o for o in c.tx_ops(tx[0]) if o[1] == "CREDIT")
    c.txn.execute("UPDATE operation SET type = 'TRANSFER' WHERE id = %s", (credit[0],))
    c.claim(tx[0])
    at = uuid7_ms(tx[0])
    c.add("double_entry", "unknown_operation_type", tx[0], at)
    if not c.r2:
        c.add("double_entry", "unbalanced_transaction", tx[0], at)
    c.note(transaction_id=tx[0], operation_id=credit[0])


def f_balance_affected_mismatch(c: Ctx, name: str) -> None:
    """§6.2: a NOTED transaction persisted as APPROVED — its operations still say balance_affected=false."""
    tx = _noted(c)
    c.txn.execute("UPDATE \"transaction\" SET status = 'APPROVED', status_description = 'APPROVED' WHERE id = %s", (tx[0],))
    c.claim(tx[0])
    c.add("double_entry", "balance_affected_mismatch", tx[0], uuid7_ms(tx[0]))
    c.note(transaction_id=tx[0])


# ====================================================================== orphans (§6.3)
def f_transaction_without_operations(c: Ctx, name: str) -> None:
    """§8.4: a transaction row whose operations were never written. Per the reference's 6.2 SQL the R1 status
    rule fails too (no debits for an APPROVED amount); the R2 direction rule balances (0 = 0)."""
    led, org = c.rng.choice(c.ledgers)
    at = c.new_ms()
    tx_id = c.id_at(at)
    _insert_transaction(c, tx_id, org, led, c.assets[led][0], Decimal("42.00"), "APPROVED", at)
    c.claim(tx_id)
    c.add("orphans", "transaction_without_operations", tx_id, at)
    if not c.r2:
        c.add("double_entry", "unbalanced_transaction", tx_id, at)
    c.note(transaction_id=tx_id)


def f_operation_under_deleted_transaction(c: Ctx, name: str) -> None:
    """§6.3-b: a soft-deleted transaction whose operations are live."""
    tx = c.rng.choice(c.simple_transfers() or [None]) or None
    if tx is None:
        raise FaultSkipped("no transfer")
    at = uuid7_ms(tx[0])
    c.txn.execute('UPDATE "transaction" SET deleted_at = %s WHERE id = %s', (ms_dt(at + HOUR_MS), tx[0]))
    c.claim(tx[0])
    for op in c.tx_ops(tx[0]):
        c.add("orphans", "operation_transaction_mismatch", op[0], at)
    c.note(transaction_id=tx[0])


def f_operation_unknown_balance(c: Ctx, name: str) -> None:
    """§8.4: an operation whose balance_id names no balance (a NOTED operation: no chain moves)."""
    tx = _noted(c)
    op = c.tx_ops(tx[0])[0]
    at = uuid7_ms(op[0])
    c.txn.execute("UPDATE operation SET balance_id = %s WHERE id = %s", (c.id_at(at - DAY_MS), op[0]))
    c.claim(tx[0])
    c.add("orphans", "operation_balance_missing", op[0], at)
    c.note(operation_id=op[0])


def f_operation_balance_mismatch(c: Ctx, name: str) -> None:
    """§6.3-c: an operation pointing at another account's balance (a NOTED operation: no chain moves)."""
    tx = _noted(c)
    op = c.tx_ops(tx[0])[0]
    src = c.bal_by_id.get(op[3])
    other = next((b for b in c.balances if src and b.ledger == src.ledger and b.asset == src.asset
                  and b.account_id != src.account_id and b.account_type != "external"), None)
    if other is None:
        raise FaultSkipped("no other balance")
    c.txn.execute("UPDATE operation SET balance_id = %s WHERE id = %s", (other.id, op[0]))
    c.claim(tx[0])
    c.add("orphans", "operation_balance_mismatch", op[0], uuid7_ms(op[0]))
    c.note(operation_id=op[0], balance_id=other.id)


def _reversals(c: Ctx) -> list[tuple[Any, ...]]:
    rows = c.transactions("t.parent_transaction_id IS NOT NULL", limit=200)
    return [r for r in rows if c.free(r[0])]


def _parent_of(c: Ctx, child: str) -> str:
    row = c.txn.execute('SELECT parent_transaction_id::text FROM "transaction" WHERE id = %s', (child,)).fetchone()
    return row[0]


def f_reversal_of_non_approved(c: Ctx, name: str) -> None:
    """§6.3-d: a reversal whose parent is a NOTED transaction (so the legs cannot mirror it either)."""
    kids = _reversals(c)
    if not kids:
        raise FaultSkipped("no reversal in the window")
    child = kids[0]
    noted = c.transactions("t.status = 'NOTED'")
    if not noted:
        raise FaultSkipped("no NOTED transaction")
    target = noted[0]
    old_parent = _parent_of(c, child[0])
    c.txn.execute('UPDATE "transaction" SET parent_transaction_id = %s WHERE id = %s', (target[0], child[0]))
    c.claim(child[0], target[0], old_parent)
    at = uuid7_ms(child[0])
    c.add("orphans", "reversal_invalid", child[0], at)
    c.add("orphans", "reversal_asymmetric", child[0], at)
    c.note(transaction_id=child[0], parent=target[0])


def _originals(c: Ctx, asset: str, ledger: str) -> list[tuple[Any, ...]]:
    return [r for r in c.simple_transfers() if r[3] == asset and r[2] == ledger]


def f_multiple_reversals(c: Ctx, name: str) -> None:
    """§6.3-d: a second reversal re-pointed at an already reversed transaction."""
    kids = _reversals(c)
    for i, k1 in enumerate(kids):
        p1 = _parent_of(c, k1[0])
        for k2 in kids[i + 1:]:
            if k2[2] != k1[2] or not c.free(p1):
                continue
            p2 = _parent_of(c, k2[0])
            c.txn.execute('UPDATE "transaction" SET parent_transaction_id = %s WHERE id = %s', (p1, k2[0]))
            c.claim(k1[0], k2[0], p1, p2)
            p = c.txn.execute('SELECT amount, asset_code FROM "transaction" WHERE id = %s', (p1,)).fetchone()
            at = uuid7_ms(k2[0])
            c.add("orphans", "multiple_reversals", p1, at)
            c.add("orphans", "reversal_asymmetric", k2[0], at)
            if (p[0], p[1]) != (k2[4], k2[3]):
                c.add("orphans", "reversal_invalid", k2[0], at)
            c.note(parent=p1, reversals=[k1[0], k2[0]])
            return
    raise FaultSkipped("fewer than two reversals in one ledger")


def f_reversal_asymmetric(c: Ctx, name: str) -> None:
    """§6.3 symmetry: a reversal re-pointed at another original of its asset (same amount when one exists,
    else the amount differs too and the reversal is also invalid)."""
    for child in _reversals(c):
        old = _parent_of(c, child[0])
        cands = [o for o in _originals(c, child[3], child[2]) if o[0] != old]
        if not cands:
            continue
        same = [o for o in cands if o[4] == child[4]]
        target = (same or cands)[0]
        c.txn.execute('UPDATE "transaction" SET parent_transaction_id = %s WHERE id = %s', (target[0], child[0]))
        c.claim(child[0], target[0], old)
        at = uuid7_ms(child[0])
        c.add("orphans", "reversal_asymmetric", child[0], at)
        if target[4] != child[4]:
            c.add("orphans", "reversal_invalid", child[0], at)
        c.note(transaction_id=child[0], parent=target[0])
        return
    raise FaultSkipped("no reversal with another original of its asset")


def _status_fault(c: Ctx, status: str, kind: str) -> None:
    tx = c.rng.choice(c.simple_transfers() or [None]) or None
    if tx is None:
        raise FaultSkipped("no transfer")
    c.txn.execute('UPDATE "transaction" SET status = %s, status_description = %s WHERE id = %s', (status, status, tx[0]))
    c.claim(tx[0])
    c.add("orphans", kind, tx[0], uuid7_ms(tx[0]))
    c.note(transaction_id=tx[0])


def f_persisted_created_status(c: Ctx, name: str) -> None:
    """§8.4: CREATED persisted (Midaz rewrites it to APPROVED before the insert). Reported by orphans only
    (DESIGN §7)."""
    _status_fault(c, "CREATED", "persisted_created_status")


def f_unknown_transaction_status(c: Ctx, name: str) -> None:
    """§6.3-e: a status outside APPROVED/PENDING/CANCELED/NOTED (reported by orphans, like CREATED)."""
    _status_fault(c, "SETTLED", "unknown_transaction_status")


def _mini_hold(c: Ctx, code: str, t_fund: int, t_hold: int, with_body: bool = True) -> str:
    """A new asset whose one account is funded with 20.00 at t_fund and puts 5.00 on hold at t_hold (PENDING,
    one ON_HOLD operation): every balance invariant holds. Returns the PENDING transaction id."""
    t_open = t_fund - HOUR_MS
    _, org, led, accs = _mini_asset(c, code, 1, t_open)
    (e_acc, e_bal, e_alias), (u_acc, u_bal, u_alias) = accs
    fund, hold = Decimal("20.00"), Decimal("5.00")
    ext_dir = "debit" if c.r2 and ms_dt(t_open).date() > date(2026, 7, 13) else "credit"
    ext_after = fund if ext_dir == "debit" else -fund
    tx1 = c.id_at(t_fund)
    _insert_transaction(c, tx1, org, led, code, fund, "APPROVED", t_fund)
    _insert_op(c, tx1, org, led, code, "DEBIT", "debit", fund, e_acc, e_alias, e_bal, Decimal(0), ext_after, 0, t_fund)
    _insert_op(c, tx1, org, led, code, "CREDIT", "credit", fund, u_acc, u_alias, u_bal, Decimal(0), fund, 0, t_fund)
    tx2 = c.id_at(t_hold)
    body = {"description": "held payment", "pending": True,
            "send": {"asset": code, "value": "5.00",
                     "source": {"from": [{"accountAlias": u_alias, "amount": {"asset": code, "value": "5.00"}}]},
                     "distribute": {"to": [{"accountAlias": e_alias, "amount": {"asset": code, "value": "5.00"}}]}}}
    _insert_transaction(c, tx2, org, led, code, hold, "PENDING", t_hold, body=body if with_body else None)
    _insert_op(c, tx2, org, led, code, "ON_HOLD", "debit", hold, u_acc, u_alias, u_bal, fund, fund - hold, 1, t_hold,
               on_hold=(Decimal(0), hold))
    c.txn.execute("UPDATE balance SET available = %s, version = 1, updated_at = %s WHERE id = %s",
                  (ext_after, ms_dt(t_fund), e_bal))
    c.txn.execute("UPDATE balance SET available = %s, on_hold = %s, version = 2, updated_at = %s WHERE id = %s",
                  (fund - hold, hold, ms_dt(t_hold), u_bal))
    c.claim(tx1, tx2, e_bal, u_bal, e_acc, u_acc)
    return tx2


def f_pending_without_body(c: Ctx, name: str) -> None:
    """§8.4: a PENDING transaction whose body is NULL (body must be set iff PENDING): a generated hold when the
    window has one, else a new asset's self-consistent hold written without its body."""
    rows = c.transactions("t.status = 'PENDING' AND t.body IS NOT NULL")
    if rows:
        tx, at = rows[0][0], uuid7_ms(rows[0][0])
        c.txn.execute('UPDATE "transaction" SET body = NULL WHERE id = %s', (tx,))
        c.claim(tx)
    else:
        at = c.new_ms()
        tx = _mini_hold(c, "NOK", at - HOUR_MS, at, with_body=False)
    c.add("orphans", "pending_body_mismatch", tx, at)
    c.note(transaction_id=tx)


def f_ageing_pending_hold(c: Ctx, name: str) -> None:
    """§6.3-f (warning): a hold older than the 7-day SLA — a new asset whose account was funded 9 days ago and
    put 5.00 on hold 8 days ago (PENDING with body, one ON_HOLD operation; every balance invariant holds)."""
    t2 = c.now_ms - 8 * DAY_MS
    tx = _mini_hold(c, "SEK", t2 - DAY_MS, t2)
    c.add("orphans", "ageing_pending_hold", tx, t2)
    c.note(transaction_id=tx)


# ====================================================================== settlement & backup queue (§6.6)
def _field(org: str, led: str, tx: str) -> str:
    return f"transaction:{{transactions}}:{org}:{led}:{tx}"


def _entry(tx: str, org: str, led: str, code: str, amount: Decimal, ms: int) -> bytes:
    return orjson.dumps({
        "header_id": uuid.UUID(tx).hex, "transaction_id": tx, "organization_id": org, "ledger_id": led,
        "balances": [], "parserDSL": {"send": {"asset": code, "value": dec(amount)}}, "ttl": go_time(ms),
        "validate": {"asset": code, "value": dec(amount), "pending": False, "sources": [], "destinations": []},
        "transaction_status": "CREATED", "transaction_date": go_time(ms)})


def f_backup_entry_without_transaction(c: Ctx, name: str) -> None:
    """A backup-queue entry 3 h old whose transaction never reached PostgreSQL: lost write (orphans) and, being
    older than the hard grace, a stuck entry (settlement)."""
    led, org = c.rng.choice(c.ledgers)
    at = min(c.new_ms(), c.now_ms - 3 * HOUR_MS)
    tx = c.id_at(at)
    f = _field(org, led, tx)
    c.redis.hset(BACKUP_QUEUE, f, _entry(tx, org, led, c.assets[led][0], Decimal("17.50"), at))
    c.claim(tx)
    c.add("orphans", "backup_entry_without_transaction", f, at)
    c.add("settlement", "stuck_backup_entry", f, at)
    c.note(field=f)


def f_stuck_backup_entry(c: Ctx, name: str) -> None:
    """§8.4: a backup-queue entry older than 2 h for a transaction that is settled in PostgreSQL."""
    for tx in c.simple_transfers():
        at = uuid7_ms(tx[0])
        if at > c.now_ms - 2 * HOUR_MS - 10 * MIN_MS:
            continue
        f = _field(tx[1], tx[2], tx[0])
        c.redis.hset(BACKUP_QUEUE, f, _entry(tx[0], tx[1], tx[2], tx[3], tx[4], at))
        c.claim(tx[0])
        c.add("settlement", "stuck_backup_entry", f, at)
        c.note(field=f)
        return
    raise FaultSkipped("no transfer older than 2 h")


def f_backup_entry_age_unknown(c: Ctx, name: str) -> None:
    """DESIGN §7: an entry with no ttl whose id is not a UUIDv7 of a known transaction — age unknown."""
    led, org = c.rng.choice(c.ledgers)
    tx = str(uuid.UUID(int=c.rng.getrandbits(128), version=4))
    f = _field(org, led, tx)
    c.redis.hset(BACKUP_QUEUE, f, orjson.dumps({"balances": []}))
    c.claim(tx)
    c.add("settlement", "backup_entry_age_unknown", f, c.now_ms - 3 * HOUR_MS)
    c.note(field=f)


def f_quarantined_transaction(c: Ctx, name: str) -> None:
    """R2: a poison backup-queue record moved to transaction_backup_quarantine after three failed cycles."""
    if not c.r2:
        raise FaultSkipped("transaction_backup_quarantine exists at R2 only")
    led, org = c.rng.choice(c.ledgers)
    at = min(c.new_ms(), c.now_ms - 4 * HOUR_MS)
    tx = c.id_at(at)
    f = _field(org, led, tx)
    c.txn.execute("INSERT INTO transaction_backup_quarantine (id, organization_id, ledger_id, transaction_id, "
                  "redis_key, payload, failure_reason, attempts, first_failed_at, quarantined_at) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s, 3, %s, %s)",
                  (c.id_at(at + 90 * MIN_MS), org, led, tx, f, orjson.dumps({"balances": []}), "nil validate field",
                   ms_dt(at + 30 * MIN_MS), ms_dt(at + 90 * MIN_MS)))
    c.claim(tx)
    c.add("settlement", "quarantined_transaction", tx, at)
    c.note(transaction_id=tx)


# ====================================================================== referential (§6.4)
def _some_account(c: Ctx, external: bool = False) -> Bal:
    for b in c.cold_balances(key="default", external=external):
        return b
    raise FaultSkipped("no free account")


def f_account_ledger_org_mismatch(c: Ctx, name: str) -> None:
    """§6.4: a new account whose organization is not its ledger's; its balance (under the right org) then
    disagrees with it, and the per-ledger account/balance counts split across the two organizations."""
    led, org = c.ledger_pick()
    other = next(o for o in c.orgs if o != org)
    at = c.new_ms()
    acc_id, bal_id = c.id_at(at), c.id_at(at + 1)
    code = c.assets[led][0]
    alias = f"@misfiled-{c.rng.randrange(10**6):06d}"
    _insert_account(c, acc_id, other, led, code, alias, "deposit", at)
    _insert_balance(c, bal_id, org, led, acc_id, alias, code, "deposit", at + 1)
    c.claim(acc_id, bal_id)
    c.add("referential", "account_ledger_org_mismatch", acc_id, at)
    c.add("referential", "balance_account_mismatch", bal_id, at)
    c.touch_ledger(org, led, at)
    c.touch_ledger(other, led, at)
    c.note(account_id=acc_id, balance_id=bal_id)


def _other_ledger(c: Ctx, led: str) -> str:
    return next(x for x, _ in c.ledgers if x != led)


def f_account_parent_mismatch(c: Ctx, name: str) -> None:
    """§6.4: the parent account lives in another ledger."""
    b = _some_account(c)
    parent = next(x for x in c.balances if x.ledger != b.ledger and x.key == "default")
    c.onb.execute("UPDATE account SET parent_account_id = %s WHERE id = %s", (parent.account_id, b.account_id))
    c.claim(b.account_id)
    c.add("referential", "account_parent_mismatch", b.account_id, uuid7_ms(b.account_id))
    c.note(account_id=b.account_id, parent=parent.account_id)


def _reparent(c: Ctx, table: str, column: str, kind: str) -> None:
    b = _some_account(c)
    other = c.onb.execute(f"SELECT id::text FROM {table} WHERE ledger_id <> %s ORDER BY id LIMIT 1", (b.ledger,)).fetchone()
    if not other:
        raise FaultSkipped(f"no {table} in another ledger")
    c.onb.execute(f"UPDATE account SET {column} = %s WHERE id = %s", (other[0], b.account_id))
    c.claim(b.account_id)
    c.add("referential", kind, b.account_id, uuid7_ms(b.account_id))
    c.note(account_id=b.account_id, **{column: other[0]})


def f_account_portfolio_mismatch(c: Ctx, name: str) -> None:
    """§6.4: the account's portfolio belongs to another ledger."""
    _reparent(c, "portfolio", "portfolio_id", "account_portfolio_mismatch")


def f_account_segment_mismatch(c: Ctx, name: str) -> None:
    """§6.4: the account's segment belongs to another ledger."""
    _reparent(c, "segment", "segment_id", "account_segment_mismatch")


def f_account_asset_missing(c: Ctx, name: str) -> None:
    """§6.4: a live account (with its default balance) whose asset code is no asset of its ledger."""
    led, org = c.rng.choice(c.ledgers)
    at = c.new_ms()
    acc_id, bal_id = c.id_at(at), c.id_at(at + 1)
    alias = f"@gold-{c.rng.randrange(10**6):06d}"
    _insert_account(c, acc_id, org, led, "XAU", alias, "deposit", at)
    _insert_balance(c, bal_id, org, led, acc_id, alias, "XAU", "deposit", at + 1)
    c.claim(acc_id, bal_id)
    c.add("referential", "account_asset_missing", acc_id, at)
    c.note(account_id=acc_id)


def f_asset_without_external_account(c: Ctx, name: str) -> None:
    """§6.4: a live asset whose @external/<code> account was never created."""
    for led, org in c.shuffled(c.ledgers):
        if "JPY" in c.assets.get(led, []) or not c.free(led + "JPY"):
            continue
        at = c.new_ms()
        asset_id = c.id_at(at)
        c.onb.execute("INSERT INTO asset (id, name, type, code, status, ledger_id, organization_id, created_at, "
                      "updated_at) VALUES (%s, 'Japanese Yen', 'currency', 'JPY', 'ACTIVE', %s, %s, %s, %s)",
                      (asset_id, led, org, ms_dt(at), ms_dt(at)))
        c.claim(led + "JPY")
        c.assets.setdefault(led, []).append("JPY")
        c.add("referential", "asset_without_external_account", _ent(org, led, "JPY"), at)
        c.note(asset_id=asset_id)
        return
    raise FaultSkipped("every ledger has JPY")


def f_deleted_ledger_with_live_child(c: Ctx, name: str) -> None:
    """§6.4 (warning): a soft-deleted ledger that still has a live segment."""
    org = c.orgs[0]
    at = c.new_ms()
    led_id, seg_id = c.id_at(at), c.id_at(at + 1000)
    c.onb.execute("INSERT INTO ledger (id, name, organization_id, status, created_at, updated_at, deleted_at) "
                  "VALUES (%s, 'closed ledger', %s, 'ACTIVE', %s, %s, %s)",
                  (led_id, org, ms_dt(at), ms_dt(at), ms_dt(at + HOUR_MS)))
    c.onb.execute("INSERT INTO segment (id, name, ledger_id, organization_id, status, created_at, updated_at) "
                  "VALUES (%s, 'orphaned segment', %s, %s, 'ACTIVE', %s, %s)", (seg_id, led_id, org, ms_dt(at + 1000),
                                                                               ms_dt(at + 1000)))
    c.claim(led_id, seg_id)
    c.add("referential", "live_child_of_deleted_parent", f"segment/{seg_id}", at + 1000)
    c.note(ledger_id=led_id, segment_id=seg_id)


def f_transaction_route_missing(c: Ctx, name: str) -> None:
    """§6.4: transaction.route (and R2 route_id) names no transaction_route."""
    tx = c.rng.choice(c.simple_transfers() or [None]) or None
    if tx is None:
        raise FaultSkipped("no transfer")
    rid = c.id_at(uuid7_ms(tx[0]) - DAY_MS)
    extra = ", route_id = %s::uuid" if c.r2 else ""
    c.txn.execute(f'UPDATE "transaction" SET route = %s{extra} WHERE id = %s', (rid, *( [rid] if c.r2 else []), tx[0]))
    c.claim(tx[0])
    c.add("referential", "transaction_route_missing", tx[0], uuid7_ms(tx[0]))
    c.note(transaction_id=tx[0], route=rid)


def f_operation_route_missing(c: Ctx, name: str) -> None:
    """§6.4: operation.route (and R2 route_id) names no operation_route."""
    tx = c.rng.choice(c.simple_transfers() or [None]) or None
    if tx is None:
        raise FaultSkipped("no transfer")
    op = c.tx_ops(tx[0])[0]
    rid = c.id_at(uuid7_ms(tx[0]) - DAY_MS)
    extra = ", route_id = %s::uuid" if c.r2 else ""
    c.txn.execute(f"UPDATE operation SET route = %s{extra} WHERE id = %s", (rid, *([rid] if c.r2 else []), op[0]))
    c.claim(tx[0])
    c.add("referential", "operation_route_missing", op[0], uuid7_ms(op[0]))
    c.note(operation_id=op[0], route=rid)


def f_balance_account_missing(c: Ctx, name: str) -> None:
    """§6.4 rule 1: a live default balance whose account_id has no account row (the ledger's live default
    balances then outnumber its live accounts)."""
    led, org = c.ledger_pick()
    at = c.new_ms()
    bal_id, acc_id = c.id_at(at + 1), c.id_at(at)
    code = c.assets[led][0]
    _insert_balance(c, bal_id, org, led, acc_id, f"@vanished-{c.rng.randrange(10**6):06d}", code, "deposit", at + 1)
    c.claim(bal_id)
    c.add("referential", "balance_account_missing", bal_id, at + 1)
    c.touch_ledger(org, led, at)
    c.note(balance_id=bal_id)


def f_account_deleted_balance_live(c: Ctx, name: str) -> None:
    """§8.4 / §5.5: an account soft-deleted while its balances stay live — Midaz v3 does this by design
    (warning); at R2 DeleteAccount deletes the balances, so it is an error and the counts disagree."""
    with_meta = {d["entity_id"] for d in c.monb["account"].find({}, {"entity_id": 1})}
    for b in c.cold_balances(key="default", fresh_ledger=c.r2):
        if b.account_id in with_meta:
            continue
        last = c.last_op(b)
        at = (uuid7_ms(last.id) if last else uuid7_ms(b.id)) + 30 * MIN_MS
        if at > c.now_ms - SETTLED_MARGIN_MS or (c.fault in c.on_day and not c.in_window(c.id_at(at))):
            continue
        c.onb.execute("UPDATE account SET deleted_at = %s WHERE id = %s", (ms_dt(at), b.account_id))
        sev = "error" if c.r2 else "warning"
        for x in c.balances:
            if x.account_id == b.account_id:
                c.claim(x.id)
                c.add("referential", "balance_account_deleted", x.id, at, severity=sev)
        c.claim(b.account_id)
        if c.r2:  # at R1 the account's live balances are left out of the count invariant (DESIGN §7)
            c.touch_ledger(b.org, b.ledger, at)
        c.note(account_id=b.account_id)
        return
    raise FaultSkipped("no cold account without metadata")


def f_balance_account_mismatch(c: Ctx, name: str) -> None:
    """§6.4 rule 1: the balance's account_type differs from its account's (immutable) type."""
    for b in c.cold_balances(key="default"):
        new_type = "savings" if b.account_type != "savings" else "deposit"
        c.txn.execute("UPDATE balance SET account_type = %s WHERE id = %s", (new_type, b.id))
        c.claim(b.id, b.account_id)
        c.add("referential", "balance_account_mismatch", b.id, uuid7_ms(b.id))
        c.note(balance_id=b.id, account_type=new_type)
        return
    raise FaultSkipped("no cold balance")


def f_account_without_default_balance(c: Ctx, name: str) -> None:
    """§8.4: a live account with no default balance (the gRPC CreateBalance never landed)."""
    led, org = c.ledger_pick()
    at = c.new_ms()
    acc_id = c.id_at(at)
    _insert_account(c, acc_id, org, led, c.assets[led][0], f"@unfunded-{c.rng.randrange(10**6):06d}", "deposit", at)
    c.claim(acc_id)
    c.add("referential", "account_default_balance_missing", acc_id, at)
    c.touch_ledger(org, led, at)
    c.note(account_id=acc_id)


def f_account_default_balance_duplicate(c: Ctx, name: str) -> None:
    """§6.4 rule 2: two live default balances for one account. R2's unique index covers
    (org, ledger, account, asset, key), so there the second row carries another asset code — and so also
    disagrees with its account."""
    b = c.cold_balances(key="default", fresh_ledger=True)[0]
    at = c.new_ms()
    new_id = c.id_at(at)
    asset = b.asset if not c.r2 else next((x for x in c.assets.get(b.ledger, []) if x != b.asset), "XAG")
    _insert_balance(c, new_id, b.org, b.ledger, b.account_id, b.alias, asset, b.account_type, at)
    c.claim(b.id, b.account_id, new_id)
    c.add("referential", "account_default_balance_duplicate", b.account_id, at)
    c.add("balances", "duplicate_balance", _ent(b.org, b.ledger, f"{b.alias}#default"), at)
    if c.r2:
        c.add("referential", "balance_account_mismatch", new_id, at)
    c.touch_ledger(b.org, b.ledger, at)
    c.note(account_id=b.account_id, balance_id=new_id)


def f_unknown_ledger(c: Ctx, name: str) -> None:
    """§6.4 rule 3: a transaction-database row (a transaction route) whose ledger does not exist."""
    org = c.orgs[0]
    at = c.new_ms()
    rid, led = c.id_at(at), c.id_at(at - DAY_MS)
    c.txn.execute("INSERT INTO transaction_route (id, organization_id, ledger_id, title, created_at, updated_at) "
                  "VALUES (%s, %s, %s, 'ghost route', %s, %s)", (rid, org, led, ms_dt(at), ms_dt(at)))
    c.claim(rid)
    c.add("referential", "unknown_ledger", f"transaction_route/{rid}", at)
    c.note(transaction_route_id=rid)


def f_transaction_asset_unknown(c: Ctx, name: str) -> None:
    """§6.4 rule 4: the transaction's asset is no asset of its ledger (its operations then differ from it)."""
    tx = c.rng.choice(c.simple_transfers() or [None]) or None
    if tx is None:
        raise FaultSkipped("no transfer")
    c.txn.execute("UPDATE \"transaction\" SET asset_code = 'XPT' WHERE id = %s", (tx[0],))
    c.claim(tx[0])
    at = uuid7_ms(tx[0])
    c.add("referential", "transaction_asset_unknown", tx[0], at)
    c.add("double_entry", "operation_asset_mismatch", tx[0], at)
    c.note(transaction_id=tx[0])


def f_transaction_asset_deleted(c: Ctx, name: str) -> None:
    """§6.4 rule 4 (warning): a transaction of an asset soft-deleted later (a new asset with an inflow). Its two
    accounts (external and user) then hold an asset that is no longer live."""
    at = c.new_ms()
    asset_id, org, led, accs = _mini_asset(c, "CHF", 1, at)
    (e_acc, e_bal, e_alias), (u_acc, u_bal, u_alias) = accs
    amount = Decimal("10.00")
    tms = at + MIN_MS
    tx_id = c.id_at(tms)
    ext_dir = "debit" if c.r2 and ms_dt(at).date() > date(2026, 7, 13) else "credit"
    ext_after = amount if ext_dir == "debit" else -amount
    _insert_transaction(c, tx_id, org, led, "CHF", amount, "APPROVED", tms)
    _insert_op(c, tx_id, org, led, "CHF", "DEBIT", "debit", amount, e_acc, e_alias, e_bal, Decimal(0), ext_after, 0, tms)
    _insert_op(c, tx_id, org, led, "CHF", "CREDIT", "credit", amount, u_acc, u_alias, u_bal, Decimal(0), amount, 0, tms)
    c.txn.execute("UPDATE balance SET available = %s, version = 1, updated_at = %s WHERE id = %s", (ext_after, ms_dt(tms), e_bal))
    c.txn.execute("UPDATE balance SET available = %s, version = 1, updated_at = %s WHERE id = %s", (amount, ms_dt(tms), u_bal))
    c.onb.execute("UPDATE asset SET deleted_at = %s WHERE id = %s", (ms_dt(tms + HOUR_MS), asset_id))
    c.claim(tx_id, e_bal, u_bal, e_acc, u_acc)
    c.add("referential", "transaction_asset_deleted", tx_id, tms)
    c.add("referential", "account_asset_missing", e_acc, at)
    c.add("referential", "account_asset_missing", u_acc, at)
    c.note(transaction_id=tx_id, asset_id=asset_id)


def f_asset_rate_asset_unknown(c: Ctx, name: str) -> None:
    """§6.4 rule 4: an asset rate converting to a code that is no asset of its ledger."""
    row = c.txn.execute('SELECT id::text, ledger_id::text FROM asset_rate ORDER BY id').fetchall()
    row = [r for r in row if c.free(r[0]) and "KRW" not in c.assets.get(r[1], [])]
    if not row:
        raise FaultSkipped("no asset rate")
    rid = row[0][0]
    c.txn.execute('UPDATE asset_rate SET "to" = \'KRW\' WHERE id = %s', (rid,))
    c.claim(rid)
    c.add("referential", "asset_rate_asset_unknown", rid, uuid7_ms(rid))
    c.note(asset_rate_id=rid)


def f_operation_account_mismatch(c: Ctx, name: str) -> None:
    """§6.4 rule 5: an operation's alias differs from its account's (a NOTED operation, so balances do not move;
    the operation then also disagrees with its balance row, 6.3-c)."""
    tx = _noted(c)
    op = c.tx_ops(tx[0])[0]
    c.txn.execute("UPDATE operation SET account_alias = account_alias || '-old' WHERE id = %s", (op[0],))
    c.claim(tx[0])
    at = uuid7_ms(op[0])
    c.add("referential", "operation_account_mismatch", op[0], at)
    c.add("orphans", "operation_balance_mismatch", op[0], at)
    c.note(operation_id=op[0])


def f_account_type_unknown(c: Ctx, name: str) -> None:
    """§6.4 rule 6: in a ledger that validates account types, an account whose type is no account_type key
    (R2: settings.accounting.validateAccountType; R1: MIDAZ_ACCOUNT_TYPE_VALIDATION, see manifest.settings).
    System @external accounts are not subject to the validation."""
    led, org = c.ledgers[0]
    at = c.new_ms()
    acc_id, bal_id = c.id_at(at), c.id_at(at + 1)
    code = c.assets[led][0]
    alias = f"@escrow-{c.rng.randrange(10**6):06d}"
    _insert_account(c, acc_id, org, led, code, alias, "escrow", at)
    _insert_balance(c, bal_id, org, led, acc_id, alias, code, "escrow", at + 1)
    if c.r2:
        c.onb.execute("UPDATE ledger SET settings = jsonb_set(COALESCE(settings, '{}'::jsonb), '{accounting}', "
                      "COALESCE(settings->'accounting', '{}'::jsonb) || '{\"validateAccountType\": true}'::jsonb) "
                      "WHERE id = %s", (led,))
    else:
        c.manifest.settings["MIDAZ_ACCOUNT_TYPE_VALIDATION"] = f"{org}:{led}"
    c.claim(acc_id, bal_id)
    c.add("referential", "account_type_unknown", acc_id, at)
    c.note(account_id=acc_id, ledger_id=led)


# ====================================================================== redis (§6.5)
def _hot(c: Ctx, n: int, same_group: bool = False) -> list[Bal]:
    cands = c.in_sync_hot()
    cands.sort(key=lambda b: b.group in c.group_touch)  # a fresh ledger/asset first (stable: age order kept)
    if same_group:
        groups: dict[tuple[str, str, str], list[Bal]] = {}
        for b in cands:
            groups.setdefault(b.group, []).append(b)
        for members in groups.values():
            funded = [b for b in members if b.available > 1 and b.account_type != "external"]
            if len(members) >= n and funded:
                first = funded[0]
                return [first] + [b for b in members if b is not first][: n - 1]
    if len(cands) < n:
        raise FaultSkipped("not enough hot, in-sync Redis keys older than the soft grace (generate more operations)")
    return cands[:n]


def _set_value(c: Ctx, b: Bal, value: dict[str, Any] | bytes) -> None:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    c.redis.set(b.redis_key, raw, keepttl=True)


def _key_at(c: Ctx, b: Bal) -> int:
    """When the key was last written (PostgreSQL was synced with that write)."""
    return b.updated_ms


def _redis_op_mismatch(c: Ctx, b: Bal, value: dict[str, Any], at: int) -> None:
    """The 6.5 high-water rule: amounts equal the last operation, Version >= (R1) / = (R2) its version."""
    last = c.last_op(b)
    if last is None:
        return
    ok = Decimal(value["Available"]) == last.av_after and Decimal(value["OnHold"]) == last.oh_after and (
        int(value["Version"]) == last.v_after if c.r2 else int(value["Version"]) >= last.v_after)
    if not ok:
        c.add("redis_sync", "redis_operation_mismatch", b.redis_key, at)


def f_redis_version_behind(c: Ctx, name: str) -> None:
    """§8.4: Redis holds a lower Version than PostgreSQL (a stale re-seed), same amounts."""
    b = _hot(c, 1)[0]
    value = dict(c.hot[b.id][1] or {})
    value["Version"] = b.version - 1
    _set_value(c, b, value)
    at = _key_at(c, b)
    c.claim(b.id, b.redis_key)
    c.add("redis_sync", "redis_version_behind", b.redis_key, at)
    _redis_op_mismatch(c, b, value, at)
    c.note(redis_key=b.redis_key)


def f_redis_amount_divergent(c: Ctx, name: str) -> None:
    """§6.5: same Version in Redis and PostgreSQL, Redis Available one unit higher (the effective balance
    moves, so the ledger's zero sum breaks too)."""
    b = _hot(c, 1)[0]
    value = dict(c.hot[b.id][1] or {})
    value["Available"] = dec(Decimal(value["Available"]) + 1)
    _set_value(c, b, value)
    at = _key_at(c, b)
    c.claim(b.id, b.redis_key)
    c.add("redis_sync", "redis_amount_divergent", b.redis_key, at)
    _redis_op_mismatch(c, b, value, at)
    c.touch_group(b.group, at)
    c.note(redis_key=b.redis_key)


def _redis_transfer(c: Ctx, keep_schedule: bool) -> list[tuple[Bal, dict[str, Any], int]]:
    """A transfer applied in Redis only (Lua ran, the BTO write was lost), 20-45 min ago: both keys ahead."""
    a, b = _hot(c, 2, same_group=True)
    va, vb = dict(c.hot[a.id][1] or {}), dict(c.hot[b.id][1] or {})
    amount = (Decimal(va["Available"]) / 3).quantize(Decimal("0.01")) or Decimal("0.01")
    if a.account_type == "external" or b.group != a.group:
        raise FaultSkipped("no two in-sync hot keys of one ledger and asset")
    va.update(Available=dec(Decimal(va["Available"]) - amount), Version=int(va["Version"]) + 1)
    sb = -1 if b.direction == "debit" else 1
    vb.update(Available=dec(Decimal(vb["Available"]) + sb * amount), Version=int(vb["Version"]) + 1)
    out = []
    for bal, val in ((a, va), (b, vb)):
        _set_value(c, bal, val)
        if not keep_schedule:
            c.redis.zrem(SCHEDULE_R1, bal.redis_key)
            c.redis.zrem(SCHEDULE_R2, bal.redis_key)
        elif c.r2:
            c.redis.zadd(SCHEDULE_R2, {bal.redis_key: c.now.timestamp()})
        c.claim(bal.id, bal.redis_key)
        out.append((bal, val, _key_at(c, bal)))
    return out


def f_redis_ahead_unscheduled(c: Ctx, name: str) -> None:
    """§6.5: Redis ahead of PostgreSQL past the grace with no schedule entry (and TTL >= 600): the update will
    be lost at expiry. A transfer applied only in Redis, so both keys also disagree with their last operation."""
    for bal, val, at in _redis_transfer(c, keep_schedule=False):
        c.add("redis_sync", "redis_ahead_unscheduled", bal.redis_key, at)
        _redis_op_mismatch(c, bal, val, at)
        c.note(**{bal.id: bal.redis_key})


def f_redis_ahead_expiring(c: Ctx, name: str) -> None:
    """§8.4 (R1 critical): Redis ahead, unscheduled, TTL < 600. The keys get TTL 599 s: run the check within
    ~10 minutes of the injection, or the keys expire and the evidence with them."""
    if c.r2:
        raise FaultSkipped("the TTL < 600 rule is R1's (R2 syncs immediately)")
    for bal, val, _ in _redis_transfer(c, keep_schedule=False):
        c.redis.expire(bal.redis_key, 599)
        at = c.now_ms - (3600 - 599) * 1000
        c.add("redis_sync", "redis_ahead_expiring", bal.redis_key, at)
        _redis_op_mismatch(c, bal, val, at)
        c.note(**{bal.id: bal.redis_key})


def f_redis_operation_mismatch(c: Ctx, name: str) -> None:
    """§6.5 / DESIGN §7: Redis ahead with a schedule entry (so in flight as far as syncing goes), but its amounts
    match no operation and no backup-queue entry names the balance: the BTO write was lost."""
    for bal, val, at in _redis_transfer(c, keep_schedule=True):
        _redis_op_mismatch(c, bal, val, at)
        c.note(**{bal.id: bal.redis_key})


def f_redis_key_unparseable(c: Ctx, name: str) -> None:
    """§6.5: a key under the balance prefix that does not follow <org>:<ledger>:<alias>#<key>."""
    key = f"{REDIS_BALANCE_PREFIX}corrupt-{c.rng.randrange(10**6):06d}"
    c.redis.set(key, orjson.dumps({"ID": str(uuid.UUID(int=0)), "Available": "0", "OnHold": "0", "Version": 1}),
                ex=2400)
    c.claim(key)
    c.add("redis_sync", "redis_key_unparseable", key, c.now_ms - 1200 * 1000)
    c.note(redis_key=key)


def f_redis_value_unparseable(c: Ctx, name: str) -> None:
    """§6.5: a well-formed key (of a consistent balance) whose value is not balance JSON."""
    b = c.cold_balances(key="default")[0]
    c.redis.set(b.redis_key, b'{"ID": "' + b.id.encode() + b'", "Available": 12.5.0', ex=2400)
    c.claim(b.id, b.redis_key)
    c.add("redis_sync", "redis_value_unparseable", b.redis_key, c.now_ms - 1200 * 1000)
    c.note(redis_key=b.redis_key)


def f_redis_balance_unknown(c: Ctx, name: str) -> None:
    """§6.5: a key for an alias with no PostgreSQL balance (zero amounts, so no sum moves)."""
    led, org = c.rng.choice(c.ledgers)
    alias = f"@ghost-{c.rng.randrange(10**6):06d}"
    key = f"{REDIS_BALANCE_PREFIX}{org}:{led}:{alias}#default"
    value = {"ID": c.id_at(c.now_ms - DAY_MS), "Available": "0", "OnHold": "0", "Version": 3,
             "AccountType": "deposit", "AllowSending": 1, "AllowReceiving": 1, "AssetCode": c.assets[led][0],
             "AccountID": c.id_at(c.now_ms - DAY_MS), "Key": "default", "Alias": f"0#{alias}#default"}
    c.redis.set(key, orjson.dumps(value), ex=2400)
    c.claim(key)
    c.add("redis_sync", "redis_balance_unknown", key, c.now_ms - 1200 * 1000)
    c.note(redis_key=key)


def f_redis_key_for_deleted_balance(c: Ctx, name: str) -> None:
    """§6.5 (warning): a live Redis key holding a soft-deleted (zero) balance; R1's DELETE balance does not
    look at Redis."""
    b = c.cold_balances(key="default")[0]
    at = c.new_ms()
    bal_id = c.id_at(at)
    _insert_balance(c, bal_id, b.org, b.ledger, b.account_id, b.alias, b.asset, b.account_type, at, key="closed",
                    deleted=at + HOUR_MS)
    key = f"{REDIS_BALANCE_PREFIX}{b.org}:{b.ledger}:{b.alias}#closed"
    value = {"ID": bal_id, "Available": "0", "OnHold": "0", "Version": 0, "AccountType": b.account_type,
             "AllowSending": 1, "AllowReceiving": 1, "AssetCode": b.asset, "AccountID": b.account_id, "Key": "closed",
             "Alias": f"0#{b.alias}#closed"}
    if c.r2:
        value.update(Direction="credit", OverdraftUsed="0", AllowOverdraft=0, OverdraftLimitEnabled=0,
                     OverdraftLimit="0", BalanceScope="transactional")
    c.redis.set(key, orjson.dumps(value), ex=2400)
    c.claim(b.id, b.account_id, bal_id)
    c.add("redis_sync", "redis_key_for_deleted_balance", key, c.now_ms - 1200 * 1000)
    c.note(redis_key=key, balance_id=bal_id)


def f_schedule_member_leaked(c: Ctx, name: str) -> None:
    """§6.5 step 5 (warning): a schedule member whose balance key no longer exists (not yet due)."""
    b = c.cold_balances(key="default")[0]
    if c.r2:
        c.redis.zadd(SCHEDULE_R2, {b.redis_key: c.now.timestamp()})
    else:
        c.redis.zadd(SCHEDULE_R1, {b.redis_key: c.now.timestamp() + 1200})
    c.claim(b.id, b.redis_key)
    c.add("redis_sync", "schedule_member_leaked", b.redis_key, c.now_ms - 1200 * 1000)
    c.note(redis_key=b.redis_key)


def f_schedule_worker_stuck(c: Ctx, name: str) -> None:
    """§6.5 step 5: a member of an in-sync key overdue by 30 minutes with no lock: the sync worker is stuck."""
    b = _hot(c, 1)[0]
    c.redis.zadd(SCHEDULE_R2 if c.r2 else SCHEDULE_R1, {b.redis_key: c.now.timestamp() - 1800})
    c.claim(b.id, b.redis_key)
    c.add("redis_sync", "schedule_worker_stuck", b.redis_key, c.now_ms - 1800 * 1000)
    c.note(redis_key=b.redis_key)


# ====================================================================== metadata (§6.7)
def _doc_entity(c: Ctx, db: Any, coll: str, entity_id: str) -> str:
    return f"{db.name}.{coll}/{entity_id}"


def _pick_doc(c: Ctx, db: Any, coll: str) -> dict[str, Any]:
    docs = sorted(db[coll].find({}, {"entity_id": 1, "created_at": 1, "updated_at": 1}), key=lambda d: d["entity_id"])
    docs = [d for d in docs if c.free(d["entity_id"]) and d["entity_id"] not in c.backup_tx]
    lo, hi = c.window_ms()
    docs = [d for d in docs if _uuid_ms(d["entity_id"]) is not None
            and (coll not in ("transaction", "operation") or lo <= (_uuid_ms(d["entity_id"]) or 0) < hi)]
    if not docs:
        raise FaultSkipped(f"no {coll} metadata document")
    doc = c.rng.choice(docs)
    c.claim(doc["entity_id"])
    return doc


def _uuid_ms(value: Any) -> int | None:
    try:
        return uuid7_ms(str(value))
    except ValueError:
        return None


def _meta_at(doc: dict[str, Any]) -> int:
    try:
        return uuid7_ms(doc["entity_id"])
    except (ValueError, KeyError):
        return dt_ms(doc["created_at"])


def f_metadata_invalid_entity_id(c: Ctx, name: str) -> None:
    """§6.7: a metadata document whose entity_id is not a UUID."""
    at = c.new_ms()
    eid = f"txn-{c.rng.randrange(10**6):06d}"
    c.mtxn["transaction"].insert_one({"entity_id": eid, "entity_name": "Transaction", "metadata": {"k": "v"},
                                      "created_at": ms_dt(at), "updated_at": ms_dt(at)})
    c.claim(eid)
    c.add("metadata", "metadata_invalid_entity_id", _doc_entity(c, c.mtxn, "transaction", eid), at)
    c.touch_coll(c.mtxn.name, "transaction", at)
    c.note(entity_id=eid)


def f_metadata_orphan(c: Ctx, name: str) -> None:
    """§8.4: a metadata document for a transaction that does not exist."""
    at = c.new_ms()
    eid = c.id_at(at)
    c.mtxn["transaction"].insert_one({"entity_id": eid, "entity_name": "Transaction", "metadata": {"k": "v"},
                                      "created_at": ms_dt(at + 5), "updated_at": ms_dt(at + 5)})
    c.claim(eid)
    c.add("metadata", "metadata_orphan", _doc_entity(c, c.mtxn, "transaction", eid), at)
    c.touch_coll(c.mtxn.name, "transaction", at)
    c.note(entity_id=eid)


def f_metadata_duplicate(c: Ctx, name: str) -> None:
    """§8.4: a second metadata document for one transaction (R1 retry artefact: warning; R2: error)."""
    doc = _pick_doc(c, c.mtxn, "transaction")
    full = c.mtxn["transaction"].find_one({"entity_id": doc["entity_id"]}, {"_id": 0})
    c.mtxn["transaction"].insert_one(dict(full or {}))
    at = _meta_at(doc)
    c.add("metadata", "metadata_duplicate", _doc_entity(c, c.mtxn, "transaction", doc["entity_id"]), at,
          severity="error" if c.r2 else "warning")
    c.touch_coll(c.mtxn.name, "transaction", at)
    c.note(entity_id=doc["entity_id"])


def _meta_update(c: Ctx, db: Any, coll: str, update: dict[str, Any], kind: str) -> None:
    doc = _pick_doc(c, db, coll)
    db[coll].update_one({"entity_id": doc["entity_id"]}, update)
    c.add("metadata", kind, _doc_entity(c, db, coll, doc["entity_id"]), _meta_at(doc))
    c.note(entity_id=doc["entity_id"], collection=f"{db.name}.{coll}")


def f_metadata_entity_name_mismatch(c: Ctx, name: str) -> None:
    """§6.7: entity_name is not the collection's type name."""
    _meta_update(c, c.monb, "account", {"$set": {"entity_name": "Acount"}}, "metadata_entity_name_mismatch")


def f_metadata_not_object(c: Ctx, name: str) -> None:
    """§6.7: metadata is a string, not an object."""
    _meta_update(c, c.mtxn, "transaction", {"$set": {"metadata": "priority=high"}}, "metadata_not_object")


def f_metadata_nested_value(c: Ctx, name: str) -> None:
    """§8.4: a nested object inside metadata (Midaz allows flat scalars only)."""
    _meta_update(c, c.mtxn, "transaction", {"$set": {"metadata.address": {"city": "Recife", "zip": "50000"}}},
                 "metadata_nested_value")


def f_metadata_key_too_long(c: Ctx, name: str) -> None:
    """§6.7: a metadata key of 101 characters."""
    _meta_update(c, c.mtxn, "operation", {"$set": {"metadata." + "k" * 101: "v"}}, "metadata_key_too_long")


def f_metadata_value_too_long(c: Ctx, name: str) -> None:
    """§6.7: a metadata value of 2001 characters."""
    _meta_update(c, c.monb, "account", {"$set": {"metadata.note": "x" * 2001}}, "metadata_value_too_long")


def f_metadata_timestamps_inverted(c: Ctx, name: str) -> None:
    """§6.7: created_at after updated_at."""
    doc = _pick_doc(c, c.mtxn, "transaction")
    full = c.mtxn["transaction"].find_one({"entity_id": doc["entity_id"]}) or {}
    full["updated_at"] = full["created_at"] - timedelta(hours=1)
    c.mtxn["transaction"].replace_one({"_id": full["_id"]}, full)  # whole document: keeps BSON dates
    c.add("metadata", "metadata_timestamps_inverted", _doc_entity(c, c.mtxn, "transaction", doc["entity_id"]),
          _meta_at(doc))
    c.note(entity_id=doc["entity_id"])


def f_metadata_exceeds_rows(c: Ctx, name: str) -> None:
    """§6.8: the portfolio collection gets more documents than the table has rows (orphan documents)."""
    rows = c.onb.execute("SELECT count(*) FROM portfolio").fetchone()[0]
    docs = c.monb["portfolio"].count_documents({})
    at = c.new_ms()
    for _ in range(max(1, rows - docs + 1)):
        eid = c.id_at(at)
        c.monb["portfolio"].insert_one({"entity_id": eid, "entity_name": "Portfolio", "metadata": {"k": "v"},
                                        "created_at": ms_dt(at), "updated_at": ms_dt(at)})
        c.claim(eid)
        c.add("metadata", "metadata_orphan", _doc_entity(c, c.monb, "portfolio", eid), at)
    c.touch_coll(c.monb.name, "portfolio", at)
    c.note(collection=f"{c.monb.name}.portfolio")


def f_row_hard_deleted(c: Ctx, name: str) -> None:
    """§6.8 (opt-in): an account_type row hard-deleted. Only a run compared with a previous one (before the
    injection) can see it: row_count_decreased for onboarding.account_type."""
    with_meta = {d["entity_id"] for d in c.monb["accounttype"].find({}, {"entity_id": 1})}
    rows = [r[0] for r in c.onb.execute("SELECT id::text FROM account_type ORDER BY id").fetchall() if r[0] not in with_meta]
    if not rows:
        raise FaultSkipped("no account type without metadata")
    c.onb.execute("DELETE FROM account_type WHERE id = %s", (rows[0],))
    c.add("counts", "row_count_decreased", "onboarding.account_type", c.now_ms - SETTLED_MARGIN_MS)
    c.note(account_type_id=rows[0], needs_previous_run=True)


FAULTS: dict[str, Fault] = {
    # balances
    "balance_behind_last_operation": Fault(f_balance_behind_last_operation),
    "version_fork": Fault(f_version_fork),
    "version_gap": Fault(f_version_gap, revisions=("r2",)),
    "operation_arithmetic": Fault(f_operation_arithmetic),
    "balance_sign_negative": Fault(f_balance_sign_negative),
    "deleted_balance_with_funds": Fault(f_deleted_balance_with_funds),
    "duplicate_balance": Fault(f_duplicate_balance),
    "duplicate_account_alias": Fault(f_duplicate_account_alias),
    "duplicate_asset_code": Fault(f_duplicate_asset_code),
    # double entry
    "unbalanced_transaction": Fault(f_unbalanced_transaction),
    "value_not_conserved": Fault(f_value_not_conserved),
    "operation_asset_mismatch": Fault(f_operation_asset_mismatch),
    "unknown_operation_type": Fault(f_unknown_operation_type),
    "balance_affected_mismatch": Fault(f_balance_affected_mismatch),
    # orphans
    "transaction_without_operations": Fault(f_transaction_without_operations),
    "operation_under_deleted_transaction": Fault(f_operation_under_deleted_transaction),
    "operation_unknown_balance": Fault(f_operation_unknown_balance),
    "operation_balance_mismatch": Fault(f_operation_balance_mismatch),
    "reversal_of_non_approved": Fault(f_reversal_of_non_approved),
    "multiple_reversals": Fault(f_multiple_reversals),
    "reversal_asymmetric": Fault(f_reversal_asymmetric),
    "persisted_created_status": Fault(f_persisted_created_status),
    "unknown_transaction_status": Fault(f_unknown_transaction_status),
    "pending_without_body": Fault(f_pending_without_body),
    "ageing_pending_hold": Fault(f_ageing_pending_hold),
    # settlement
    "backup_entry_without_transaction": Fault(f_backup_entry_without_transaction),
    "stuck_backup_entry": Fault(f_stuck_backup_entry),
    "backup_entry_age_unknown": Fault(f_backup_entry_age_unknown),
    "quarantined_transaction": Fault(f_quarantined_transaction, revisions=("r2",)),
    # referential
    "account_ledger_org_mismatch": Fault(f_account_ledger_org_mismatch),
    "account_parent_mismatch": Fault(f_account_parent_mismatch),
    "account_portfolio_mismatch": Fault(f_account_portfolio_mismatch),
    "account_segment_mismatch": Fault(f_account_segment_mismatch),
    "account_asset_missing": Fault(f_account_asset_missing),
    "asset_without_external_account": Fault(f_asset_without_external_account),
    "deleted_ledger_with_live_child": Fault(f_deleted_ledger_with_live_child),
    "transaction_route_missing": Fault(f_transaction_route_missing),
    "operation_route_missing": Fault(f_operation_route_missing),
    "balance_account_missing": Fault(f_balance_account_missing),
    "account_deleted_balance_live": Fault(f_account_deleted_balance_live),
    "balance_account_mismatch": Fault(f_balance_account_mismatch),
    "account_without_default_balance": Fault(f_account_without_default_balance),
    "account_default_balance_duplicate": Fault(f_account_default_balance_duplicate),
    "unknown_ledger": Fault(f_unknown_ledger),
    "transaction_asset_unknown": Fault(f_transaction_asset_unknown),
    "transaction_asset_deleted": Fault(f_transaction_asset_deleted),
    "asset_rate_asset_unknown": Fault(f_asset_rate_asset_unknown),
    "operation_account_mismatch": Fault(f_operation_account_mismatch),
    "account_type_unknown": Fault(f_account_type_unknown, in_all=("r2",)),
    # redis
    "redis_version_behind": Fault(f_redis_version_behind),
    "redis_amount_divergent": Fault(f_redis_amount_divergent),
    "redis_ahead_unscheduled": Fault(f_redis_ahead_unscheduled),
    "redis_ahead_expiring": Fault(f_redis_ahead_expiring, revisions=("r1",)),
    "redis_operation_mismatch": Fault(f_redis_operation_mismatch),
    "redis_key_unparseable": Fault(f_redis_key_unparseable),
    "redis_value_unparseable": Fault(f_redis_value_unparseable),
    "redis_balance_unknown": Fault(f_redis_balance_unknown),
    "redis_key_for_deleted_balance": Fault(f_redis_key_for_deleted_balance),
    "schedule_member_leaked": Fault(f_schedule_member_leaked),
    "schedule_worker_stuck": Fault(f_schedule_worker_stuck),
    # metadata
    "metadata_invalid_entity_id": Fault(f_metadata_invalid_entity_id),
    "metadata_orphan": Fault(f_metadata_orphan),
    "metadata_duplicate": Fault(f_metadata_duplicate),
    "metadata_entity_name_mismatch": Fault(f_metadata_entity_name_mismatch),
    "metadata_not_object": Fault(f_metadata_not_object),
    "metadata_nested_value": Fault(f_metadata_nested_value),
    "metadata_key_too_long": Fault(f_metadata_key_too_long),
    "metadata_value_too_long": Fault(f_metadata_value_too_long),
    "metadata_timestamps_inverted": Fault(f_metadata_timestamps_inverted),
    # counts
    "metadata_exceeds_rows": Fault(f_metadata_exceeds_rows),
    "row_hard_deleted": Fault(f_row_hard_deleted, in_all=()),
}

# The §8.4 catalogue of the reference, by fault name.
CATALOGUE_8_4 = (
    "balance_behind_last_operation", "version_fork", "unbalanced_transaction", "transaction_without_operations",
    "operation_unknown_balance", "account_deleted_balance_live", "account_without_default_balance",
    "redis_version_behind", "redis_ahead_expiring", "stuck_backup_entry", "metadata_orphan", "metadata_duplicate",
    "metadata_nested_value", "persisted_created_status", "pending_without_body",
)


def available_faults(revision: str, include_opt_in: bool = False) -> list[str]:
    """Faults `faults="all"` injects at this revision (opt-in ones only when asked)."""
    rev = revision.lower()
    return [n for n, f in FAULTS.items() if rev in f.revisions and (rev in f.in_all or include_opt_in)]


# ====================================================================== aggregate cascades
def _effective_zero_sum(c: Ctx) -> None:
    """§6.1-F on the effective balance (Redis value where its key exists and parses, else PostgreSQL)."""
    redis_vals: dict[str, tuple[Decimal, Decimal]] = {}
    for key in c.redis.scan_iter(match=REDIS_BALANCE_PREFIX + "*", count=1000):
        raw = c.redis.get(key)
        try:
            v = orjson.loads(raw) if raw else None
            if isinstance(v, dict):
                redis_vals[v["ID"]] = (Decimal(v["Available"]), Decimal(v["OnHold"]))
        except Exception:
            continue
    sums: dict[tuple[str, str, str], Decimal] = {}
    direction = "direction" if c.r2 else "'credit'"
    for bid, org, led, asset, av, oh, d in c.txn.execute(
            f"SELECT id::text, organization_id::text, ledger_id::text, asset_code, available, on_hold, {direction} "
            "FROM balance WHERE deleted_at IS NULL"):
        if bid in redis_vals:
            av, oh = redis_vals[bid]
        g = (org, led, asset)
        sums[g] = sums.get(g, Decimal(0)) + (-(av + oh) if d == "debit" else av + oh)
    for g, total in sorted(sums.items()):
        if total != 0:
            fault, at = c.group_touch.get(g, ("unattributed", c.now - timedelta(hours=3)))
            c.manifest.add("balances", "ledger_not_zero_sum", _ent(*g), at, fault)


def _counts(c: Ctx) -> None:
    """§6.8: live accounts vs live default balances per ledger (R1 leaves balances of deleted accounts out)."""
    accounts: dict[tuple[str, str], int] = {}
    deleted: set[str] = set()
    for org, led, acc, dead in c.onb.execute(
            "SELECT organization_id::text, ledger_id::text, id::text, deleted_at IS NOT NULL FROM account"):
        if dead:
            deleted.add(acc)
        else:
            accounts[(org, led)] = accounts.get((org, led), 0) + 1
    balances: dict[tuple[str, str], int] = {}
    for org, led, acc in c.txn.execute("SELECT organization_id::text, ledger_id::text, account_id::text FROM balance "
                                       "WHERE deleted_at IS NULL AND key = 'default'"):
        if not c.r2 and acc in deleted:
            continue
        balances[(org, led)] = balances.get((org, led), 0) + 1
    for g in sorted(set(accounts) | set(balances)):
        if accounts.get(g, 0) != balances.get(g, 0):
            fault, at = c.ledger_touch.get(g, ("unattributed", c.now - timedelta(hours=3)))
            c.manifest.add("counts", "live_accounts_default_balances_mismatch", _ent(*g), at, fault)
    tables = {(c.monb, "organization"): "organization", (c.monb, "ledger"): "ledger", (c.monb, "asset"): "asset",
              (c.monb, "segment"): "segment", (c.monb, "portfolio"): "portfolio", (c.monb, "account"): "account",
              (c.monb, "accounttype"): "account_type", (c.mtxn, "transaction"): '"transaction"',
              (c.mtxn, "operation"): "operation", (c.mtxn, "assetrate"): "asset_rate",
              (c.mtxn, "operationroute"): "operation_route", (c.mtxn, "transactionroute"): "transaction_route"}
    for (db, coll), table in tables.items():
        conn = c.onb if db is c.monb else c.txn
        rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        docs = db[coll].count_documents({})
        if docs > rows:
            fault, at = c.coll_touch.get((db.name, coll), ("unattributed", c.now - timedelta(hours=3)))
            c.manifest.add("counts", "metadata_exceeds_rows", f"{db.name}.{coll}", at, fault)


def inject(env: MidazEnvLike, *, faults: list[str] | str, seed: int, now: datetime | None = None,
           on_day: dict[str, date] | None = None) -> Manifest:
    """Inject `faults` (names from FAULTS, or "all" = every fault this revision supports) into a generated
    ledger and return the Manifest of expected findings. Deterministic for a ledger, seed and fault list."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    rev = env.revision.lower()
    names = available_faults(rev) if faults == "all" else list(faults)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ValueError(f"unknown faults {unknown}; choose from {sorted(FAULTS)}")
    c = Ctx(env, seed, now, dict(on_day or {}))
    try:
        for name in names:
            c.fault = name
            spec = FAULTS[name]
            n_entries = len(c.manifest.entries)
            try:
                if rev not in spec.revisions:
                    raise FaultSkipped(f"not available at {rev}")
                spec.fn(c, name)
                c.commit()
                c.manifest.faults.setdefault(name, {})["injected"] = True
            except FaultSkipped as exc:
                c.onb.rollback()
                c.txn.rollback()
                del c.manifest.entries[n_entries:]
                c.manifest.faults[name] = {"injected": False, "skipped": str(exc)}
        c.fault = "aggregate"
        _effective_zero_sum(c)
        _counts(c)
        c.commit()
        ttls = [int(c.redis.ttl(e.entity)) for e in c.manifest.entries if e.entity.startswith(REDIS_BALANCE_PREFIX)]
        ttls = [t for t in ttls if t > 0]
        if ttls:  # Redis evidence (and the effective balances built on it) vanishes with its keys
            c.manifest.expires_at = (datetime.now(UTC) + timedelta(seconds=min(ttls))).isoformat()
    finally:
        c.close()
    return c.manifest
