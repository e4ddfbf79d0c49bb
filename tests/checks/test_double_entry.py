"""The double-entry check (reference §6.2, DESIGN §7) on real servers, both revisions.

* a clean generated ledger with its in-flight slice: no findings, in-flight transactions counted;
* the fault injector's manifest, both ways, in full scope and in day windows (an independent oracle
  restates the window rule per entity);
* hand-written transactions (`Mini`): each rule of §6.2 at R1 and R2 — status patterns, route-validation
  totals, legacy directions, BLOCK, OVERDRAFT on a debit-direction companion, debit-direction externals,
  fee-like legs, statuses outside the four, transactions without operations, young rows, backup-queue
  evidence, soft-deleted rows — with exact reported sets and exact in-flight counts;
* bounded evidence: a sample cap that cuts kinds off still counts every violation;
* the row grouping helper.
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

from reconciliation.checks import double_entry as D
from reconciliation.demo.gen_model import dt_ms, go_time, uuid7
from reconciliation.demo.generator import generate
from reconciliation.demo.servers import LocalStack, MidazEnv
from reconciliation.expectations import double_entry as S
from tests.checks.conftest import check_once, reported

CHECK = "double_entry"
OPS = 3000
MIN_MS = 60_000
HOUR_MS = 60 * MIN_MS
DAY_MS = 24 * HOUR_MS
LEGACY = "<legacy>"  # an operation direction written as NULL (R2 rows written before migration 000018)
ZERO = Decimal(0)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[MidazEnv], None]:
    """Point the checks' Airflow connections at one env for the duration of a test."""

    def apply(env: MidazEnv) -> None:
        for key, value in env.airflow_conn_env().items():
            monkeypatch.setenv(key, value)

    return apply


# ---------------------------------------------------------------------------------------------------------
# Hand-written Midaz rows (shared with test_orphans.py)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Bal:
    id: str
    org: str
    ledger: str
    account_id: str
    alias: str
    key: str
    asset: str
    direction: str


@dataclass
class Mini:
    """Rows written straight into a fresh Midaz transaction database (and its Redis backup queue), the way
    Midaz writes them: UUIDv7 ids carrying the write time, exact decimals, R2 columns only at R2."""

    env: MidazEnv
    now: datetime
    expected: set[tuple[str, str, str]] = field(default_factory=set)
    rng: random.Random = field(default_factory=lambda: random.Random(20260101))

    def __post_init__(self) -> None:
        self.r2 = self.env.revision == "r2"
        self.now_ms = dt_ms(self.now)
        self.conn = psycopg.connect(self.env.transaction_conninfo, autocommit=True)
        self.redis = redis.Redis.from_url(self.env.redis_url)

    def close(self) -> None:
        self.conn.close()
        self.redis.close()

    def ago(self, minutes: float) -> int:
        return self.now_ms - int(minutes * MIN_MS)

    def id(self, ms: int) -> str:
        return uuid7(ms, self.rng)

    def ago_text(self, minutes: float) -> str:
        """Go's time.Time JSON for `minutes` ago (a backup-queue `ttl`)."""
        return go_time(self.ago(minutes))

    def expect(self, check: str, kind: str, entity: str) -> None:
        self.expected.add((check, kind, entity))

    # ---- rows ----
    def ledger(self) -> tuple[str, str]:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), self.id(self.ago(60 * 24 * 30))

    def balance(self, alias: str, *, led: tuple[str, str] | None = None, asset: str = "USD", key: str = "default",
                direction: str = "credit", account_id: str | None = None) -> Bal:
        org, ledger = led or self.ledger()
        ms = self.ago(60 * 24 * 20)
        b = Bal(self.id(ms), org, ledger, account_id or self.id(ms - 1), alias, key, asset, direction)
        cols = ["id", "organization_id", "ledger_id", "account_id", "alias", "asset_code", "available", "on_hold",
                "version", "account_type", "allow_sending", "allow_receiving", "created_at", "updated_at", "key"]
        vals: list[Any] = [b.id, org, ledger, b.account_id, alias, asset, ZERO, ZERO, 0,
                           "external" if alias.startswith("@external/") else "deposit", True, True,
                           datetime.fromtimestamp(ms / 1000, UTC), datetime.fromtimestamp(ms / 1000, UTC), key]
        if self.r2:
            cols += ["direction", "overdraft_used"]
            vals += [direction, ZERO]
        self.conn.execute(f"INSERT INTO balance ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(vals))})", vals)
        return b

    def tx(self, ms: int, status: str, amount: Decimal | str, *, bal: Bal, asset: str | None = None,
           parent: str | None = None, body: Any = None, updated_ms: int | None = None,
           deleted_ms: int | None = None, tx_id: str | None = None) -> str:
        tx_id = tx_id or self.id(ms)
        ts = datetime.fromtimestamp(ms / 1000, UTC)
        upd = datetime.fromtimestamp((updated_ms or ms) / 1000, UTC)
        self.conn.execute(
            'INSERT INTO "transaction" (id, parent_transaction_id, description, status, status_description, amount, '
            "asset_code, chart_of_accounts_group_name, ledger_id, organization_id, body, created_at, updated_at, "
            "deleted_at) VALUES (%s, %s, '', %s, %s, %s, %s, '', %s, %s, %s, %s, %s, %s)",
            (tx_id, parent, status, status, Decimal(amount), asset or bal.asset, bal.ledger, bal.org,
             orjson.dumps(body).decode() if body is not None else None, ts, upd,
             datetime.fromtimestamp(deleted_ms / 1000, UTC) if deleted_ms else None))
        return tx_id

    def op(self, tx_id: str, ms: int, bal: Bal, typ: str, amount: Decimal | str, *, d_av: Decimal | str = ZERO,
           d_hold: Decimal | str = ZERO, before: tuple[Decimal, Decimal] = (ZERO, ZERO), direction: str | None = None,
           affected: bool = True, asset: str | None = None, deleted: bool = False, alias: str | None = None,
           key: str | None = None, account_id: str | None = None, org: str | None = None,
           ledger: str | None = None, balance_id: str | None = None) -> str:
        op_id = self.id(ms)
        ts = datetime.fromtimestamp(ms / 1000, UTC)
        av, hold = before
        after_av, after_hold = (av + Decimal(d_av), hold + Decimal(d_hold)) if affected else (ZERO, ZERO)
        if not affected:
            av = hold = ZERO
        cols = ["id", "transaction_id", "description", "type", "asset_code", "amount", "available_balance",
                "on_hold_balance", "available_balance_after", "on_hold_balance_after", "status", "account_id",
                "account_alias", "balance_id", "chart_of_accounts", "organization_id", "ledger_id", "created_at",
                "updated_at", "deleted_at", "balance_affected", "balance_key", "balance_version_before",
                "balance_version_after"]
        vals: list[Any] = [op_id, tx_id, "", typ, asset or bal.asset, Decimal(amount), av, hold, after_av, after_hold,
                           "", account_id or bal.account_id, alias or bal.alias, balance_id or bal.id, "",
                           org or bal.org, ledger or bal.ledger, ts, ts, ts if deleted else None, affected,
                           key or bal.key, 0, 0]
        if self.r2:
            if direction is None:
                direction = {"DEBIT": "debit", "ON_HOLD": "debit", "CREDIT": "credit", "RELEASE": "credit"}.get(typ)
            cols.append("direction")
            vals.append(None if direction == LEGACY else direction)
        self.conn.execute(f"INSERT INTO operation ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(vals))})", vals)
        return op_id

    def transfer(self, ms: int, amount: str, src: Bal, dst: Bal, *, status: str = "APPROVED",
                 credit_amount: str | None = None, **kw: Any) -> str:
        tx = self.tx(ms, status, amount, bal=src, **kw)
        self.op(tx, ms, src, "DEBIT", amount, d_av=f"-{amount}")
        credit = credit_amount or amount
        self.op(tx, ms, dst, "CREDIT", credit, d_av=credit)
        return tx

    def backup_entry(self, bal: Bal, tx_id: str, ms: int | None, value: Any = None, field_name: str | None = None) -> str:
        """A backup_queue:{transactions} field for tx_id with `ttl` = ms (None: no ttl, like a Lua commit entry)."""
        f = field_name or f"transaction:{{transactions}}:{bal.org}:{bal.ledger}:{tx_id}"
        if value is None:
            value = {"transaction_id": tx_id, "organization_id": bal.org, "ledger_id": bal.ledger, "balances": [],
                     "transaction_status": "CREATED"}
            if ms is not None:
                value["ttl"] = go_time(ms)
                value["validate"] = {"asset": bal.asset, "value": "1.00", "pending": False}
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        self.redis.hset("backup_queue:{transactions}", f, raw)
        return f


# ---------------------------------------------------------------------------------------------------------
# 1. clean generated ledger with the in-flight slice
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    env: MidazEnv
    now: datetime
    stats: dict[str, Any]
    manifest: Any = None
    expected: set[tuple[str, str, str]] = field(default_factory=set)


def _make(stack: LocalStack, revision: str, seed: int) -> Ledger:
    env = stack.new_env(revision)
    now = _now()
    return Ledger(env, now, generate(env, operations=OPS, seed=seed, now=now))


@pytest.fixture(scope="module", params=["r1", "r2"])
def clean(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Ledger]:
    led = _make(local_stack, request.param, seed=41)
    yield led
    local_stack.drop_env(led.env)


def _young_transactions(env: MidazEnv, now: datetime, grace: timedelta = timedelta(minutes=15)) -> int:
    """Independent count of what the in-flight metric must say: live transactions written, or given an
    operation, within the grace (decoded UUIDv7 times), plus those a young backup-queue entry names."""
    cut = now - grace
    with psycopg.connect(env.transaction_conninfo) as conn:
        rows = conn.execute(
            """SELECT t.id::text, to_timestamp((('x'||substr(replace(t.id::text,'-',''),1,12))::bit(48)::bigint)/1000.0),
                      (SELECT max(to_timestamp((('x'||substr(replace(o.id::text,'-',''),1,12))::bit(48)::bigint)/1000.0))
                       FROM operation o WHERE o.transaction_id = t.id AND o.deleted_at IS NULL)
               FROM "transaction" t WHERE t.deleted_at IS NULL""").fetchall()
    young = {tx for tx, t_at, o_at in rows if cut <= t_at < now + timedelta(days=1) or (o_at and o_at >= cut)}
    r = redis.Redis.from_url(env.redis_url)
    try:
        for f, v in r.hscan_iter("backup_queue:{transactions}"):
            entry = orjson.loads(v)
            ttl = entry.get("ttl")
            tx = f.decode().rsplit(":", 1)[1]
            at = datetime.fromisoformat(ttl.replace("Z", "+00:00")) if ttl else \
                datetime.fromtimestamp((uuid.UUID(tx).int >> 80) / 1000, UTC)
            if now - at < timedelta(minutes=75 if env.revision == "r1" else 100) and tx in {x[0] for x in rows}:
                young.add(tx)
    finally:
        r.close()
    return len(young)


def test_clean_ledger_has_no_findings_and_counts_in_flight(clean: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(clean.env)
    result = check_once(CHECK, clean.env.revision, clean.now)
    assert result.status == "passed", [(v.kind, v.entity, v.details) for v in result.samples]
    assert result.violations == 0 and result.warnings == 0 and result.samples == []
    # the in-flight slice: a transaction row without operations yet, a fresh transfer, a pending being committed
    assert result.in_flight > 0
    assert result.in_flight == _young_transactions(clean.env, clean.now)
    assert result.metrics["evidence_transactions"] > 0


def test_clean_ledger_in_flight_rows_would_be_findings_without_grace(
        clean: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    """The slice really is mid-write: judged an hour later (past both graces) the transaction row without
    operations is reported at R1 (status rule), so the clean run's silence is the grace at work."""
    use_env(clean.env)
    later = clean.now + timedelta(hours=3)
    result = check_once(CHECK, clean.env.revision, later)
    no_ops = next(i["transaction_id"] for i in clean.stats["inflight"]
                  if i["item"] == "transaction_without_operations_yet")
    got = reported(result)
    if clean.env.revision == "r1":
        assert got == {(CHECK, "unbalanced_transaction", no_ops)}
    else:  # R2: no operations balance by direction (0 = 0): only the status rule fails, not both
        assert got == set()


def test_clean_ledger_window_scope(clean: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(clean.env)
    result = check_once(CHECK, clean.env.revision, clean.now, start=clean.now - timedelta(hours=6), end=clean.now)
    assert result.violations == 0 and result.warnings == 0, [(v.kind, v.entity) for v in result.samples]
    assert result.in_flight == _young_transactions(clean.env, clean.now)


# ---------------------------------------------------------------------------------------------------------
# 2. the fault injector's manifest, both ways, full and window scope
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["r1", "r2"])
def faulted(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Ledger]:
    from reconciliation.demo.faults import inject

    led = _make(local_stack, request.param, seed=43)
    led.manifest = inject(led.env, faults="all", seed=43, now=led.now)
    led.expected = led.manifest.keys(check=CHECK)
    yield led
    local_stack.drop_env(led.env)


def test_manifest_findings_both_ways(faulted: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(faulted.env)
    assert {kind for _, kind, _ in faulted.expected} == set(S.KINDS)  # every kind exercised at this revision
    result = check_once(CHECK, faulted.env.revision, faulted.now)
    got = reported(result)
    assert got - faulted.expected == set(), "reported but not in the manifest"
    assert faulted.expected - got == set(), "in the manifest but not reported"
    assert result.violations == len(faulted.expected) and result.warnings == 0
    assert result.status == "failed"
    assert result.in_flight > 0  # the in-flight slice is still there, and still not reported


def _in_window(env: MidazEnv, tx: str, start: datetime, end: datetime) -> bool:
    """The window rule restated per entity: the transaction, or one of its operations, written in [start, end)."""
    with psycopg.connect(env.transaction_conninfo) as conn:
        times = [r[0] for r in conn.execute(
            """SELECT to_timestamp((('x'||substr(replace(x.id::text,'-',''),1,12))::bit(48)::bigint)/1000.0)
               FROM (SELECT id FROM "transaction" WHERE id = %(t)s::uuid
                     UNION ALL SELECT id FROM operation WHERE transaction_id = %(t)s::uuid) x""", {"t": tx})]
    return any(start <= t < end for t in times)


def test_window_scope_reports_only_findings_inside_the_window(
        faulted: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(faulted.env)
    env, now = faulted.env, faulted.now
    seen_in = seen_out = 0
    day0 = now.replace(hour=0, minute=0, second=0)
    windows = [(day0 - timedelta(days=d), day0 - timedelta(days=d - 1)) for d in range(4, -1, -1)]
    windows.append((now - timedelta(hours=20), now - timedelta(hours=2)))
    for start, end in windows:
        result = check_once(CHECK, env.revision, now, start=start, end=end)
        got = reported(result)
        inside = {k for k in faulted.expected if _in_window(env, k[2], start, end)}
        assert got == inside, (start, end, sorted(got ^ inside))
        assert faulted.manifest.keys(check=CHECK, window=(start, end)) <= got
        seen_in += len(inside)
        seen_out += len(faulted.expected - inside)
    assert seen_in >= len(faulted.expected) and seen_out > 0  # every finding dated, and the windows split them


# ---------------------------------------------------------------------------------------------------------
# 3. hand-written transactions: every rule, both revisions
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["r1", "r2"])
def mini(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Mini]:
    env = local_stack.new_env(request.param)
    m = Mini(env, _now())
    m.in_flight = _build_scenarios(m)  # type: ignore[attr-defined]
    yield m
    m.close()
    local_stack.drop_env(env)


def _build_scenarios(m: Mini) -> int:
    """Write one ledger per scenario; record the expected findings in m.expected; return the exact number of
    transactions the check must count as in flight."""
    old = m.ago(3 * 60)
    r1, r2 = not m.r2, m.r2

    def pair(asset: str = "USD", src_direction: str = "credit") -> tuple[Bal, Bal]:
        led = m.ledger()
        return (m.balance("@src", led=led, asset=asset, direction=src_direction),
                m.balance("@dst", led=led, asset=asset))

    def e(kind: str, tx: str) -> None:
        m.expect(CHECK, kind, tx)

    # ---- consistent flows: nothing to report ----
    s, d = pair()
    m.transfer(old, "10.00", s, d)                                          # APPROVED transfer
    s, d = pair()
    t = m.tx(old, "PENDING", "7.50", bal=s, body={"pending": True})         # R1 pending: ON_HOLD only
    m.op(t, old, s, "ON_HOLD", "7.50", d_av="-7.50", d_hold="7.50", before=(Decimal(20), ZERO))
    s, d = pair()
    t = m.tx(old, "APPROVED", "7.50", bal=s)                                # R1 committed pending
    m.op(t, old, s, "ON_HOLD", "7.50", d_av="-7.50", d_hold="7.50", before=(Decimal(20), ZERO))
    m.op(t, old + 1, s, "DEBIT", "7.50", d_hold="-7.50", before=(Decimal("12.50"), Decimal("7.50")))
    m.op(t, old + 1, d, "CREDIT", "7.50", d_av="7.50")
    s, d = pair()
    t = m.tx(old, "CANCELED", "7.50", bal=s)                                # R1 cancelled pending
    m.op(t, old, s, "ON_HOLD", "7.50", d_av="-7.50", d_hold="7.50", before=(Decimal(20), ZERO))
    m.op(t, old + 1, s, "RELEASE", "7.50", d_av="7.50", d_hold="-7.50", before=(Decimal("12.50"), Decimal("7.50")))
    s, d = pair()
    t = m.tx(old, "NOTED", "3.3333333333333333", bal=s)                   # NOTED: not balance-affecting
    m.op(t, old, s, "DEBIT", "3.3333333333333333", affected=False)
    m.op(t, old, d, "CREDIT", "3.3333333333333333", affected=False)
    s, d = pair()
    m.transfer(old, "5.00", s, d, status="CREATED")                        # CREATED: orphans' job (DESIGN §7)
    s, d = pair()
    m.transfer(old, "5.00", s, d, status="SETTLED")                        # unknown status, ops fit APPROVED
    s, d = pair()
    t = m.transfer(old, "4.00", s, d)                                       # a deleted extra leg is ignored
    m.op(t, old, d, "CREDIT", "99.00", d_av="99.00", deleted=True)
    s, d = pair()
    m.transfer(old, "8.00", s, d, credit_amount="9.00", deleted_ms=old + HOUR_MS)  # deleted transaction: ignored

    # ---- violations ----
    s, d = pair()
    t = m.transfer(old, "10.00", s, d, credit_amount="11.00")              # credit > debit, value created
    e("unbalanced_transaction", t)
    e("value_not_conserved", t)
    s, d = pair()
    t = m.tx(old, "APPROVED", "10.00", bal=s)                               # arithmetic off, amounts right
    m.op(t, old, s, "DEBIT", "10.00", d_av="-10.00")
    m.op(t, old, d, "CREDIT", "10.00", d_av="10.01")
    e("value_not_conserved", t)
    s, d = pair()
    t = m.tx(old, "APPROVED", "42.00", bal=s)                               # no operations at all
    if r1:
        e("unbalanced_transaction", t)  # R2: the direction rule balances (0 = 0), so not both rules fail
    s, d = pair()
    t = m.tx(old, "APPROVED", "6.00", bal=s)                                # one leg in another asset
    m.op(t, old, s, "DEBIT", "6.00", d_av="-6.00")
    m.op(t, old, d, "CREDIT", "6.00", d_av="6.00", asset="EUR")
    e("operation_asset_mismatch", t)
    s, d = pair()
    t = m.tx(old, "NOTED", "2.00", bal=s)                                   # a NOTED leg that moved a balance
    m.op(t, old, s, "DEBIT", "2.00", affected=False)
    m.op(t, old, d, "CREDIT", "2.00", d_av="0", affected=True)
    e("balance_affected_mismatch", t)
    s, d = pair()
    t = m.transfer(old, "3.00", s, d)                                       # APPROVED legs not balance-affecting
    m.conn.execute("UPDATE operation SET balance_affected = false WHERE transaction_id = %s AND type = 'CREDIT'", (t,))
    e("balance_affected_mismatch", t)
    e("value_not_conserved", t)  # the debit's −3.00 is no longer offset by an affected credit
    s, d = pair()
    t = m.tx(old, "APPROVED", "5.00", bal=s)                                # a type Midaz does not know
    m.op(t, old, s, "DEBIT", "5.00", d_av="-5.00")
    m.op(t, old, d, "TRANSFER", "5.00", d_av="5.00", direction="credit")
    e("unknown_operation_type", t)
    if r1:
        e("unbalanced_transaction", t)  # R2: its credit direction still balances the debit
    s, d = pair()
    t = m.tx(old, "CANCELED", "7.50", bal=s)                                # cancelled, release never written
    m.op(t, old, s, "ON_HOLD", "7.50", d_av="-7.50", d_hold="7.50", before=(Decimal(20), ZERO))
    e("unbalanced_transaction", t)
    s, d = pair()
    t = m.tx(old, "APPROVED", "7.50", bal=s)                                # committed with a partial hold
    m.op(t, old, s, "ON_HOLD", "5.00", d_av="-5.00", d_hold="5.00", before=(Decimal(20), ZERO))
    m.op(t, old + 1, s, "DEBIT", "7.50", d_av="-2.50", d_hold="-5.00", before=(Decimal(15), Decimal(5)))
    m.op(t, old + 1, d, "CREDIT", "7.50", d_av="7.50")
    e("unbalanced_transaction", t)
    s, d = pair()
    t = m.tx(old, "PENDING", "7.00", bal=s, body={"pending": True})         # pending hold of the wrong amount
    m.op(t, old, s, "ON_HOLD", "6.00", d_av="-6.00", d_hold="6.00", before=(Decimal(20), ZERO))
    e("unbalanced_transaction", t)  # R2 too: its 'debit' hold has no credit side (only legacy rows are exempt)

    # ---- R2 rules (written at R1 too: there the directions are absent and R1 rules apply) ----
    if r2:
        s, d = pair()
        t = m.tx(old, "PENDING", "9.00", bal=s, body={"pending": True})    # route validation: PENDING
        m.op(t, old, s, "DEBIT", "9.00", d_av="-9.00", before=(Decimal(20), ZERO))
        m.op(t, old, s, "ON_HOLD", "9.00", d_hold="9.00", direction="credit", before=(Decimal(11), ZERO))
        s, d = pair()
        t = m.tx(old, "APPROVED", "9.00", bal=s)                           # route validation: committed
        m.op(t, old, s, "DEBIT", "9.00", d_av="-9.00", before=(Decimal(20), ZERO))
        m.op(t, old, s, "ON_HOLD", "9.00", d_hold="9.00", direction="credit", before=(Decimal(11), ZERO))
        m.op(t, old + 1, s, "ON_HOLD", "9.00", d_hold="-9.00", direction="debit", before=(Decimal(11), Decimal(9)))
        m.op(t, old + 1, d, "CREDIT", "9.00", d_av="9.00")
        s, d = pair()
        t = m.tx(old, "CANCELED", "9.00", bal=s)                           # route validation: cancelled
        m.op(t, old, s, "DEBIT", "9.00", d_av="-9.00", before=(Decimal(20), ZERO))
        m.op(t, old, s, "ON_HOLD", "9.00", d_hold="9.00", direction="credit", before=(Decimal(11), ZERO))
        m.op(t, old + 1, s, "RELEASE", "9.00", d_hold="-9.00", direction="debit", before=(Decimal(11), Decimal(9)))
        m.op(t, old + 1, s, "CREDIT", "9.00", d_av="9.00", before=(Decimal(11), ZERO))
        for status, holds, bad in (("APPROVED", 2, False), ("APPROVED", 3, True), ("PENDING", 1, False),
                                   ("CANCELED", 1, False)):
            # route-validation totals on rows without directions: the direction rule cannot vouch for them,
            # so the per-type totals of §6.2 alone decide (ON_HOLD = 3×amount fits no pattern)
            s, d = pair()
            t = m.tx(old, status, "9.00", bal=s, body={"pending": True} if status == "PENDING" else None)
            m.op(t, old, s, "DEBIT", "9.00", d_av="-9.00", direction=LEGACY, before=(Decimal(30), ZERO))
            for i in range(holds):
                m.op(t, old, s, "ON_HOLD", "9.00", d_hold="9.00" if i % 2 == 0 else "-9.00", direction=LEGACY,
                     before=(Decimal(21), Decimal(9 * (i % 2))))
            if status == "APPROVED":
                m.op(t, old, d, "CREDIT", "9.00", d_av="9.00", direction=LEGACY)
            if status == "CANCELED":
                m.op(t, old, s, "RELEASE", "9.00", d_hold="-9.00", direction=LEGACY, before=(Decimal(21), Decimal(9)))
                m.op(t, old, s, "CREDIT", "9.00", d_av="9.00", direction=LEGACY, before=(Decimal(21), ZERO))
            if bad:
                e("unbalanced_transaction", t)
                e("value_not_conserved", t)  # the third hold moved 9.00 into on_hold from nowhere
        s, d = pair()
        t = m.tx(old, "PENDING", "4.00", bal=s, body={"pending": True})    # legacy row (NULL direction)
        m.op(t, old, s, "ON_HOLD", "4.00", d_av="-4.00", d_hold="4.00", direction=LEGACY, before=(Decimal(9), ZERO))
        s, d = pair()
        t = m.tx(old, "CANCELED", "4.00", bal=s)                           # legacy cancel of the wrong amount:
        m.op(t, old, s, "ON_HOLD", "3.00", d_av="-3.00", d_hold="3.00", direction=LEGACY, before=(Decimal(9), ZERO))
        m.op(t, old, s, "RELEASE", "3.00", d_av="3.00", d_hold="-3.00", direction=LEGACY,  # its inferred sides
             before=(Decimal(6), Decimal(3)))                                # net to zero, but a legacy flow is
        e("unbalanced_transaction", t)                                      # single-sided: status decides
        for status in ("APPROVED", "CANCELED"):
            # route-validation flow plus a fee leg: the status totals fail (DEBIT 9.50), so only a correctly
            # computed direction rule — ON_HOLD/RELEASE legs booked against their type's direction — passes it
            s, d = pair()
            fee = m.balance("@fees", led=(s.org, s.ledger))
            t = m.tx(old, status, "9.00", bal=s)
            m.op(t, old, s, "DEBIT", "9.00", d_av="-9.00", before=(Decimal(30), ZERO))
            m.op(t, old, s, "ON_HOLD", "9.00", d_hold="9.00", direction="credit", before=(Decimal(21), ZERO))
            m.op(t, old, s, "DEBIT", "0.50", d_av="-0.50", before=(Decimal(21), Decimal(9)))
            m.op(t, old, fee, "CREDIT", "0.50", d_av="0.50")
            if status == "APPROVED":
                m.op(t, old + 1, s, "ON_HOLD", "9.00", d_hold="-9.00", direction="debit",
                     before=(Decimal("20.50"), Decimal(9)))
                m.op(t, old + 1, d, "CREDIT", "9.00", d_av="9.00")
            else:
                m.op(t, old + 1, s, "RELEASE", "9.00", d_hold="-9.00", direction="debit",
                     before=(Decimal("20.50"), Decimal(9)))
                m.op(t, old + 1, s, "CREDIT", "9.00", d_av="9.00", before=(Decimal("20.50"), ZERO))
        s, d = pair()
        t = m.tx(old, "APPROVED", "4.00", bal=s)                           # legacy transfer, NULL directions
        m.op(t, old, s, "DEBIT", "4.00", d_av="-4.00", direction=LEGACY)
        m.op(t, old, d, "CREDIT", "4.00", d_av="4.00", direction=LEGACY)
        s, d = pair()
        t = m.tx(old, "APPROVED", "4.00", bal=s)                           # odd spelling of the direction
        m.op(t, old, s, "DEBIT", "4.00", d_av="-4.00", direction="DEBIT")
        m.op(t, old, d, "CREDIT", "4.00", d_av="4.00", direction="Credit")
        s, d = pair()
        t = m.tx(old, "APPROVED", "10.00", bal=s)                          # a fee leg: status fails, direction holds
        fee = m.balance("@fees", led=(s.org, s.ledger))
        m.op(t, old, s, "DEBIT", "10.50", d_av="-10.50")
        m.op(t, old, d, "CREDIT", "10.00", d_av="10.00")
        m.op(t, old, fee, "CREDIT", "0.50", d_av="0.50")
        s, d = pair()
        t = m.tx(old, "APPROVED", "12.00", bal=s)                          # BLOCK: type label, direction kept
        m.op(t, old, s, "BLOCK", "12.00", d_av="-12.00", direction="debit")
        m.op(t, old, d, "BLOCK", "12.00", d_av="12.00", direction="credit")
        s, d = pair()
        t = m.tx(old, "APPROVED", "10.00", bal=s)                          # overdraft: 3 available, 7 borrowed
        od = m.balance("@src", led=(s.org, s.ledger), key="overdraft", direction="debit", account_id=s.account_id)
        m.op(t, old, s, "DEBIT", "10.00", d_av="-3.00", before=(Decimal(3), ZERO))
        m.op(t, old, od, "OVERDRAFT", "7.00", d_av="7.00", direction="debit")
        m.op(t, old, d, "CREDIT", "10.00", d_av="10.00")
        led = m.ledger()                                                    # inflow from a debit-direction external
        ext = m.balance("@external/USD", led=led, direction="debit")
        usr = m.balance("@user", led=led)
        t = m.tx(old, "APPROVED", "25.00", bal=usr)
        m.op(t, old, ext, "DEBIT", "25.00", d_av="25.00")
        m.op(t, old, usr, "CREDIT", "25.00", d_av="25.00")
        t = m.tx(old, "APPROVED", "25.00", bal=usr)                        # … and one whose external moved 26
        m.op(t, old, ext, "DEBIT", "25.00", d_av="26.00", before=(Decimal(25), ZERO))
        m.op(t, old, usr, "CREDIT", "25.00", d_av="25.00", before=(Decimal(25), ZERO))
        e("value_not_conserved", t)
        s, d = pair()
        t = m.tx(old, "APPROVED", "10.00", bal=s)                          # both rules fail
        m.op(t, old, s, "DEBIT", "10.00", d_av="-10.00")
        m.op(t, old, d, "CREDIT", "9.00", d_av="9.00")
        e("unbalanced_transaction", t)
        e("value_not_conserved", t)
        s, d = pair()
        t = m.tx(old, "APPROVED", "10.00", bal=s)                          # direction fails, status holds
        m.op(t, old, s, "DEBIT", "10.00", d_av="-10.00")
        m.op(t, old, d, "CREDIT", "10.00", d_av="10.00", direction="debit")
        s, d = pair()
        t = m.tx(old, "APPROVED", "10.00", bal=s)                          # OVERDRAFT type counts on no side
        m.op(t, old, s, "OVERDRAFT", "10.00", d_av="-10.00", direction="debit")
        m.op(t, old, d, "CREDIT", "10.00", d_av="10.00")
        e("unbalanced_transaction", t)  # status: DEBIT 0; direction: 0 debit vs 10 credit

    # ---- in flight: never reported, counted exactly ----
    in_flight = 0
    s, d = pair()
    m.transfer(m.ago(5), "10.00", s, d, credit_amount="11.00")              # written 5 minutes ago
    in_flight += 1
    s, d = pair()
    t = m.tx(old, "PENDING", "5.00", bal=s)                                 # old pending, commit 5 minutes ago
    m.op(t, old, s, "ON_HOLD", "5.00", d_av="-5.00", d_hold="5.00", before=(Decimal(9), ZERO))
    m.op(t, m.ago(5), s, "DEBIT", "5.00", d_hold="-5.00", before=(Decimal(4), Decimal(5)))  # CREDIT not yet
    in_flight += 1
    s, d = pair()
    t = m.transfer(old, "10.00", s, d, credit_amount="11.00")               # a leg whose UUIDv7 id is young
    young_op = m.op(t, m.ago(4), d, "CREDIT", "1.00", d_av="1.00")          # although its updated_at is not
    m.conn.execute("UPDATE operation SET updated_at = %s WHERE id = %s",
                   (datetime.fromtimestamp(old / 1000, UTC), young_op))
    in_flight += 1
    for age, evidence in ((40, True), (40, False), (180, True)):
        # the row and its debit are in, the credit is not yet: excused while a backup-queue entry younger
        # than the hard grace says Midaz is still writing it
        s, d = pair()
        t = m.tx(m.ago(age), "APPROVED", "8.00", bal=s)
        m.op(t, m.ago(age), s, "DEBIT", "8.00", d_av="-8.00", before=(Decimal(8), ZERO))
        if evidence:
            m.backup_entry(s, t, m.ago(age))
        if evidence and age < 75:
            in_flight += 1
        else:
            e("unbalanced_transaction", t)
            e("value_not_conserved", t)
    s, d = pair()
    t = m.transfer(old, "2.00", s, d, updated_ms=m.ago(3))                  # recovered 3 min ago (updated_at):
    m.conn.execute("UPDATE operation SET amount = 3 WHERE transaction_id = %s AND type = 'CREDIT'", (t,))  # skipped
    return in_flight


def test_hand_written_rules(mini: Mini, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(mini.env)
    result = check_once(CHECK, mini.env.revision, mini.now)
    got = reported(result)
    assert got - mini.expected == set(), "reported but not expected"
    assert mini.expected - got == set(), "expected but not reported"
    assert result.violations == len(mini.expected)
    assert result.in_flight == mini.in_flight  # type: ignore[attr-defined]
    assert result.metrics["evidence_transactions"] == 1  # the 180-minute entry is no evidence
    for v in result.samples:  # evidence travels with each finding, amounts exact
        assert v.transaction_id == v.entity and v.organization_id and v.ledger_id
        assert isinstance(v.details["amount"], str) and "." in v.details["amount"]


def test_many_debit_balances_fall_back_to_the_balance_probe(mini: Mini, use_env: Callable[[MidazEnv], None],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """R2 inlines the debit-direction balance ids when they are few, else probes `balance`: same findings."""
    use_env(mini.env)
    listed = check_once(CHECK, mini.env.revision, mini.now)
    monkeypatch.setattr(S, "DEBIT_BALANCES_LISTED_MAX", 0)
    probed = check_once(CHECK, mini.env.revision, mini.now)
    assert reported(probed) == reported(listed) == mini.expected
    if mini.r2:
        assert listed.metrics["debit_direction_balances"] == 2  # the debit external and the overdraft companion
        assert probed.metrics["debit_direction_balances"] == "many"


def test_sample_cap_keeps_exact_counts(mini: Mini, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(mini.env)
    full = check_once(CHECK, mini.env.revision, mini.now)
    kinds = {v.kind for v in full.samples}
    capped = check_once(CHECK, mini.env.revision, mini.now, max_samples=len(kinds))
    assert capped.truncated and len(capped.samples) == len(kinds)
    assert {v.kind for v in capped.samples} == kinds  # kinds are interleaved: each one is sampled
    assert capped.violations == full.violations
    tiny = check_once(CHECK, mini.env.revision, mini.now, max_samples=1)
    assert tiny.truncated and len(tiny.samples) == 1 and tiny.violations == full.violations


def test_window_scope_on_hand_written_rows(mini: Mini, use_env: Callable[[MidazEnv], None]) -> None:
    """A window reports the transactions written in it, and an old transaction whose operation was."""
    use_env(mini.env)
    recent = check_once(CHECK, mini.env.revision, mini.now,
                        start=mini.now - timedelta(minutes=60), end=mini.now)
    recent_expected = {k for k in mini.expected if _in_window(mini.env, k[2], mini.now - timedelta(minutes=60),
                                                             mini.now)}
    assert reported(recent) == recent_expected
    assert recent.in_flight == mini.in_flight  # type: ignore[attr-defined]
    old = check_once(CHECK, mini.env.revision, mini.now,
                     start=mini.now - timedelta(hours=4), end=mini.now - timedelta(hours=2))
    assert reported(old) == {k for k in mini.expected if k not in recent_expected}
    assert old.in_flight == 2  # the old pending whose commit is 5 minutes old, the old transfer with a young leg


# ---------------------------------------------------------------------------------------------------------
# 4. pure helpers
# ---------------------------------------------------------------------------------------------------------


def test_group_rows_splits_kinds_and_keeps_totals() -> None:
    rows = [
        {"kind": "unbalanced_transaction", "entity": "a", "kind_total": 3},
        {"kind": "value_not_conserved", "entity": "a", "kind_total": 1},
        {"kind": "unbalanced_transaction", "entity": "b", "kind_total": 3},
    ]
    grouped = D.group_rows(rows)
    assert grouped["unbalanced_transaction"] == ([{"entity": "a"}, {"entity": "b"}], 3)
    assert grouped["value_not_conserved"] == ([{"entity": "a"}], 1)
    assert rows[0]["kind"] == "unbalanced_transaction"  # the input is not mutated


def test_sql_params_bounds() -> None:
    from tests.checks.conftest import make_context

    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    params = S.sql_params(make_context("r1", now), ["b", "a"])
    assert params["evidence_txids"] == ["a", "b"]
    young = uuid.UUID(params["young_id_lower"])
    assert datetime.fromtimestamp((young.int >> 80) / 1000, UTC) == now - timedelta(minutes=15)
    assert young.int & ((1 << 80) - 1) == 0
    future = uuid.UUID(params["future_id_lower"])
    assert datetime.fromtimestamp((future.int >> 80) / 1000, UTC) == now + timedelta(days=1)


def test_revision_sql_files_exist_and_differ() -> None:
    from tests.checks.conftest import make_context

    now = datetime(2026, 3, 1, tzinfo=UTC)
    r1 = make_context("r1", now).load_sql(CHECK, S.QUERY)
    r2 = make_context("r2", now).load_sql(CHECK, S.QUERY)
    assert "direction" not in r1.split("WITH", 1)[1]  # R1 has no direction column
    assert "b.direction = 'debit'" in r2 and "'OVERDRAFT'" in r2
