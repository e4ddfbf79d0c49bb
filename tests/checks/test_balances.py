"""The balances check (reference §6.1 A–G) on real servers.

* a clean generated ledger with its in-flight slice: no findings, in-flight counted (both revisions);
* hand-made damage on a generated ledger: each rule reports exactly the entities it must (both revisions),
  Redis-ahead balances are in flight for A/B while the zero sum uses their Redis values, and the R2
  version-gap / version rules follow the gap-fix date setting;
* a hand-written R2 mini-ledger: debit-direction arithmetic, overdraft snapshots, OVERDRAFT/BLOCK/UNBLOCK;
* the fault injector's manifest, both ways, in full and window scope;
* pure parsing and classification edge cases.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
import redis

from reconciliation import config
from reconciliation.checks import balances as B
from reconciliation.demo.gen_model import uuid7
from reconciliation.demo.generator import generate
from reconciliation.demo.servers import LocalStack, MidazEnv
from reconciliation.expectations import balances as S
from reconciliation.stores.postgres import SQL_PARAM
from tests.checks.conftest import check_once, reported

OPS = 3000
CHECK = "balances"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Ledger:
    env: MidazEnv
    now: datetime
    stats: dict[str, Any]
    expected: set[tuple[str, str, str]] = field(default_factory=set)
    notes: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[MidazEnv], None]:
    """Point the checks' Airflow connections at one env for the duration of a test."""

    def apply(env: MidazEnv) -> None:
        for key, value in env.airflow_conn_env().items():
            monkeypatch.setenv(key, value)

    return apply


def _make(stack: LocalStack, revision: str, seed: int) -> Ledger:
    env = stack.new_env(revision)
    now = _now()
    stats = generate(env, operations=OPS, seed=seed, now=now)
    return Ledger(env, now, stats)


def _rows(env: MidazEnv, sql: str, params: dict[str, Any] | None = None, db: str = "transaction") -> list[tuple]:
    conninfo = env.transaction_conninfo if db == "transaction" else env.onboarding_conninfo
    with psycopg.connect(conninfo) as conn:
        return conn.execute(sql, params or {}).fetchall()


def _exec(env: MidazEnv, sql: str, params: dict[str, Any] | None = None, db: str = "transaction") -> None:
    conninfo = env.transaction_conninfo if db == "transaction" else env.onboarding_conninfo
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql, params or {})


# ---------------------------------------------------------------------------------------------------------
# 1. clean ledger with the in-flight slice
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["r1", "r2"])
def clean(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Ledger]:
    led = _make(local_stack, request.param, seed=21)
    yield led
    local_stack.drop_env(led.env)


def test_clean_ledger_has_no_findings_and_counts_in_flight(clean: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(clean.env)
    result = check_once(CHECK, clean.env.revision, clean.now)
    assert result.status == "passed", [(v.kind, v.entity, v.details) for v in result.samples]
    assert result.violations == 0 and result.warnings == 0 and result.samples == []
    # the slice: Redis-ahead keys (accepted, not yet persisted), balances written a minute ago, young operations
    assert result.in_flight > 0
    assert result.metrics["redis_keys_ahead"] > 0
    assert result.metrics["young_operations"] > 0
    assert result.metrics["zero_sum_groups"] == sum(
        len(led["assets"]) for org in clean.stats["organizations"] for led in org["ledgers"])


def test_clean_ledger_window_scope(clean: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(clean.env)
    result = check_once(CHECK, clean.env.revision, clean.now, start=clean.now - timedelta(hours=6), end=clean.now)
    assert result.violations == 0 and result.warnings == 0, [(v.kind, v.entity) for v in result.samples]
    assert result.in_flight > 0


# ---------------------------------------------------------------------------------------------------------
# 2. the fault injector's manifest, both ways
# ---------------------------------------------------------------------------------------------------------

KINDS_R1 = {i.kind for i in S.INVARIANTS} - {"version_gap"}
KINDS_R2 = {i.kind for i in S.INVARIANTS}


@pytest.fixture(scope="module", params=["r1", "r2"])
def faulted(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Ledger]:
    from reconciliation.demo.faults import inject

    led = _make(local_stack, request.param, seed=5)
    manifest = inject(led.env, faults="all", seed=5, now=led.now)
    led.notes["manifest"] = manifest
    led.expected = manifest.keys(check=CHECK)
    yield led
    local_stack.drop_env(led.env)


def test_manifest_findings_both_ways(faulted: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(faulted.env)
    # every kind of this check is exercised at this revision (an injector that skipped one proves nothing)
    kinds = {kind for _, kind, _ in faulted.expected}
    assert kinds == (KINDS_R2 if faulted.env.revision == "r2" else KINDS_R1)
    result = check_once(CHECK, faulted.env.revision, faulted.now)
    got = reported(result)
    assert got - faulted.expected == set(), "reported but not in the manifest"
    assert faulted.expected - got == set(), "in the manifest but not reported"
    assert result.violations == len(faulted.expected) and result.warnings == 0
    assert result.in_flight > 0  # the in-flight slice is still there, and still not reported


def _in_scope(env: MidazEnv, kind: str, entity: str, start: datetime, end: datetime) -> bool:
    """The window rules of the module docstring, restated as plain per-entity queries (an independent oracle)."""
    w = {"s": start, "e": end, "lo": str(uuid.UUID(int=int(start.timestamp() * 1000) << 80)),
         "hi": str(uuid.UUID(int=int(end.timestamp() * 1000) << 80))}
    touched = """(EXISTS (SELECT 1 FROM operation o WHERE o.balance_id = b.id AND o.deleted_at IS NULL
                                                     AND o.id >= %(lo)s::uuid AND o.id < %(hi)s::uuid)
                  OR (b.updated_at >= %(s)s AND b.updated_at < %(e)s)
                  OR (b.deleted_at >= %(s)s AND b.deleted_at < %(e)s))"""
    if kind in ("balance_last_operation_mismatch", "balance_replay_mismatch", "balance_sign_invalid",
                "deleted_balance_not_zero"):
        return bool(_rows(env, f"SELECT {touched} FROM balance b WHERE b.id = %(id)s::uuid", {**w, "id": entity})[0][0])
    if kind in ("operation_arithmetic_invalid", "version_chain_broken", "version_gap"):
        return w["lo"] <= entity < w["hi"]
    org, ledger, rest = entity.split("/", 2)
    p = {**w, "org": org, "ledger": ledger, "rest": rest}
    if kind == "ledger_not_zero_sum":
        return bool(_rows(env, """SELECT EXISTS (SELECT 1 FROM operation o WHERE o.organization_id = %(org)s::uuid
                    AND o.ledger_id = %(ledger)s::uuid AND o.asset_code = %(rest)s AND o.deleted_at IS NULL
                    AND o.id >= %(lo)s::uuid AND o.id < %(hi)s::uuid)
                 OR EXISTS (SELECT 1 FROM balance b WHERE b.organization_id = %(org)s::uuid
                    AND b.ledger_id = %(ledger)s::uuid AND b.asset_code = %(rest)s
                    AND ((b.updated_at >= %(s)s AND b.updated_at < %(e)s)
                         OR (b.deleted_at >= %(s)s AND b.deleted_at < %(e)s)))""", p)[0][0])
    if kind == "duplicate_balance":
        return bool(_rows(env, f"""SELECT EXISTS (SELECT 1 FROM balance b WHERE b.organization_id = %(org)s::uuid
                    AND b.ledger_id = %(ledger)s::uuid AND b.alias || '#' || b.key = %(rest)s AND b.deleted_at IS NULL
                    AND ({touched} OR (b.id >= %(lo)s::uuid AND b.id < %(hi)s::uuid)))""", p)[0][0])
    table, col = {"duplicate_account_alias": ("account", "alias"), "duplicate_asset_code": ("asset", "code")}[kind]
    return bool(_rows(env, f"""SELECT EXISTS (SELECT 1 FROM {table} x WHERE x.organization_id = %(org)s::uuid
                AND x.ledger_id = %(ledger)s::uuid AND x.{col} = %(rest)s AND x.deleted_at IS NULL
                AND ((x.id >= %(lo)s::uuid AND x.id < %(hi)s::uuid)
                     OR (x.updated_at >= %(s)s AND x.updated_at < %(e)s)))""", p, db="onboarding")[0][0])


def test_window_scope_reports_only_findings_inside_the_window(
        faulted: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(faulted.env)
    env, now = faulted.env, faulted.now
    seen_in, seen_out = 0, 0
    for start, end in ((now - timedelta(days=2), now - timedelta(days=1)),
                       (now - timedelta(hours=20), now - timedelta(hours=2)),
                       (now - timedelta(days=30), now - timedelta(days=10))):
        result = check_once(CHECK, env.revision, now, start=start, end=end)
        got = reported(result)
        inside = {k for k in faulted.expected if _in_scope(env, k[1], k[2], start, end)}
        assert got == inside, (start, end, sorted(got ^ inside))
        # every finding whose faulty write lies in the window is reported by it (state findings — A, B, F, a
        # duplicate group — are also reported by the windows in which their balance or group was written)
        assert faulted.notes["manifest"].keys(check=CHECK, window=(start, end)) <= got
        seen_in += len(inside)
        seen_out += len(faulted.expected - inside)
    assert seen_in > 0 and seen_out > 0  # the windows split the findings: the test can fail both ways


# ---------------------------------------------------------------------------------------------------------
# 3. hand-made damage on a generated ledger: each rule reports exactly its entities
# ---------------------------------------------------------------------------------------------------------


def _hot_ids(env: MidazEnv) -> set[str]:
    r = redis.Redis.from_url(env.redis_url)
    try:
        out = set()
        for key in r.scan_iter(match="balance:{transactions}:*", count=1000):
            raw = r.get(key)
            if raw:
                out.add(str(orjson.loads(raw).get("ID")))
        return out
    finally:
        r.close()


def _columns(env: MidazEnv, table: str, db: str = "transaction") -> list[str]:
    return [r[0] for r in _rows(env, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                                     "AND table_name = %(t)s ORDER BY ordinal_position", {"t": table}, db=db)]


def _copy_row(env: MidazEnv, table: str, src_id: str, new_id: str, db: str = "transaction", **overrides: Any) -> None:
    """INSERT a copy of one row under a new id (other columns overridden by keyword)."""
    cols = _columns(env, table, db)
    select = ", ".join(f"%({c})s" if c in overrides or c == "id" else f'"{c}"' for c in cols)
    quoted = ", ".join(f'"{c}"' for c in cols)
    _exec(env, f'INSERT INTO "{table}" ({quoted}) SELECT {select} FROM "{table}" WHERE id = %(src)s::uuid',
          {**overrides, "id": new_id, "src": src_id}, db=db)


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

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.org, self.ledger, self.asset)

    def redis_key(self) -> str:
        return f"balance:{{transactions}}:{self.org}:{self.ledger}:{self.alias}#{self.key}"


def _ops(env: MidazEnv, balance_id: str) -> list[dict[str, Any]]:
    cur = _rows(env, """SELECT id::text, type, amount, available_balance, on_hold_balance, available_balance_after,
                               on_hold_balance_after, balance_version_before, balance_version_after
                        FROM operation WHERE balance_id = %(b)s::uuid AND balance_affected AND deleted_at IS NULL
                        ORDER BY balance_version_after, id""", {"b": balance_id})
    names = ("id", "type", "amount", "av", "oh", "av_after", "oh_after", "v_before", "v_after")
    return [dict(zip(names, r, strict=True)) for r in cur]


def _redis_value(b: Bal, revision: str, available: Decimal, on_hold: Decimal, version: int) -> bytes:
    value: dict[str, Any] = {"ID": b.id, "Available": str(available), "OnHold": str(on_hold), "Version": version,
                             "AccountType": b.account_type, "AllowSending": 1, "AllowReceiving": 1,
                             "AssetCode": b.asset, "AccountID": b.account_id, "Key": b.key,
                             "Alias": f"0#{b.alias}#{b.key}"}
    if revision == "r2":
        value.update(Direction="credit", OverdraftUsed="0", AllowOverdraft=0, OverdraftLimitEnabled=0,
                     OverdraftLimit="0", BalanceScope="transactional")
    return orjson.dumps(value)


def _damage(led: Ledger) -> None:
    """Apply the hand-made faults; record in led.expected what the check must report (and nothing else)."""
    env, now, rev = led.env, led.now, led.env.revision
    old = now - timedelta(hours=3)
    hot = _hot_ids(env)
    rows = _rows(env, """
        SELECT b.id::text, b.organization_id::text, b.ledger_id::text, b.account_id::text, b.alias, b.key, b.asset_code,
               b.available, b.on_hold, COALESCE(b.version, 0), b.account_type
        FROM balance b
        WHERE b.deleted_at IS NULL AND b.account_type <> 'external' AND b.key = 'default' AND b.available > 0
          AND b.updated_at < %(cut)s
          AND (SELECT count(*) FROM operation o WHERE o.balance_id = b.id AND o.balance_affected) >= 4
          AND NOT EXISTS (SELECT 1 FROM operation o WHERE o.balance_id = b.id AND o.updated_at >= %(cut)s)
        ORDER BY b.id""", {"cut": now - timedelta(minutes=70)})
    cold = [Bal(*r) for r in rows if r[0] not in hot]
    assert len(cold) >= 14, "the generated ledger is too small for the hand-made faults"
    exp: set[tuple[str, str, str]] = set()
    net: dict[tuple[str, str, str], Decimal] = {}

    def add(kind: str, entity: str) -> None:
        exp.add((CHECK, kind, entity))

    def moved(b: Bal, delta: Decimal) -> None:
        net[b.group] = net.get(b.group, Decimal(0)) + delta

    x = iter(cold)
    # M1 balance amount altered: A, B, and the ledger's zero sum
    b = next(x)
    _exec(env, "UPDATE balance SET available = available + 1.11 WHERE id = %(id)s", {"id": b.id})
    add("balance_last_operation_mismatch", b.id), add("balance_replay_mismatch", b.id), moved(b, Decimal("1.11"))
    # M2 version behind the last operation: A (R1 `<`, R2 `<>`)
    b = next(x)
    _exec(env, "UPDATE balance SET version = %(v)s WHERE id = %(id)s", {"id": b.id, "v": _ops(env, b.id)[-1]["v_after"] - 1})
    add("balance_last_operation_mismatch", b.id)
    # M3 a middle operation's after-value altered: C on it, D on the next one; at R2 B too (delta replay)
    b = next(x)
    ops = _ops(env, b.id)
    _exec(env, "UPDATE operation SET available_balance_after = available_balance_after + 0.5 WHERE id = %(id)s",
          {"id": ops[1]["id"]})
    add("operation_arithmetic_invalid", ops[1]["id"]), add("version_chain_broken", ops[2]["id"])
    if rev == "r2":
        add("balance_replay_mismatch", b.id)
    # M4 a fork: an operation written twice (same versions, later id): D on the copy, B (replayed twice)
    b = next(x)
    ops = _ops(env, b.id)
    copy_id = uuid7(int(uuid.UUID(ops[1]["id"]).int >> 80) + 1, random.Random(4))
    _copy_row(env, "operation", ops[1]["id"], copy_id)
    add("version_chain_broken", copy_id), add("balance_replay_mismatch", b.id)
    # M5 deleted with funds: E (deleted) and the zero sum
    b = next(x)
    _exec(env, "UPDATE balance SET deleted_at = %(t)s WHERE id = %(id)s", {"id": b.id, "t": old})
    add("deleted_balance_not_zero", b.id), moved(b, -(b.available + b.on_hold))
    # M6 a negative balance without operations: E, B (replays to zero) and the zero sum
    b = next(x)
    neg_id = uuid7(int((now - timedelta(hours=5)).timestamp() * 1000), random.Random(6))
    _copy_row(env, "balance", b.id, neg_id, key="neg-test", available=Decimal("-3.33"), on_hold=Decimal(0), version=0)
    add("balance_sign_invalid", neg_id), add("balance_replay_mismatch", neg_id)
    moved(b, Decimal("-3.33"))
    # M7 a second live row for one alias#key (another account id: R2's unique index is per account)
    b = next(x)
    dup_id = uuid7(int((now - timedelta(hours=6)).timestamp() * 1000), random.Random(7))
    _copy_row(env, "balance", b.id, dup_id, account_id=str(uuid.uuid4()), available=Decimal(0), on_hold=Decimal(0),
              version=0)
    add("duplicate_balance", f"{b.org}/{b.ledger}/{b.alias}#{b.key}")
    # M8 onboarding duplicates: an account alias and an asset code
    b = next(x)
    acc_copy = uuid7(int((now - timedelta(hours=7)).timestamp() * 1000), random.Random(8))
    _copy_row(env, "account", b.account_id, acc_copy, db="onboarding")
    add("duplicate_account_alias", f"{b.org}/{b.ledger}/{b.alias}")
    asset_id = _rows(env, "SELECT id::text FROM asset WHERE ledger_id = %(l)s::uuid AND code = %(c)s",
                     {"l": b.ledger, "c": b.asset}, db="onboarding")[0][0]
    _copy_row(env, "asset", asset_id, str(uuid.UUID(int=uuid.UUID(acc_copy).int + 1)), db="onboarding")
    add("duplicate_asset_code", f"{b.org}/{b.ledger}/{b.asset}")
    r = redis.Redis.from_url(env.redis_url)
    try:
        # M9 a Redis key ahead of PostgreSQL that created money: the zero sum (effective value), nothing else
        b = next(x)
        r.set(b.redis_key(), _redis_value(b, rev, b.available + Decimal("7.77"), b.on_hold, b.version + 1), ex=3000)
        moved(b, Decimal("7.77"))
        # M10 PostgreSQL behind its last operation but the Redis key holds it (sync due): in flight, nothing
        b = next(x)
        last = _ops(env, b.id)[-1]
        _exec(env, "UPDATE balance SET available = %(a)s, on_hold = %(h)s, version = %(v)s WHERE id = %(id)s",
              {"a": last["av"], "h": last["oh"], "v": last["v_before"], "id": b.id})
        r.set(b.redis_key(), _redis_value(b, rev, last["av_after"], last["oh_after"], last["v_after"]), ex=3000)
        led.notes["redis_ahead_behind"] = b.id
    finally:
        r.close()
    # M10b the same without a Redis key (a lost flush): A, B, and the zero sum
    b = next(x)
    last = _ops(env, b.id)[-1]
    _exec(env, "UPDATE balance SET available = %(a)s, on_hold = %(h)s, version = %(v)s WHERE id = %(id)s",
          {"a": last["av"], "h": last["oh"], "v": last["v_before"], "id": b.id})
    add("balance_last_operation_mismatch", b.id), add("balance_replay_mismatch", b.id)
    moved(b, (last["av"] + last["oh"]) - (last["av_after"] + last["oh_after"]))
    # M11 version ahead of the last operation: legal at R1 (no-op increments), A at R2 after the gap fix
    b = next(x)
    _exec(env, "UPDATE balance SET version = version + 1 WHERE id = %(id)s", {"id": b.id})
    if rev == "r2":
        add("balance_last_operation_mismatch", b.id)
    led.notes["version_ahead"] = b.id
    # M12 a version gap before the last operation (balance moved with it): nothing at R1, version_gap at R2
    b = next(x)
    last = _ops(env, b.id)[-1]
    _exec(env, "UPDATE operation SET balance_version_before = balance_version_before + 1, "
               "balance_version_after = balance_version_after + 1 WHERE id = %(id)s", {"id": last["id"]})
    _exec(env, "UPDATE balance SET version = version + 1 WHERE id = %(id)s", {"id": b.id})
    if rev == "r2":
        add("version_gap", last["id"])
    led.notes["gap_op"] = last["id"]
    # M13 a balance altered a minute ago: A/B are in flight; the zero sum has no such excuse (no Redis key
    # holds a value that would make the ledger balance), and the sum is stable on the confirming re-read
    b = next(x)
    _exec(env, "UPDATE balance SET available = available + 2.22, updated_at = %(t)s WHERE id = %(id)s",
          {"id": b.id, "t": now - timedelta(minutes=1)})
    moved(b, Decimal("2.22"))
    led.notes["young"] = b.id
    for g, d in net.items():
        if d != 0:
            add("ledger_not_zero_sum", "/".join(g))
    led.expected = exp


@pytest.fixture(scope="module", params=["r1", "r2"])
def damaged(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Ledger]:
    led = _make(local_stack, request.param, seed=9)
    _damage(led)
    yield led
    local_stack.drop_env(led.env)


def test_hand_made_damage_reported_exactly(damaged: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(damaged.env)
    result = check_once(CHECK, damaged.env.revision, damaged.now)
    got = reported(result)
    assert got - damaged.expected == set(), "reported but not damaged"
    assert damaged.expected - got == set(), "damaged but not reported"
    for bid in (damaged.notes["redis_ahead_behind"], damaged.notes["young"]):
        assert not any(v.balance_id == bid for v in result.samples if v.kind != "ledger_not_zero_sum")
    by_kind = {v.kind: v for v in result.samples}
    zs = by_kind["ledger_not_zero_sum"]
    assert Decimal(zs.details["effective_net"]) != 0 and zs.details["expected_net"] == "0"
    assert result.metrics["zero_sum_groups_reread"] >= 1


def test_gap_fix_date_setting_moves_the_r2_rules(damaged: Ledger, use_env: Callable[[MidazEnv], None],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """DESIGN §7: with a fix date after every write, R2 judges gaps and versions like R1."""
    use_env(damaged.env)
    monkeypatch.setenv(config.ENV_VERSION_GAP_FIX_DATE, (damaged.now + timedelta(days=30)).date().isoformat())
    got = reported(check_once(CHECK, damaged.env.revision, damaged.now))
    expected = set(damaged.expected)
    if damaged.env.revision == "r2":
        expected -= {(CHECK, "version_gap", damaged.notes["gap_op"]),
                     (CHECK, "balance_last_operation_mismatch", damaged.notes["version_ahead"])}
    assert got == expected


# ---------------------------------------------------------------------------------------------------------
# 4. a hand-written R2 mini-ledger: direction, overdraft, OVERDRAFT/BLOCK/UNBLOCK
# ---------------------------------------------------------------------------------------------------------


class _Mini:
    """Writes R2 rows by hand: balances with a direction, transactions, operations with snapshots."""

    def __init__(self, env: MidazEnv, now: datetime) -> None:
        self.conn = psycopg.connect(env.transaction_conninfo, autocommit=True)
        self.rng = random.Random(3)
        self.ms = int((now - timedelta(days=1)).timestamp() * 1000)
        self.org, self.ledger = self.id(), self.id()
        self.state: dict[str, list[Any]] = {}  # balance id -> [available, on_hold, version]

    def id(self) -> str:
        self.ms += 1000
        return uuid7(self.ms, self.rng)

    def balance(self, alias: str, asset: str, direction: str, *, key: str = "default", typ: str = "deposit") -> str:
        bid = self.id()
        self.conn.execute(
            "INSERT INTO balance (id, organization_id, ledger_id, account_id, alias, asset_code, available, on_hold, "
            "version, account_type, allow_sending, allow_receiving, created_at, updated_at, key, direction) "
            "VALUES (%s, %s, %s, %s, %s, %s, 0, 0, 0, %s, true, true, now() - interval '1 day', "
            "now() - interval '1 day', %s, %s)",
            (bid, self.org, self.ledger, self.id(), alias, asset, typ, key, direction))
        self.state[bid] = [Decimal(0), Decimal(0), 0]
        return bid

    def tx(self, asset: str, *legs: tuple[str, str, str | None, str, str, dict[str, Any] | None]) -> list[str]:
        """legs: (balance id, type, direction, amount, available delta, snapshot); returns the operation ids."""
        tx_id = self.id()
        self.conn.execute(
            'INSERT INTO "transaction" (id, description, status, amount, asset_code, chart_of_accounts_group_name, '
            "ledger_id, organization_id, created_at, updated_at) VALUES (%s, '', 'APPROVED', %s, %s, '', %s, %s, "
            "now() - interval '1 day', now() - interval '1 day')", (tx_id, Decimal(legs[0][3]), asset, self.ledger,
                                                                    self.org))
        out = []
        for bid, typ, direction, amount, d_av, snapshot in legs:
            av, oh, v = self.state[bid]
            op_id = self.id()
            self.conn.execute(
                "INSERT INTO operation (id, transaction_id, description, type, asset_code, amount, available_balance, "
                "on_hold_balance, available_balance_after, on_hold_balance_after, status, account_id, account_alias, "
                "balance_id, chart_of_accounts, organization_id, ledger_id, created_at, updated_at, "
                "balance_version_before, balance_version_after, direction, snapshot) VALUES (%s, %s, '', %s, %s, %s, "
                "%s, %s, %s, %s, '', %s, '@x', %s, '', %s, %s, now() - interval '1 day', now() - interval '1 day', "
                "%s, %s, %s, %s)",
                (op_id, tx_id, typ, asset, Decimal(amount), av, oh, av + Decimal(d_av), oh, self.id(), bid, self.org,
                 self.ledger, v, v + 1, direction, orjson.dumps(snapshot or {}).decode()))
            self.state[bid] = [av + Decimal(d_av), oh, v + 1]
            out.append(op_id)
        return out

    def settle(self, overdraft: dict[str, str]) -> None:
        """Write every balance row from its replayed state (PostgreSQL in sync with the operations)."""
        for bid, (av, oh, v) in self.state.items():
            self.conn.execute("UPDATE balance SET available = %s, on_hold = %s, version = %s, overdraft_used = %s "
                              "WHERE id = %s", (av, oh, v, Decimal(overdraft.get(bid, "0")), bid))
        self.conn.close()


def test_r2_direction_overdraft_and_system_operation_types(
        local_stack: LocalStack, use_env: Callable[[MidazEnv], None]) -> None:
    env = local_stack.new_env("r2")
    try:
        use_env(env)
        now = _now()
        m = _Mini(env, now)
        ext = m.balance("@external/USD", "USD", "debit", typ="external")
        w = m.balance("@w", "USD", "credit")
        z = m.balance("@w", "USD", "debit", key="overdraft")
        d = m.balance("@d", "USD", "credit")
        k = m.balance("@d", "USD", "credit", key="blocked")
        m.tx("USD", (ext, "DEBIT", "debit", "10", "10", None), (w, "CREDIT", "credit", "10", "10", None))
        # W overdraws by 10: available floored at 0 (delta -10 for a 20 debit), deficit on the debit companion
        m.tx("USD", (w, "DEBIT", "debit", "20", "-10", {"overdraftUsedBefore": "0", "overdraftUsedAfter": "10"}),
             (d, "CREDIT", "credit", "20", "20", None), (z, "OVERDRAFT", "debit", "10", "10", None))
        m.tx("USD", (d, "BLOCK", "debit", "5", "-5", None), (k, "BLOCK", "credit", "5", "5", None))
        m.tx("USD", (k, "UNBLOCK", "debit", "2", "-2", None), (d, "UNBLOCK", "credit", "2", "2", None))
        # EUR: a debit-direction external credited (legal arithmetic, illegal sign) and a debit-direction
        # deposit whose CREDIT grew it (illegal arithmetic: a CREDIT shrinks a debit-direction balance)
        ext_eur = m.balance("@external/EUR", "EUR", "debit", typ="external")
        v = m.balance("@v", "EUR", "debit")
        (_, bad_credit) = m.tx("EUR", (ext_eur, "CREDIT", "credit", "5", "-5", None),
                               (v, "CREDIT", "credit", "5", "5", None))
        # GBP: a legacy credit-direction external credited into the positive, and an OVERDRAFT without direction
        ext_gbp = m.balance("@external/GBP", "GBP", "credit", typ="external")
        u = m.balance("@u", "GBP", "credit")
        (_, no_direction) = m.tx("GBP", (ext_gbp, "CREDIT", "credit", "1", "1", None),
                                 (u, "OVERDRAFT", None, "1", "1", None))
        m.settle({w: "10"})
        result = check_once(CHECK, "r2", now)
        assert reported(result) == {
            (CHECK, "operation_arithmetic_invalid", bad_credit),
            (CHECK, "operation_arithmetic_invalid", no_direction),
            (CHECK, "balance_sign_invalid", ext_eur),
            (CHECK, "balance_sign_invalid", ext_gbp),
            (CHECK, "ledger_not_zero_sum", f"{m.org}/{m.ledger}/GBP"),
        }
    finally:
        local_stack.drop_env(env)


# ---------------------------------------------------------------------------------------------------------
# 5. bad input and stores that are down
# ---------------------------------------------------------------------------------------------------------


def test_weird_redis_keys_and_values_never_stop_the_check(clean: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(clean.env)
    org, ledger = clean.stats["organizations"][0]["id"], clean.stats["organizations"][0]["ledgers"][0]["id"]
    base = f"balance:{{transactions}}:{org}:{ledger}:"
    junk: dict[bytes, bytes] = {
        b"balance:{transactions}:\xff\xfe-not-utf8": b"{}",
        b"balance:{transactions}:not-a-uuid:x:@a#default": b'{"ID":"x","Available":"1","Version":1}',
        (base + "@no-key-part").encode(): b'{"ID":"00000000-0000-7000-8000-000000000000","Available":"1","Version":1}',
        (base + "@nul\x00#default").encode(): b'{"ID":"00000000-0000-7000-8000-000000000000","Available":"1","Version":1}',
        (base + "@a#default").encode(): b"not json",
        (base + "@b#default").encode(): b'{"ID":"00000000-0000-7000-8000-000000000000","Available":"1e999999",'
                                        b'"Version":1}',
        (base + "@c#default").encode(): b'{"ID":"not-a-uuid","Available":"1","Version":1}',
        (base + "@d#default").encode(): b'{"ID":"00000000-0000-7000-8000-000000000000","Available":"1",'
                                        b'"Version":99999999999999999999999}',
        (base + "@e#default").encode(): b"[1, 2, 3]",
    }
    r = redis.Redis.from_url(clean.env.redis_url)
    try:
        for k, v in junk.items():
            r.set(k, v, ex=600)
        result = check_once(CHECK, clean.env.revision, clean.now)
    finally:
        r.delete(*junk)
        r.close()
    assert result.violations == 0, [(v.kind, v.entity) for v in result.samples]
    assert result.metrics["redis_keys_skipped"] == len(junk)


def test_store_down_raises(clean: Ledger, use_env: Callable[[MidazEnv], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that is down is an error for Airflow to retry, never a silent pass."""
    use_env(clean.env)
    monkeypatch.setenv(f"AIRFLOW_CONN_{config.CONN_REDIS.upper()}", "redis://127.0.0.1:1/0")
    with pytest.raises(Exception) as info:
        check_once(CHECK, clean.env.revision, clean.now)
    assert "Connection" in type(info.value).__name__ or "connect" in str(info.value).lower()


# ---------------------------------------------------------------------------------------------------------
# 6. pure parsing and classification
# ---------------------------------------------------------------------------------------------------------

ORG, LED, BID = (str(uuid.UUID(int=i << 64 | 7 << 76 | 1 << 63)) for i in (1, 2, 3))


def _value(**kw: Any) -> bytes:
    base = {"ID": BID, "Available": "10.50", "OnHold": "0", "Version": 3}
    base.update(kw)
    return orjson.dumps({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(("key", "value", "ok"), [
    (f"balance:{{transactions}}:{ORG}:{LED}:@a:b/c#default", _value(), True),  # ':' and '/' in the alias
    (f"tenant:t1:balance:{{transactions}}:{ORG}:{LED}:@a#savings", _value(), True),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", b'{"id":"%s","available":"1","onHold":"2","version":4}'
     % BID.encode(), True),  # camelCase (Go's tags), matched case-insensitively
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(OnHold=None), True),  # OnHold defaults to 0
    (f"balance:{{transactions}}:{ORG}:{LED}:@a", _value(), False),  # no '#key'
    (f"balance:{{transactions}}:{ORG}:{LED}:#default", _value(), False),  # empty alias
    (f"balance:{{transactions}}:nope:{LED}:@a#default", _value(), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", None, False),  # expired between SCAN and GET
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", b"{", False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", b'"text"', False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(ID="42"), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(Version=-1), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(Version=1 << 63), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(Version="x"), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(Available="NaN"), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(Available="1e2000"), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(Available=True), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(Available="9" * 1200), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(Available="12.5.0"), False),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a#default", _value(Available="-0.00000012"), True),
    (f"balance:{{transactions}}:{ORG}:{LED}:@a\x1f#default", _value(), False),  # the overlay's field separator
    (b"balance:{transactions}:\xff:x#y", _value(), False),
])
def test_parse_redis_balance(key: str | bytes, value: bytes | None, ok: bool) -> None:
    raw_key = key.encode() if isinstance(key, str) else key
    parsed = B.parse_redis_balance(raw_key, value)
    assert (parsed is not None) == ok
    if parsed is not None:
        assert str(parsed.id) == BID and str(parsed.organization_id) == ORG and str(parsed.ledger_id) == LED
        assert parsed.alias.startswith("@a") and "#" not in parsed.alias


def test_parse_redis_balance_reads_float_amounts_exactly() -> None:
    parsed = B.parse_redis_balance(f"balance:{{transactions}}:{ORG}:{LED}:@a#default".encode(),
                                   b'{"ID":"%s","Available":0.1,"OnHold":1e-2,"Version":2}' % BID.encode())
    assert parsed is not None
    assert Decimal(parsed.available) == Decimal("0.1") and Decimal(parsed.on_hold) == Decimal("0.01")
    assert parsed.version == 2


def _net(pg: str, delta: str = "0") -> B.GroupNet:
    return B.GroupNet(pg_net=Decimal(pg), balances=3, young=False, redis_delta=Decimal(delta))


def test_zero_sum_verdicts() -> None:
    g1, g2, g3, g4, g5 = (("o", "l", c) for c in ("A", "B", "C", "D", "E"))
    first = {g1: _net("0"), g2: _net("5", "-5"), g3: _net("1"), g4: _net("2"), g5: _net("3")}
    second = {g3: _net("0.5", "0.5"), g4: _net("2.5")}  # g3 stable (same effective net), g4 moved, g5 gone
    assert B.zero_sum_verdicts(first, second) == {
        g1: S.NET_ZERO, g2: S.NET_ZERO, g3: S.NET_NOT_ZERO, g4: S.NET_IN_FLIGHT, g5: S.NET_IN_FLIGHT}
    assert B.zero_sum_verdicts({g3: _net("1")}, None) == {g3: S.NET_IN_FLIGHT}


def test_sql_files_per_revision_and_parameters() -> None:
    """Each revision has exactly its invariants; every placeholder has a value; binding keeps casts."""
    from reconciliation.checks.base import CheckContext
    from reconciliation.window import Window

    now = _now()
    for rev, kinds in (("r1", KINDS_R1), ("r2", KINDS_R2)):
        for scope in ("full", "window"):
            window = (Window.full(now=now) if scope == "full"
                      else Window(start=now - timedelta(days=1), end=now, now=now))
            ctx = CheckContext(window=window, revision=rev)
            params = B.check_params(ctx, {BID})
            found = set()
            for db in ("onboarding", "transaction"):
                invariants, metrics = S.sql_invariants(ctx, db, params)
                found |= {inv.kind.split("__")[1] for inv in invariants}
                for inv in invariants:
                    assert not SQL_PARAM.search(inv.sql), inv.kind  # every placeholder rendered
                    assert BID in inv.sql or ":redis_ahead" not in ctx.load_sql(CHECK, inv.kind)
                assert all("in_flight" in m for m in metrics)
            assert found == kinds - {"ledger_not_zero_sum"}
    assert B._bind("x = ANY(:r_ids::uuid[]) AND y::text = :k") == "x = ANY(%(r_ids)s::uuid[]) AND y::text = %(k)s"
    p = B.check_params(CheckContext(window=Window.full(now=now)))
    assert p["gap_fix_id_lower"] < p["young_id_lower"] < p["future_id_lower"]
