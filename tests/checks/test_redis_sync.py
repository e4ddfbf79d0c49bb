"""redis_sync (reference §6.5): unit tests of key/value parsing and key classification, then real-server runs
on generated ledgers (R1 and R2): every injected fault found exactly, a clean ledger with its in-flight slice
silent, window scope restricting only the cold-balance rule, batching/streaming edge paths."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import psycopg
import pytest
import redis as redis_lib

from reconciliation.checks import redis_sync as rs
from reconciliation.checks.base import CheckContext
from reconciliation.config import ENV_REDIS_TENANTS, Params
from reconciliation.demo.faults import inject
from reconciliation.demo.generator import generate
from reconciliation.stores import redis as rstore
from reconciliation.window import Window
from tests.checks.conftest import check_once, make_context, reported

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)  # fixed: the generated ledger (and its fault sites) is deterministic
GAP_FIX = datetime(2026, 4, 13, tzinfo=UTC)
ORG = "0190a000-0000-7000-8000-000000000001"
LEDGER = "0190a000-0000-7000-8000-000000000002"
BID = "0190a000-0000-7000-8000-0000000000aa"
OP_ID = "0199a000-0000-7000-8000-0000000000bb"  # UUIDv7 time after the gap fix
REDIS_FAULTS = [
    "redis_version_behind", "redis_amount_divergent", "redis_ahead_unscheduled", "redis_ahead_expiring",
    "redis_operation_mismatch", "redis_key_unparseable", "redis_value_unparseable", "redis_balance_unknown",
    "redis_key_for_deleted_balance", "schedule_member_leaked", "schedule_worker_stuck",
    "balance_behind_last_operation",
]
ALL_KINDS = {
    "redis_key_unparseable", "redis_value_unparseable", "redis_balance_unknown", "redis_key_for_deleted_balance",
    "redis_version_behind", "redis_amount_divergent", "redis_ahead_unscheduled", "redis_ahead_expiring",
    "redis_operation_mismatch", "lost_flush", "schedule_member_leaked", "schedule_worker_stuck",
}


# ------------------------------------------------------------------------------------------- unit: parsing


@pytest.mark.parametrize(
    ("raw", "alias", "key", "tenant"),
    [
        (f"balance:{{transactions}}:{ORG}:{LEDGER}:@person1#default", "@person1", "default", ""),
        (f"balance:{{transactions}}:{ORG}:{LEDGER}:@external/USD#default", "@external/USD", "default", ""),
        (f"balance:{{transactions}}:{ORG}:{LEDGER}:a:b:c#savings-pocket", "a:b:c", "savings-pocket", ""),
        (f"balance:{{transactions}}:{ORG}:{LEDGER}:acc#k#weird", "acc", "k#weird", ""),  # first '#' splits
        (f"tenant:t1:balance:{{transactions}}:{ORG}:{LEDGER}:x#default", "x", "default", "tenant:t1:"),
    ],
)
def test_parse_balance_key_forms(raw: str, alias: str, key: str, tenant: str) -> None:
    p = rstore.parse_balance_key(raw)
    assert p is not None
    assert (p.organization_id, p.ledger_id, p.alias, p.key, p.tenant) == (ORG, LEDGER, alias, key, tenant)


@pytest.mark.parametrize(
    "raw",
    [
        "balance:{transactions}:corrupt-000001",
        f"balance:{{transactions}}:{ORG}:{LEDGER}:no-hash",
        f"balance:{{transactions}}:{ORG}:{LEDGER}:#default",  # empty alias
        f"balance:{{transactions}}:{ORG}:{LEDGER}:alias#",  # empty key
        f"balance:{{transactions}}:{ORG[:-1]}:{LEDGER}:a#default",  # short uuid
        f"balance:{{transactions}}:{ORG}{LEDGER}:a#default",
    ],
)
def test_parse_balance_key_rejects(raw: str) -> None:
    assert rstore.parse_balance_key(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"ID":"' + BID.encode() + b'","Available":"10.50","OnHold":"0","Version":3,"Alias":"0#@a#default"}',
        b'{"id":"' + BID.encode() + b'","available":"10.50","onHold":"0","version":3}',  # Go json tags
        b'{"ID":"' + BID.upper().encode() + b'","Available":10.50,"OnHold":0,"Version":"3"}',  # numbers
    ],
)
def test_parse_value_fast_path_and_fallback_agree(raw: bytes) -> None:
    v = rs.parse_value(raw)
    assert (v.id, v.available, v.on_hold, v.version) == (BID, Decimal("10.50"), Decimal("0"), 3)


@pytest.mark.parametrize(
    "raw",
    [b'{"ID":"x","Available":"1","OnHold":"0","Version":1}', b'{"ID":"' + BID.encode() + b'","Available":"1e",'
     b'"OnHold":"0","Version":1}', b'{"ID":"' + BID.encode() + b'","Available":"Infinity","OnHold":"0","Version":1}',
     b"not json", b'"a string"'],
)
def test_parse_value_rejects(raw: bytes) -> None:
    with pytest.raises(ValueError):
        rs.parse_value(raw)


def test_parse_balance_value_case_insensitive_exact_decimals() -> None:
    v = rstore.parse_balance_value(b'{"id":"' + BID.upper().encode() + b'","available":"0.10","onHold":"3.000",'
                                   b'"version":7,"key":"default"}')
    assert (v.id, v.available, v.on_hold, v.version) == (BID, Decimal("0.10"), Decimal("3.000"), 7)
    # a numeric amount is read exactly, never through a binary float
    v = rstore.parse_balance_value(b'{"ID":"' + BID.encode() + b'","Available":0.1,"OnHold":0,"Version":"3"}')
    assert v.available == Decimal("0.1") and v.version == 3


@pytest.mark.parametrize(
    "raw",
    [b'{"ID": "x", "Available": 12.5.0', b"[1,2]", b'{"ID":"x","Version":1}', b'{"ID":"x","Available":"abc","Version":1}',
     b'{"ID":"x","Available":"NaN","Version":1}', b'{"ID":"x","Available":"1","Version":true}'],
)
def test_parse_balance_value_rejects(raw: bytes) -> None:
    with pytest.raises(ValueError):
        rstore.parse_balance_value(raw)


# ------------------------------------------------------------------------------------ unit: classification


def _row(**kw) -> rs.PgRow:
    base = dict(id=BID, organization_id=ORG, ledger_id=LEDGER, alias="@a", key="default", available=Decimal("10"),
                on_hold=Decimal("0"), version=5, deleted=False, op_id=OP_ID, op_transaction_id=OP_ID,
                op_available=Decimal("10"), op_on_hold=Decimal("0"), op_version=5,
                op_written_at=datetime(2026, 6, 1, tzinfo=UTC))
    base.update(kw)
    return rs.PgRow(**base)


def _facts(*, version: int = 5, available: str = "10", on_hold: str = "0", row: rs.PgRow | None = None,
           ttl: int | None = 1800, scheduled: bool = False, locked: bool = False, live_ids: list[str] | None = None,
           backup_age: float | None = None, backup_named: bool = False, value_id: str = BID,
           raw: str | None = None) -> rs.KeyFacts:
    raw = raw or f"balance:{{transactions}}:{ORG}:{LEDGER}:@a#default"
    value = rstore.parse_balance_value(orjson.dumps(
        {"ID": value_id, "Available": available, "OnHold": on_hold, "Version": version}))
    return rs.KeyFacts(raw=raw, parsed=rstore.parse_balance_key(raw), value=value, ttl=ttl,
                       score_v2=1.0 if scheduled else None, locked=locked, row=row if row is not None else _row(),
                       live_ids=live_ids, backup_age=backup_age, backup_named=backup_named)


def _classify(f: rs.KeyFacts, revision: str = "r1", soft_s: float = 900, hard_s: float = 4500) -> tuple[str, str]:
    return rs.classify_key(f, revision=revision, soft_s=soft_s, hard_s=hard_s, gap_fix_at=GAP_FIX)


def test_classify_in_sync_and_postgres_relations() -> None:
    assert _classify(_facts()) == ("in_sync", "op_match")
    assert _classify(_facts(version=4)) == ("redis_version_behind", "redis_operation_mismatch")
    assert _classify(_facts(available="11")) == ("redis_amount_divergent", "redis_operation_mismatch")
    # PostgreSQL corrupted, Redis = the operation trail: only the PostgreSQL relation breaks
    assert _classify(_facts(row=_row(available=Decimal("9")))) == ("redis_amount_divergent", "op_match")


def test_classify_ahead_in_flight_and_not() -> None:
    ahead = {"version": 6, "available": "12", "row": _row(op_version=6, op_available=Decimal("12"))}
    assert _classify(_facts(**ahead, scheduled=True)) == ("in_flight", "op_match")
    assert _classify(_facts(**ahead, locked=True)) == ("in_flight", "op_match")
    assert _classify(_facts(**ahead, ttl=3600 - 60)) == ("in_flight", "op_match")  # written a minute ago
    assert _classify(_facts(**ahead, ttl=1800)) == ("redis_ahead_unscheduled", "op_match")
    assert _classify(_facts(**ahead, ttl=599)) == ("redis_ahead_expiring", "op_match")
    assert _classify(_facts(**ahead, ttl=599), "r2", hard_s=6000) == ("redis_ahead_unscheduled", "op_match")
    # a scheduled key whose last write is older than the hard grace is no longer excused
    assert _classify(_facts(**ahead, ttl=600, scheduled=True), hard_s=2000)[0] == "redis_ahead_unscheduled"
    # no expiry (TTL -1): age unknown, evidence still excuses
    assert _classify(_facts(**ahead, ttl=-1, scheduled=True))[0] == "in_flight"


def test_classify_operation_high_water_mark_rules() -> None:
    # R1: no-op increments (pending/cancel destinations) leave Version above L's version: fine
    r1_gap = _facts(version=7, row=_row(version=7, op_version=5))
    assert _classify(r1_gap, "r1") == ("in_sync", "op_match")
    # R2 after the gap fix: the version must equal L's
    assert _classify(r1_gap, "r2") == ("in_sync", "redis_operation_mismatch")
    # R2, L written before the gap fix: >= still applies
    old = _facts(version=7, row=_row(version=7, op_version=5, op_written_at=datetime(2026, 1, 1, tzinfo=UTC)))
    assert _classify(old, "r2") == ("in_sync", "op_match")
    # amounts ahead of the trail (operations not written yet): excused by a young backup entry or a young key
    ahead = {"version": 6, "available": "12", "scheduled": True}
    assert _classify(_facts(**ahead)) == ("in_flight", "redis_operation_mismatch")
    assert _classify(_facts(**ahead, backup_named=True, backup_age=600)) == ("in_flight", "op_in_flight")
    assert _classify(_facts(**ahead, backup_named=True, backup_age=None)) == ("in_flight", "op_in_flight")
    assert _classify(_facts(**ahead, backup_named=True, backup_age=5000)) == ("in_flight", "redis_operation_mismatch")
    assert _classify(_facts(**ahead, ttl=3500)) == ("in_flight", "op_in_flight")
    # a balance without balance-affecting operations has no high-water mark
    assert _classify(_facts(row=_row(op_id=None, op_version=None)))[1] == "no_operations"


def test_classify_identity_problems() -> None:
    assert _classify(rs.KeyFacts(raw="balance:{transactions}:x", parsed=None))[0] == "redis_key_unparseable"
    raw = f"balance:{{transactions}}:{ORG}:{LEDGER}:@a#default"
    bad = rs.KeyFacts(raw=raw, parsed=rstore.parse_balance_key(raw), value_error="not JSON")
    assert _classify(bad) == ("redis_value_unparseable", "not_applicable")
    gone = rs.KeyFacts(raw=raw, parsed=rstore.parse_balance_key(raw), missing=True)
    assert _classify(gone) == ("vanished", "not_applicable")
    f = _facts()
    f.row = None
    f.live_ids = []
    assert _classify(f) == ("redis_balance_unknown", "not_applicable")
    # the value's ID is a balance of another alias
    assert _classify(_facts(row=_row(alias="@other"), live_ids=[]))[0] == "redis_balance_unknown"
    # deleted balance, nothing recreated: the warning
    assert _classify(_facts(row=_row(deleted=True), live_ids=[]))[0] == "redis_key_for_deleted_balance"
    # deleted and recreated under a new id: the key names the old balance
    recreated = _facts(row=_row(deleted=True), live_ids=["0190a000-0000-7000-8000-0000000000cc"])
    assert _classify(recreated)[0] == "redis_balance_unknown"


def test_key_evidence_explains_the_finding() -> None:
    ev = rs.key_evidence(_facts(version=7, row=_row(version=7, op_version=5)), revision="r2", gap_fix_at=GAP_FIX)
    assert (ev["redis_version"], ev["pg_version"], ev["expected_version"], ev["version_rule"]) == (7, 7, 5, "=")
    assert ev["last_operation_id"] == OP_ID and ev["age_seconds"] == 1800 and ev["redis_available"] == Decimal("10")
    moved = rs.key_evidence(_facts(row=_row(alias="@other"), live_ids=[]), revision="r1", gap_fix_at=GAP_FIX)
    assert moved["pg_identity_of_id"] == f"{ORG}/{LEDGER}/@other#default" and moved["pg_live_ids"] == []
    raw = f"balance:{{transactions}}:{ORG}:{LEDGER}:@a#default"
    bad = rs.KeyFacts(raw=raw, parsed=rstore.parse_balance_key(raw), value_error="not JSON", ttl=100)
    assert rs.key_evidence(bad, revision="r1", gap_fix_at=GAP_FIX) == {"ttl": 100, "age_seconds": 3500,
                                                                      "reason": "not JSON"}


def test_classify_member_rules() -> None:
    now = 1_800_000_000.0
    m = {"key_exists": True, "locked": False, "now_s": now, "soft_s": 900}
    assert rs.classify_member(schedule="due", score=now + 100, **m) == "ok"
    assert rs.classify_member(schedule="due", score=now - 300, **m) == "ok"  # due, worker has 10 min
    assert rs.classify_member(schedule="due", score=now - 1800, **m) == "schedule_worker_stuck"
    assert rs.classify_member(schedule="due", score=now - 1800, **{**m, "locked": True}) == "ok"
    assert rs.classify_member(schedule="enqueued", score=now - 60, **m) == "ok"
    assert rs.classify_member(schedule="enqueued", score=now - 1000, **m) == "schedule_worker_stuck"
    assert rs.classify_member(schedule="due", score=now + 100, **{**m, "key_exists": False}) == "schedule_member_leaked"


def test_key_age_lock_keys_and_dedupe() -> None:
    assert rs.key_age(3000) == 600 and rs.key_age(-1) is None and rs.key_age(None) is None and rs.key_age(4000) == 0
    plain = f"balance:{{transactions}}:{ORG}:{LEDGER}:@a#default"
    assert rs.lock_keys(plain, rstore.parse_balance_key(plain)) == [rstore.SYNC_LOCK_PREFIX + plain]
    tenant = "tenant:t1:" + plain
    assert rs.lock_keys(tenant, rstore.parse_balance_key(tenant)) == [
        "tenant:t1:" + rstore.SYNC_LOCK_PREFIX + tenant, "tenant:t1:" + rstore.SYNC_LOCK_PREFIX + plain]
    assert rs._dedupe_hash(plain) == (True, rs.ident_hash(f"{ORG}:{LEDGER}:@a#default"))
    assert rs._dedupe_hash(plain.upper().replace("BALANCE:{TRANSACTIONS}", "balance:{transactions}"))[0] is False
    assert rs._dedupe_hash(tenant)[0] is False


# ------------------------------------------------------------------------------- real servers: fixtures


class _Ledgers:
    """Generated ledgers shared by this module's tests, created on first use."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.made: dict[tuple[str, str], tuple] = {}

    def get(self, revision: str, kind: str):
        if (revision, kind) not in self.made:
            env = self.stack.new_env(revision)
            stats = generate(env, operations=4000, seed=11, now=NOW, days=1)  # dense: many hot keys
            manifest = None
            if kind == "faulted":
                manifest = inject(env, faults=REDIS_FAULTS + ["stuck_backup_entry"], seed=11, now=NOW)
            self.made[(revision, kind)] = (env, manifest, stats)
        return self.made[(revision, kind)]


@pytest.fixture(scope="module")
def ledgers(local_stack):
    holder = _Ledgers(local_stack)
    yield holder
    if not os.environ.get("RECON_TEST_KEEP_DATA"):
        for env, _, _ in holder.made.values():
            local_stack.drop_env(env)


@pytest.fixture
def use(ledgers, monkeypatch):
    """use(revision, kind) -> (env, manifest, stats) with the env's connections set for this test."""

    def pick(revision: str, kind: str):
        env, manifest, stats = ledgers.get(revision, kind)
        for k, v in env.airflow_conn_env().items():
            monkeypatch.setenv(k, v)
        for k, v in (manifest.settings if manifest else {}).items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv(ENV_REDIS_TENANTS, raising=False)
        return env, manifest, stats

    return pick


# --------------------------------------------------------------------------- real servers: manifest tests


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_every_fault_found_exactly(use, revision: str) -> None:
    env, manifest, _ = use(revision, "faulted")
    injected = {n for n, f in manifest.faults.items() if f.get("injected")}
    wanted = set(REDIS_FAULTS) - ({"redis_ahead_expiring"} if revision == "r2" else set())
    assert wanted <= injected, {n: manifest.faults[n] for n in wanted - injected}
    result = check_once("redis_sync", revision, NOW)
    expected = manifest.keys(check="redis_sync")
    got = reported(result)
    assert got - expected == set(), "reported but not injected"
    assert expected - got == set(), "injected but not reported"
    kinds = {k for _, k, _ in expected}
    assert kinds == ALL_KINDS - ({"redis_ahead_expiring"} if revision == "r2" else set())
    assert result.violations == len([e for e in manifest.expected(check="redis_sync") if e.severity == "error"])
    assert result.warnings == len([e for e in manifest.expected(check="redis_sync") if e.severity == "warning"])
    assert result.status == "failed"
    # the violation carries the operator's identifiers
    for v in result.samples:
        if v.kind != "lost_flush":
            assert v.redis_key == v.entity
        else:
            assert v.balance_id == v.entity


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_clean_ledger_with_in_flight_slice_is_silent(use, revision: str) -> None:
    _, _, stats = use(revision, "clean")
    assert stats["inflight"], "the generator's in-flight slice is missing"
    result = check_once("redis_sync", revision, NOW)
    assert (result.violations, result.warnings, result.samples) == (0, 0, [])
    assert result.status == "passed"
    # items 1, 3, 5 (scheduled, ahead of PostgreSQL and of their operations) and 2 (young, unscheduled)
    assert result.in_flight >= 6
    assert result.metrics["keys_scanned"] == stats["redis"]["balance_keys"]
    assert result.metrics["backup_queue_depth"] == stats["redis"]["backup_queue_entries"]
    assert result.metrics["keys_by_class"]["in_flight"] >= 6


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_window_scope_restricts_only_the_cold_rule(use, revision: str) -> None:
    _, manifest, _ = use(revision, "faulted")
    lost = manifest.expected(check="redis_sync")
    lost = [e for e in lost if e.kind == "lost_flush"]
    assert len(lost) == 1
    at = lost[0].at_datetime
    current_state = {e.key for e in manifest.expected(check="redis_sync") if e.kind != "lost_flush"}
    inside = check_once("redis_sync", revision, NOW, start=at - timedelta(hours=1), end=at + timedelta(hours=1))
    assert reported(inside) == current_state | {lost[0].key}
    before = check_once("redis_sync", revision, NOW, start=at - timedelta(days=2), end=at - timedelta(minutes=1))
    assert reported(before) == current_state  # Redis is current state: judged whatever the window
    after = check_once("redis_sync", revision, NOW, start=at + timedelta(seconds=1), end=NOW)
    assert reported(after) == current_state


def test_small_batches_and_frames_give_the_same_findings(use, monkeypatch) -> None:
    """Many SCAN batches, prefetch overlap and GE frames of a few keys: the same exact findings."""
    _, manifest, _ = use("r1", "faulted")
    monkeypatch.setattr(rs, "SCAN_COUNT", 3)
    monkeypatch.setattr(rs, "FRAME_KEYS", 4)
    result = check_once("redis_sync", "r1", NOW)
    assert reported(result) == manifest.keys(check="redis_sync")
    assert result.metrics["ge_key_frames"] >= result.metrics["keys_scanned"] // 4
    assert result.metrics["keys_scan_duplicates"] >= 0


def test_replica_lag_extends_the_soft_grace(use) -> None:
    """A key ahead of PostgreSQL without a schedule entry, written 20 min ago: an error with a 15 min grace,
    in flight once 10 min of replica lag are added (reference §6.0)."""
    _, manifest, _ = use("r2", "faulted")
    unscheduled = {e.entity for e in manifest.expected(check="redis_sync") if e.kind == "redis_ahead_unscheduled"}
    assert unscheduled
    client = redis_lib.Redis.from_url(use("r2", "faulted")[0].redis_url)
    try:
        ages = {k: 3600 - client.ttl(k) for k in unscheduled}
    finally:
        client.close()
    lag = max(ages.values()) - 900 + 60  # enough lag to cover the oldest of them
    ctx = make_context("r2", NOW)
    ctx.extra["replica_lag_seconds"] = lag
    from reconciliation.checks import run_check

    result = run_check("redis_sync", ctx)
    got = reported(result)
    assert not {e for e in got if e[1] == "redis_ahead_unscheduled"}
    assert result.metrics["soft_grace_seconds"] == 900 + lag


# ------------------------------------------------------------------ real servers: hand-made edge cases


def _lost_flushes(env, n: int) -> list[tuple[str, str]]:
    """Set `n` cold balances back to before their last operation (the lost-flush signature); (id, identity)."""
    out = []
    client = redis_lib.Redis.from_url(env.redis_url)
    with psycopg.connect(env.transaction_conninfo) as conn:
        rows = conn.execute("""
            SELECT b.id::text, b.organization_id::text, b.ledger_id::text, b.alias, b.key, l.available_balance,
                   l.on_hold_balance, l.balance_version_before
            FROM balance b
            CROSS JOIN LATERAL (SELECT * FROM operation o WHERE o.balance_id = b.id AND o.balance_affected
                                ORDER BY o.balance_version_after DESC, o.created_at DESC, o.id DESC LIMIT 1) l
            WHERE b.deleted_at IS NULL AND b.account_type <> 'external' AND b.updated_at < %s
            ORDER BY b.id""", (NOW - timedelta(hours=3),)).fetchall()
        for bid, org, led, alias, key, av, oh, vb in rows:
            if client.exists(f"{rstore.BALANCE_PREFIX}{org}:{led}:{alias}#{key}"):
                continue
            conn.execute("UPDATE balance SET available = %s, on_hold = %s, version = %s WHERE id = %s",
                         (av, oh, vb, bid))
            out.append((bid, f"{org}:{led}:{alias}#{key}"))
            if len(out) == n:
                break
        conn.commit()
    client.close()
    assert len(out) == n
    return out


def test_lost_flush_exact_count_beyond_samples_and_hot_exclusion(local_stack, monkeypatch) -> None:
    env = local_stack.new_env("r1")
    try:
        for k, v in env.airflow_conn_env().items():
            monkeypatch.setenv(k, v)
        generate(env, operations=2500, seed=5, now=NOW)
        lost = _lost_flushes(env, 5)
        # one of them is hot again (a key holding it): Redis is authoritative, the cold rule must skip it
        hot_id, hot_ident = lost[0]
        with psycopg.connect(env.transaction_conninfo) as conn:
            av, oh, ver = conn.execute("SELECT available, on_hold, version FROM balance WHERE id = %s",
                                       (hot_id,)).fetchone()
        client = redis_lib.Redis.from_url(env.redis_url)
        client.set(rstore.BALANCE_PREFIX + hot_ident,
                   orjson.dumps({"ID": hot_id, "Available": str(av), "OnHold": str(oh), "Version": ver}), ex=3000)
        client.close()
        result = check_once("redis_sync", "r1", NOW, max_samples=2)
        lost_samples = [v for v in result.samples if v.kind == "lost_flush"]
        assert result.violations >= 4  # exact count beyond the 2 samples (the hot key may add Redis findings)
        assert len(result.samples) == 2 and result.truncated
        assert {v.entity for v in lost_samples} <= {b for b, _ in lost[1:]}
        assert result.metrics["cold_rule_hot_skipped"] == 1
        full = check_once("redis_sync", "r1", NOW)
        assert {v.entity for v in full.samples if v.kind == "lost_flush"} == {b for b, _ in lost[1:]}
        assert full.violations - len([v for v in full.samples if v.kind != "lost_flush"]) == 4
        # a young backup-queue entry naming a cold balance excuses it (in flight), an old one does not
        young_id, young_ident = lost[1]
        client = redis_lib.Redis.from_url(env.redis_url)
        org, led = young_ident.split(":")[:2]
        tx = "0190b000-0000-7000-8000-000000000001"
        client.hset(rstore.BACKUP_QUEUE, f"transaction:{{transactions}}:{org}:{led}:{tx}", orjson.dumps(
            {"transaction_id": tx, "balances": [{"ID": young_id}],
             "ttl": (NOW - timedelta(minutes=30)).isoformat().replace("+00:00", "Z")}))
        client.close()
        after = check_once("redis_sync", "r1", NOW)
        assert {v.entity for v in after.samples if v.kind == "lost_flush"} == {b for b, _ in lost[2:]}
        assert after.metrics["cold_rule_in_flight"] == 1
    finally:
        if not os.environ.get("RECON_TEST_KEEP_DATA"):
            local_stack.drop_env(env)


def test_finding_resolved_since_the_snapshot_is_confirmed_away(local_stack, monkeypatch) -> None:
    """R1: a key ahead of PostgreSQL (a no-op version bump), unscheduled, 30 min old, is redis_ahead_unscheduled;
    if the sync worker flushes it while the check runs (after the snapshot), the fresh confirmation read clears
    it instead of reporting a finding that no longer holds."""
    env = local_stack.new_env("r1")
    try:
        for k, v in env.airflow_conn_env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv(ENV_REDIS_TENANTS, raising=False)
        generate(env, operations=2500, seed=8, now=NOW, days=1)
        client = redis_lib.Redis.from_url(env.redis_url)
        with psycopg.connect(env.transaction_conninfo) as conn:
            candidates = conn.execute("SELECT id::text, organization_id::text, ledger_id::text, alias, key, version "
                                      "FROM balance WHERE deleted_at IS NULL ORDER BY updated_at DESC").fetchall()
        def in_sync_hot(row: tuple) -> bool:
            got = client.get(f"{rstore.BALANCE_PREFIX}{row[1]}:{row[2]}:{row[3]}#{row[4]}")
            return bool(got) and orjson.loads(got)["Version"] == row[5]

        bid, org, led, alias, key, ver = next(r for r in candidates if in_sync_hot(r))
        raw = f"{rstore.BALANCE_PREFIX}{org}:{led}:{alias}#{key}"
        got = client.get(raw)
        value = orjson.loads(got)
        value["Version"] = ver + 1
        client.set(raw, orjson.dumps(value), ex=1800)
        client.zrem(rstore.SCHEDULE_R1, raw)
        client.close()
        before = check_once("redis_sync", "r1", NOW)
        assert ("redis_sync", "redis_ahead_unscheduled", raw) in reported(before)

        original = rs.fetch_details

        def flush_meanwhile(cl, facts, **kw):  # the worker's UPDATE lands after the check's snapshot
            original(cl, facts, **kw)
            with psycopg.connect(env.transaction_conninfo) as c:
                c.execute("UPDATE balance SET version = %s WHERE id = %s AND version < %s", (ver + 1, bid, ver + 1))

        monkeypatch.setattr(rs, "fetch_details", flush_meanwhile)
        after = check_once("redis_sync", "r1", NOW)
        assert ("redis_sync", "redis_ahead_unscheduled", raw) not in reported(after)
        assert after.metrics["findings_confirmed_away"] == 1
    finally:
        if not os.environ.get("RECON_TEST_KEEP_DATA"):
            local_stack.drop_env(env)


def test_tenant_keys_and_scan_of_configured_tenants(local_stack, monkeypatch) -> None:
    """Multi-tenant keys (R2 `tenant:<id>:` prefix) are scanned when configured and judged like plain ones;
    their schedule and lock keys carry the prefix too."""
    env = local_stack.new_env("r2")
    try:
        for k, v in env.airflow_conn_env().items():
            monkeypatch.setenv(k, v)
        generate(env, operations=2500, seed=3, now=NOW)
        client = redis_lib.Redis.from_url(env.redis_url)
        with psycopg.connect(env.transaction_conninfo) as conn:
            rows = conn.execute(
                "SELECT id::text, organization_id::text, ledger_id::text, alias, key, available, on_hold, version "
                "FROM balance b WHERE deleted_at IS NULL AND EXISTS (SELECT 1 FROM operation o WHERE "
                "o.balance_id = b.id AND o.balance_affected) ORDER BY id LIMIT 2").fetchall()
        keys = []
        for i, (bid, org, led, alias, key, av, oh, ver) in enumerate(rows):
            raw = f"tenant:acme:{rstore.BALANCE_PREFIX}{org}:{led}:{alias}#{key}"
            keys.append(raw)
            # the first is in sync; the second is ahead and scheduled in its tenant's v2 ZSET (in flight)
            value = {"ID": bid, "Available": str(av), "OnHold": str(oh), "Version": ver + i}
            client.set(raw, orjson.dumps(value), ex=1800)  # written 30 min ago: past the soft grace
        client.zadd("tenant:acme:" + rstore.SCHEDULE_R2, {keys[1]: NOW.timestamp()})
        client.close()
        monkeypatch.setenv(ENV_REDIS_TENANTS, "acme")
        result = check_once("redis_sync", "r2", NOW)
        assert result.metrics["scan_patterns"] == 2
        tenant_findings = {(k, e) for _, k, e in reported(result) if e.startswith("tenant:")}
        # the second key is ahead of its operation trail with no backup entry: that invariant still applies
        assert tenant_findings == {("redis_operation_mismatch", keys[1])}
        assert "tenant:acme:" + rstore.SCHEDULE_R2 in result.metrics["schedule_sizes"]
        monkeypatch.setenv(ENV_REDIS_TENANTS, "")
        plain = check_once("redis_sync", "r2", NOW)
        assert plain.metrics["keys_scanned"] == result.metrics["keys_scanned"] - 2
        # a key of another Redis type under the balance prefix is bad input: reported, never skipped
        client = redis_lib.Redis.from_url(env.redis_url)
        odd = f"{rstore.BALANCE_PREFIX}{rows[0][1]}:{rows[0][2]}:@odd#default"
        client.hset(odd, "Available", "1")
        client.close()
        odd_run = check_once("redis_sync", "r2", NOW)
        assert ("redis_sync", "redis_value_unparseable", odd) in reported(odd_run)
        assert odd_run.metrics["keys_by_class"].get("vanished", 0) == 0
    finally:
        if not os.environ.get("RECON_TEST_KEEP_DATA"):
            local_stack.drop_env(env)


def test_store_down_raises_sanitised(monkeypatch) -> None:
    """A Redis that cannot be reached propagates (Airflow retries) and leaks no password."""
    monkeypatch.setenv("AIRFLOW_CONN_MIDAZ_REDIS", "redis://:s3cretpass@127.0.0.1:1/?db=0")
    monkeypatch.setenv("AIRFLOW_CONN_MIDAZ_TRANSACTION_DB", "postgresql://u:s3cretpass@127.0.0.1:1/x")
    ctx = CheckContext(window=Window.full(now=NOW), revision="r1", params=Params())
    with pytest.raises(Exception) as info:
        rs.run(ctx)
    assert "s3cretpass" not in str(info.value)
