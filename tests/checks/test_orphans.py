"""The orphans check (reference §6.3 a–f, reversal symmetry, backup-queue entries without a transaction) on
real servers, both revisions.

* a clean generated ledger with its in-flight slice: no findings, in-flight counted exactly;
* the fault injector's manifest, both ways, in full scope and in day windows (an independent oracle
  restates each kind's window rule per entity);
* hand-written rows (test_double_entry.Mini): each invariant, its in-flight and evidence exemptions, and
  backup-queue entries with every age basis and malformed input (weird fields, non-UTF-8 bytes, garbage
  values, tenant queues);
* pure classification of backup-queue entries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import psycopg
import pytest
import redis

from reconciliation import config
from reconciliation.checks import orphans as O
from reconciliation.checks.settlement import parse_backup_entry
from reconciliation.demo.servers import LocalStack, MidazEnv
from reconciliation.expectations import orphans as S
from tests.checks.conftest import check_once, make_context, reported
from tests.checks.test_double_entry import DAY_MS, HOUR_MS, ZERO, Bal, Ledger, Mini, _make, _now, _young_transactions

CHECK = "orphans"


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[MidazEnv], None]:
    def apply(env: MidazEnv) -> None:
        for key, value in env.airflow_conn_env().items():
            monkeypatch.setenv(key, value)

    return apply


def _t(value: str) -> datetime:
    return datetime.fromtimestamp((uuid.UUID(value).int >> 80) / 1000, UTC)


def _young_entries_without_transaction(env: MidazEnv, now: datetime) -> int:
    """Backup-queue entries younger than the hard grace whose transaction row does not exist (yet)."""
    hard = timedelta(minutes=75 if env.revision == "r1" else 100)
    r = redis.Redis.from_url(env.redis_url)
    try:
        entries = [(f.decode(), orjson.loads(v)) for f, v in r.hscan_iter("backup_queue:{transactions}")]
    finally:
        r.close()
    with psycopg.connect(env.transaction_conninfo) as conn:
        existing = {row[0] for row in conn.execute('SELECT id::text FROM "transaction"').fetchall()}
    n = 0
    for f, v in entries:
        tx = f.rsplit(":", 1)[1]
        at = datetime.fromisoformat(v["ttl"].replace("Z", "+00:00")) if v.get("ttl") else _t(tx)
        n += now - at < hard and tx not in existing
    return n


# ---------------------------------------------------------------------------------------------------------
# 1. clean generated ledger with the in-flight slice
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["r1", "r2"])
def clean(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Ledger]:
    led = _make(local_stack, request.param, seed=51)
    yield led
    local_stack.drop_env(led.env)


def test_clean_ledger_has_no_findings_and_counts_in_flight(clean: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(clean.env)
    result = check_once(CHECK, clean.env.revision, clean.now)
    assert result.status == "passed", [(v.kind, v.entity, v.details) for v in result.samples]
    assert result.violations == 0 and result.warnings == 0 and result.samples == []
    young_entries = _young_entries_without_transaction(clean.env, clean.now)
    assert young_entries > 0  # accepted in Redis, not yet in PostgreSQL
    assert result.in_flight == _young_transactions(clean.env, clean.now) + young_entries
    assert result.metrics["backup_entry_states"]["in_flight"] == young_entries


def test_clean_ledger_window_scope(clean: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(clean.env)
    result = check_once(CHECK, clean.env.revision, clean.now, start=clean.now - timedelta(hours=6), end=clean.now)
    assert result.violations == 0 and result.warnings == 0, [(v.kind, v.entity) for v in result.samples]
    assert result.in_flight > 0


def test_clean_ledger_slice_is_reported_once_past_the_hard_grace(
        clean: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    """Judged three hours later, the slice's lost writes show: the row without operations and the entries
    whose transactions never reached PostgreSQL — so the clean run's silence is the graces at work."""
    use_env(clean.env)
    later = clean.now + timedelta(hours=3)
    items = {i["item"]: i for i in clean.stats["inflight"]}
    expected = {(CHECK, "transaction_without_operations", items["transaction_without_operations_yet"]["transaction_id"])}
    for name in ("accepted_not_persisted", "redis_ahead_unscheduled_young"):
        expected.add((CHECK, "backup_entry_without_transaction", items[name]["backup_field"]))
    assert reported(check_once(CHECK, clean.env.revision, later)) == expected


# ---------------------------------------------------------------------------------------------------------
# 2. the fault injector's manifest, both ways, full and window scope
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["r1", "r2"])
def faulted(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Ledger]:
    from reconciliation.demo.faults import inject

    led = _make(local_stack, request.param, seed=53)
    led.manifest = inject(led.env, faults="all", seed=53, now=led.now)
    led.expected = led.manifest.keys(check=CHECK)
    yield led
    local_stack.drop_env(led.env)


def test_manifest_findings_both_ways(faulted: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(faulted.env)
    assert {kind for _, kind, _ in faulted.expected} == {i.kind for i in S.INVARIANTS}  # every kind exercised
    result = check_once(CHECK, faulted.env.revision, faulted.now)
    got = reported(result)
    assert got - faulted.expected == set(), "reported but not in the manifest"
    assert faulted.expected - got == set(), "in the manifest but not reported"
    warnings = {e.key for e in faulted.manifest.expected(check=CHECK, severity="warning")}
    assert warnings == {k for k in got if k[1] == "ageing_pending_hold"}
    assert result.warnings == len(warnings) and result.violations == len(faulted.expected) - len(warnings)
    assert result.in_flight > 0


def _in_scope(env: MidazEnv, kind: str, entity: str, start: datetime, end: datetime) -> bool:
    """Each kind's window rule restated per entity (module docstring of checks/orphans.py)."""
    with psycopg.connect(env.transaction_conninfo) as conn:
        def tx_or_ops(tx: str) -> list[datetime]:
            ids = [tx] + [r[0] for r in conn.execute(
                "SELECT id::text FROM operation WHERE transaction_id = %s", (tx,)).fetchall()]
            return [_t(i) for i in ids]

        if kind in ("operation_transaction_mismatch", "operation_balance_missing", "operation_balance_mismatch"):
            return start <= _t(entity) < end
        if kind == "backup_entry_without_transaction":
            return start <= _t(entity.rsplit(":", 1)[1]) < end  # the injector's entries carry ttl = tx time
        if kind == "multiple_reversals":
            kids = [r[0] for r in conn.execute(
                'SELECT id::text FROM "transaction" WHERE parent_transaction_id = %s ORDER BY id', (entity,)).fetchall()]
            return any(start <= t < end for k in kids[1:] for t in tx_or_ops(k))
        return any(start <= t < end for t in tx_or_ops(entity))


def test_window_scope_reports_only_findings_inside_the_window(
        faulted: Ledger, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(faulted.env)
    env, now = faulted.env, faulted.now
    day0 = now.replace(hour=0, minute=0, second=0)
    windows = [(day0 - timedelta(days=d), day0 - timedelta(days=d - 1)) for d in range(10, -1, -1)]
    windows.append((now - timedelta(hours=20), now - timedelta(hours=2)))
    seen = set()
    for start, end in windows:
        result = check_once(CHECK, env.revision, now, start=start, end=end)
        got = reported(result)
        inside = {k for k in faulted.expected if _in_scope(env, k[1], k[2], start, end)}
        assert got == inside, (start, end, sorted(got ^ inside))
        assert faulted.manifest.keys(check=CHECK, window=(start, end)) <= got
        seen |= got
    assert seen == faulted.expected  # every finding is dated into some window, none twice-missed


# ---------------------------------------------------------------------------------------------------------
# 3. hand-written rows
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
    """One ledger per scenario; expected findings go to m.expected; returns the exact in-flight count."""
    old = m.ago(3 * 60)
    in_flight = 0

    def pair() -> tuple[Bal, Bal]:
        led = m.ledger()
        return m.balance("@a", led=led), m.balance("@b", led=led)

    def e(kind: str, entity: str) -> None:
        m.expect(CHECK, kind, entity)

    # ---- 6.3-a transactions without operations ----
    s, d = pair()
    e("transaction_without_operations", m.tx(old, "APPROVED", "5.00", bal=s))
    s, d = pair()
    t = m.tx(old, "APPROVED", "5.00", bal=s)                               # its only operation is deleted
    m.op(t, old, s, "DEBIT", "5.00", d_av="-5.00", deleted=True)
    e("transaction_without_operations", t)
    s, d = pair()
    m.tx(old, "APPROVED", "5.00", bal=s, deleted_ms=old + HOUR_MS)         # deleted: not judged
    s, d = pair()
    m.tx(m.ago(5), "APPROVED", "5.00", bal=s)                               # young
    in_flight += 1
    s, d = pair()
    t = m.tx(m.ago(40), "APPROVED", "5.00", bal=s)                          # backup entry 40 min old: evidence
    m.backup_entry(s, t, m.ago(40))
    in_flight += 1
    s, d = pair()
    t = m.tx(m.ago(180), "APPROVED", "5.00", bal=s)                         # entry past the hard grace: none
    m.backup_entry(s, t, m.ago(180))
    e("transaction_without_operations", t)

    # ---- 6.3-b operations under a deleted transaction or in another org/ledger ----
    s, d = pair()
    t = m.transfer(old, "3.00", s, d, deleted_ms=old + HOUR_MS)
    for (op,) in m.conn.execute("SELECT id::text FROM operation WHERE transaction_id = %s", (t,)).fetchall():
        e("operation_transaction_mismatch", op)
    s, d = pair()
    t = m.tx(old, "APPROVED", "3.00", bal=s, deleted_ms=old + HOUR_MS)     # deleted with its operations: fine
    m.op(t, old, s, "DEBIT", "3.00", d_av="-3.00", deleted=True)
    s, d = pair()
    t = m.tx(old, "APPROVED", "3.00", bal=s)
    m.op(t, old, s, "DEBIT", "3.00", d_av="-3.00")
    op = m.op(t, old, d, "CREDIT", "3.00", d_av="3.00", ledger=m.ledger()[1])
    e("operation_transaction_mismatch", op)
    e("operation_balance_mismatch", op)  # that leg's ledger also differs from its balance's

    # ---- 6.3-c operations whose balance is missing or disagrees ----
    s, d = pair()
    t = m.tx(old, "APPROVED", "2.00", bal=s)
    m.op(t, old, s, "DEBIT", "2.00", d_av="-2.00")
    e("operation_balance_missing", m.op(t, old, d, "CREDIT", "2.00", d_av="2.00", balance_id=m.id(old - DAY_MS)))
    for override in ({"alias": "@other"}, {"key": "savings"}, {"account_id": m.id(old)}, {"asset": "EUR"}):
        s, d = pair()
        t = m.tx(old, "APPROVED", "2.00", bal=s, asset=override.get("asset", "USD"))
        op = m.op(t, old, s, "DEBIT", "2.00", d_av="-2.00", **override)  # type: ignore[arg-type]
        e("operation_balance_mismatch", op)
        m.op(t, old, d, "CREDIT", "2.00", d_av="2.00", asset=override.get("asset"))
        if "asset" in override:  # the credit leg books EUR on a USD balance too
            e("operation_balance_mismatch", [r[0] for r in m.conn.execute(
                "SELECT id::text FROM operation WHERE transaction_id = %s AND type = 'CREDIT'", (t,)).fetchall()][0])
    s, d = pair()
    t = m.transfer(old, "2.00", s, d)                                       # a balance deleted later: still exists
    m.conn.execute("UPDATE balance SET deleted_at = %s WHERE id = %s", (datetime.fromtimestamp(old / 1000, UTC), d.id))
    s, d = pair()
    t = m.tx(m.ago(5), "APPROVED", "2.00", bal=s)                           # young operation: not judged
    m.op(t, m.ago(5), s, "DEBIT", "2.00", d_av="-2.00", balance_id=m.id(old))
    m.op(t, m.ago(5), d, "CREDIT", "2.00", d_av="2.00")
    in_flight += 1

    # ---- 6.3-d reversals ----
    def reversal(parent: str, src: Bal, dst: Bal, amount: str, ms: int, *, status: str = "APPROVED",
                 tx_amount: str | None = None, mirror: bool = True, ops: bool = True) -> str:
        child = m.tx(ms, status, tx_amount or amount, bal=src, parent=parent)
        if ops:  # the parent credited dst: the reversal debits it back and credits src
            m.op(child, ms, dst, "DEBIT", amount, d_av=f"-{amount}", key="default")
            m.op(child, ms, src if mirror else dst, "CREDIT", amount, d_av=amount)
        return child

    s, d = pair()
    p = m.transfer(old - HOUR_MS, "10.00", s, d)
    reversal(p, s, d, "10.00", old)                                         # a correct reversal
    s, d = pair()
    p = m.tx(old - HOUR_MS, "APPROVED", "10.00", bal=s)                     # of a committed pending: holds ignored
    m.op(p, old - HOUR_MS, s, "ON_HOLD", "10.00", d_av="-10.00", d_hold="10.00", before=(Decimal(10), ZERO))
    m.op(p, old - HOUR_MS + 1, s, "DEBIT", "10.00", d_hold="-10.00", before=(ZERO, Decimal(10)))
    m.op(p, old - HOUR_MS + 1, d, "CREDIT", "10.00", d_av="10.00")
    reversal(p, s, d, "10.00", old)
    s, d = pair()
    p = m.tx(old - HOUR_MS, "APPROVED", "10.00", bal=s)                     # parent used another key of dst:
    extra = m.balance("@b", led=(d.org, d.ledger), key="pocket", account_id=d.account_id)  # compared by account
    m.op(p, old - HOUR_MS, s, "DEBIT", "10.00", d_av="-10.00")
    m.op(p, old - HOUR_MS, extra, "CREDIT", "10.00", d_av="10.00")
    reversal(p, s, d, "10.00", old)
    s, d = pair()
    p = m.tx(old - HOUR_MS, "PENDING", "10.00", bal=s, body={"pending": True})  # parent not APPROVED
    m.op(p, old - HOUR_MS, s, "ON_HOLD", "10.00", d_av="-10.00", d_hold="10.00", before=(Decimal(10), ZERO))
    e("reversal_invalid", c := reversal(p, s, d, "10.00", old))
    e("reversal_asymmetric", c)  # the pending parent has no DEBIT/CREDIT legs to mirror
    s, d = pair()
    p = m.transfer(old - 2 * HOUR_MS, "10.00", s, d)
    c1 = reversal(p, s, d, "10.00", old - HOUR_MS)
    e("reversal_invalid", c2 := m.tx(old, "APPROVED", "10.00", bal=s, parent=c1))  # a reversal of a reversal
    m.op(c2, old, s, "DEBIT", "10.00", d_av="-10.00")
    m.op(c2, old, d, "CREDIT", "10.00", d_av="10.00")
    s, d = pair()
    p = m.transfer(old - HOUR_MS, "10.00", s, d)
    e("reversal_invalid", reversal(p, s, d, "10.00", old, tx_amount="9.00"))     # amount differs (legs mirror)
    s, d = pair()
    p = m.transfer(old - HOUR_MS, "10.00", s, d)
    e("reversal_invalid", c := reversal(p, s, d, "10.00", old, status="PENDING"))  # reversal not APPROVED
    e("pending_body_mismatch", c)  # (and a PENDING row without its body)
    s, d = pair()
    p = m.transfer(old - HOUR_MS, "10.00", s, d, deleted_ms=old - 1)
    e("reversal_invalid", reversal(p, s, d, "10.00", old))                       # parent deleted
    for (op,) in m.conn.execute("SELECT id::text FROM operation WHERE transaction_id = %s", (p,)).fetchall():
        e("operation_transaction_mismatch", op)  # and the deleted parent's operations are live
    s, d = pair()
    p = m.transfer(old - HOUR_MS, "10.00", s, d)
    other = m.balance("@a", led=m.ledger())
    child = m.tx(old, "APPROVED", "10.00", bal=other, parent=p)                  # reversal in another ledger
    m.op(child, old, other, "CREDIT", "10.00", d_av="10.00")
    m.op(child, old, other, "DEBIT", "10.00", d_av="-10.00")
    e("reversal_invalid", child)
    e("reversal_asymmetric", child)
    s, d = pair()
    p = m.transfer(old - HOUR_MS, "10.00", s, d)
    e("reversal_asymmetric", reversal(p, s, d, "10.00", old, mirror=False))     # credits the wrong account
    s, d = pair()
    p = m.transfer(old - HOUR_MS, "10.00", s, d)
    e("transaction_without_operations", reversal(p, s, d, "10.00", old, ops=False))  # no legs: 6.3-a only
    s, d = pair()
    p = m.transfer(old - 2 * HOUR_MS, "10.00", s, d)
    reversal(p, s, d, "10.00", old - HOUR_MS)
    reversal(p, s, d, "10.00", old)                                         # reversed twice
    e("multiple_reversals", p)
    s, d = pair()
    p = m.transfer(old - HOUR_MS, "10.00", s, d)
    reversal(p, s, d, "10.00", old)
    reversal(p, s, d, "10.00", m.ago(5), tx_amount="1.00")                  # a young second reversal: next run
    in_flight += 1
    s, d = pair()
    p = m.transfer(old - HOUR_MS, "10.00", s, d)
    t = reversal(p, s, d, "10.00", m.ago(40), mirror=False)                 # mid-write, backup entry: evidence
    m.backup_entry(s, t, m.ago(40))
    in_flight += 1

    # ---- 6.3-e status and body ----
    s, d = pair()
    e("persisted_created_status", m.transfer(old, "1.00", s, d, status="CREATED"))
    s, d = pair()
    e("persisted_created_status", m.transfer(old, "1.00", s, d, status="CREATED", body={"send": {}}))  # no body rule
    for status in ("approved", "SETTLED", ""):
        s, d = pair()
        e("unknown_transaction_status", m.transfer(old, "1.00", s, d, status=status))
    s, d = pair()
    t = m.tx(old, "PENDING", "1.00", bal=s)                                 # PENDING without body
    m.op(t, old, s, "ON_HOLD", "1.00", d_av="-1.00", d_hold="1.00", before=(Decimal(1), ZERO))
    e("pending_body_mismatch", t)
    s, d = pair()
    t = m.tx(old, "PENDING", "1.00", bal=s, body=None)                      # PENDING with a JSON null body
    m.conn.execute("""UPDATE "transaction" SET body = 'null'::jsonb WHERE id = %s""", (t,))
    m.op(t, old, s, "ON_HOLD", "1.00", d_av="-1.00", d_hold="1.00", before=(Decimal(1), ZERO))
    e("pending_body_mismatch", t)
    for status in ("APPROVED", "CANCELED", "NOTED"):                        # a body left after the status moved
        s, d = pair()
        e("pending_body_mismatch", m.transfer(old, "1.00", s, d, status=status, body={"send": {"value": "1.00"}}))
    s, d = pair()
    t = m.tx(old, "PENDING", "1.00", bal=s, body={"pending": True})         # a correct hold
    m.op(t, old, s, "ON_HOLD", "1.00", d_av="-1.00", d_hold="1.00", before=(Decimal(1), ZERO))
    s, d = pair()
    t = m.tx(old, "APPROVED", "1.00", bal=s, body={"pending": True})        # committed 5 minutes ago (async
    m.op(t, old, s, "ON_HOLD", "1.00", d_av="-1.00", d_hold="1.00", before=(Decimal(1), ZERO))  # consumer
    m.op(t, m.ago(5), s, "DEBIT", "1.00", d_hold="-1.00", before=(ZERO, Decimal(1)))  # nulls the body later)
    m.op(t, m.ago(5), d, "CREDIT", "1.00", d_av="1.00")
    in_flight += 1

    # ---- 6.3-f ageing holds (warnings) ----
    for days, status, kind in ((8, "PENDING", "ageing_pending_hold"), (6, "PENDING", None), (8, "CANCELED", None)):
        s, d = pair()
        ms = m.now_ms - days * DAY_MS
        t = m.tx(ms, status, "1.00", bal=s, body={"pending": True} if status == "PENDING" else None)
        m.op(t, ms, s, "ON_HOLD", "1.00", d_av="-1.00", d_hold="1.00", before=(Decimal(1), ZERO))
        if status == "CANCELED":
            m.op(t, ms, s, "RELEASE", "1.00", d_av="1.00", d_hold="-1.00", before=(ZERO, Decimal(1)))
        if kind:
            e(kind, t)
    s, d = pair()
    ms = m.now_ms - 8 * DAY_MS
    t = m.tx(ms, "PENDING", "1.00", bal=s, body={"pending": True}, updated_ms=m.now_ms - 2 * DAY_MS)  # touched
    m.op(t, ms, s, "ON_HOLD", "1.00", d_av="-1.00", d_hold="1.00", before=(Decimal(1), ZERO))       # 2 days ago

    # ---- backup-queue entries ----
    s, d = pair()
    e("backup_entry_without_transaction", m.backup_entry(s, m.id(m.ago(180)), m.ago(180)))     # lost write
    e("backup_entry_without_transaction", m.backup_entry(s, m.id(m.ago(180)), None))  # no ttl: tx time, old
    m.backup_entry(s, m.id(m.ago(20)), m.ago(20))                          # young: in flight
    in_flight += 1
    e("backup_entry_without_transaction", m.backup_entry(s, m.id(m.ago(20)), m.ago(180)))  # the ttl decides
    m.backup_entry(s, m.id(m.ago(180)), m.ago(20))                         # re-enqueued 20 min ago: in flight
    in_flight += 1
    t = m.tx(m.ago(180), "APPROVED", "1.00", bal=s, deleted_ms=m.ago(170))  # its row exists (deleted): not lost
    m.backup_entry(s, t, m.ago(180))
    t = m.transfer(m.ago(180), "1.00", s, d)                                # settled, entry left: settlement's
    m.backup_entry(s, t, m.ago(180))
    v4 = str(uuid.UUID(int=m.rng.getrandbits(128), version=4))
    m.backup_entry(s, v4, None)                                             # age unknown: settlement warns
    e("backup_entry_without_transaction",                                   # a value that is not JSON: the
      m.backup_entry(s, m.id(m.ago(180)), None, value=b"\x00not json"))   # field's UUIDv7 still dates it
    e("backup_entry_without_transaction",                                   # a field that names no
      m.backup_entry(s, "", m.ago(180), value={"ttl": m.ago_text(180)}, field_name="transaction:weird"))  # tx
    weird = b"transaction:{transactions}:\xff\xfe"                        # not UTF-8, old ttl
    m.redis.hset("backup_queue:{transactions}", weird, orjson.dumps({"ttl": m.ago_text(180)}))
    e("backup_entry_without_transaction", weird.decode("utf-8", errors="backslashreplace"))
    return in_flight


def test_hand_written_rules(mini: Mini, use_env: Callable[[MidazEnv], None]) -> None:
    use_env(mini.env)
    result = check_once(CHECK, mini.env.revision, mini.now)
    got = reported(result)
    assert got - mini.expected == set(), "reported but not expected"
    assert mini.expected - got == set(), "expected but not reported"
    assert result.warnings == sum(1 for k in mini.expected if k[1] == "ageing_pending_hold")
    assert result.violations == len(mini.expected) - result.warnings
    assert result.in_flight == mini.in_flight  # type: ignore[attr-defined]
    states = result.metrics["backup_entry_states"]
    # with a row: the deleted one, the settled transfer and the three evidence scenarios above
    assert states["age_unknown"] == 1 and states["has_transaction"] == 5 and states["in_flight"] == 2


def test_hand_written_window_scope(mini: Mini, use_env: Callable[[MidazEnv], None]) -> None:
    """The last two hours hold the young rows and the backup entries whose ttl is recent; the hours before
    hold the rest of the damage (only the re-enqueued entry's transaction id is old)."""
    use_env(mini.env)
    start, end = mini.now - timedelta(minutes=150), mini.now
    recent = check_once(CHECK, mini.env.revision, mini.now, start=start, end=end)
    assert all(k[1] == "backup_entry_without_transaction" or _t(k[2]) >= start for k in reported(recent))
    old = check_once(CHECK, mini.env.revision, mini.now, start=mini.now - timedelta(days=30), end=start)
    assert reported(recent) | reported(old) == mini.expected
    assert reported(recent) & reported(old) == set()


def test_tenant_backup_queues_are_scanned(mini: Mini, use_env: Callable[[MidazEnv], None],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(mini.env)
    s = mini.balance("@t", led=mini.ledger())
    tx = mini.id(mini.ago(300))
    f = f"transaction:{{transactions}}:{s.org}:{s.ledger}:{tx}"
    key = "tenant:acme:backup_queue:{transactions}"
    mini.redis.hset(key, f, orjson.dumps({"ttl": mini.ago_text(300), "transaction_id": tx}))
    try:
        monkeypatch.delenv(config.ENV_REDIS_TENANTS, raising=False)
        assert (CHECK, "backup_entry_without_transaction", f) not in reported(
            check_once(CHECK, mini.env.revision, mini.now))
        monkeypatch.setenv(config.ENV_REDIS_TENANTS, "*")
        assert (CHECK, "backup_entry_without_transaction", f) in reported(
            check_once(CHECK, mini.env.revision, mini.now))
    finally:
        mini.redis.delete(key)


@pytest.mark.parametrize("check", ["orphans", "double_entry"])
def test_redis_down_raises_for_a_retry(check: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that is down is an error Airflow retries, never a passed check."""
    from reconciliation.demo.servers import free_port

    monkeypatch.setenv("AIRFLOW_CONN_MIDAZ_REDIS", f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    with pytest.raises(Exception) as info:
        check_once(check, "r1", _now())
    assert "s3cret" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------
# 4. pure classification
# ---------------------------------------------------------------------------------------------------------


def _entry(field_name: str, value: object, now: datetime):  # type: ignore[no-untyped-def]
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return parse_backup_entry(field_name, raw, now)


def test_entry_state_classification() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    ctx = make_context("r1", now)  # hard grace 75 min
    tx_old = str(uuid.UUID(int=(int((now - timedelta(hours=3)).timestamp() * 1000) << 80) | (7 << 76) | (2 << 62) | 1))
    f = f"transaction:{{transactions}}:{uuid.uuid4()}:{uuid.uuid4()}:{tx_old}"
    go = lambda d: (now - d).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # noqa: E731  (Go writes nanoseconds)
    assert O.entry_state(_entry(f, {"ttl": go(timedelta(hours=2))}, now), False, ctx) == S.ENTRY_WITHOUT_TRANSACTION
    assert O.entry_state(_entry(f, {"ttl": go(timedelta(minutes=74))}, now), False, ctx) == S.ENTRY_IN_FLIGHT
    assert O.entry_state(_entry(f, {"ttl": go(timedelta(hours=2))}, now), True, ctx) == S.ENTRY_HAS_TRANSACTION
    # Go's zero time means "no ttl": the transaction id's UUIDv7 time dates the entry (3 h: old)
    assert O.entry_state(_entry(f, {"ttl": "0001-01-01T00:00:00Z"}, now), False, ctx) == S.ENTRY_WITHOUT_TRANSACTION
    v4 = f"transaction:{{transactions}}:{uuid.uuid4()}:{uuid.uuid4()}:{uuid.uuid4()}"
    assert O.entry_state(_entry(v4, {"balances": []}, now), False, ctx) == S.ENTRY_AGE_UNKNOWN
    assert O.entry_state(_entry("garbage", b"\xff", now), False, ctx) == S.ENTRY_AGE_UNKNOWN
    win = make_context("r1", now, start=now - timedelta(hours=1), end=now)
    assert O.entry_state(_entry(f, {"ttl": go(timedelta(hours=2))}, now), False, win) == S.ENTRY_OUTSIDE_WINDOW
    assert O.is_evidence(_entry(f, {"ttl": go(timedelta(minutes=30))}, now), ctx)
    assert not O.is_evidence(_entry(f, {"ttl": go(timedelta(hours=2))}, now), ctx)
    assert not O.is_evidence(_entry("transaction:x", {"ttl": go(timedelta(minutes=30))}, now), ctx)  # no tx id


def test_text_never_raises_on_bytes() -> None:
    assert O._text(b"transaction:\xff") == "transaction:\\xff"
    assert O._text("plain") == "plain"


def test_sql_params() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    params = S.sql_params(make_context("r2", now), ["b", "a"])
    assert params["evidence_txids"] == ["a", "b"]
    assert params["pending_before"] == now - timedelta(days=7)
    pend = uuid.UUID(params["pending_id_lower"])
    assert datetime.fromtimestamp((pend.int >> 80) / 1000, UTC) == now - timedelta(days=7)


def test_every_sql_file_names_an_orphans_kind() -> None:
    ctx = make_context("r1", datetime(2026, 3, 1, tzinfo=UTC))
    invariants, metrics = S.sql_invariants(ctx, S.sql_params(ctx))
    kinds = {inv.kind.split("__")[1] for inv in invariants}
    assert kinds == {i.kind for i in S.INVARIANTS} - {"backup_entry_without_transaction"}
    assert len(metrics) == 1
