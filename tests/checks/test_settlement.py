"""settlement (reference §6.6, DESIGN §7): unit tests of backup-queue entry parsing, ageing and classification,
then real-server runs on generated ledgers (R1 and R2): every injected fault found exactly, a clean ledger with
its in-flight slice silent, window scope, replica lag, pending locks and tenant queues."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
import redis as redis_lib

from reconciliation.checks import run_check
from reconciliation.checks import settlement as st
from reconciliation.config import ENV_REDIS_TENANTS
from reconciliation.demo.faults import inject
from reconciliation.demo.gen_model import uuid7
from reconciliation.demo.generator import generate
from reconciliation.stores import redis as rstore
from tests.checks.conftest import check_once, make_context, reported

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)  # fixed: the generated ledger (and its fault sites) is deterministic
ORG = "0190a000-0000-7000-8000-000000000001"
LEDGER = "0190a000-0000-7000-8000-000000000002"
SETTLEMENT_FAULTS = ["backup_entry_without_transaction", "stuck_backup_entry", "backup_entry_age_unknown",
                     "quarantined_transaction"]
RNG = random.Random(99)


def _v7(at: datetime) -> str:
    return uuid7(int(at.timestamp() * 1000), RNG)


def _field(tx: str, org: str = ORG, ledger: str = LEDGER) -> str:
    return f"transaction:{{transactions}}:{org}:{ledger}:{tx}"


# ------------------------------------------------------------------------------------------- unit: parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07-24T10:00:00Z", datetime(2026, 7, 24, 10, 0, tzinfo=UTC)),
        ("2026-07-24T10:00:00.123456789Z", datetime(2026, 7, 24, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-07-24T07:00:00.5-03:00", datetime(2026, 7, 24, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-07-24T10:00:00+0000", datetime(2026, 7, 24, 10, 0, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),  # Go's zero time: no ttl
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (0, None),
        (1_780_000_000, datetime.fromtimestamp(1_780_000_000, UTC)),
        (1_780_000_000_000, datetime.fromtimestamp(1_780_000_000, UTC)),
        ({"t": 1}, None),
    ],
)
def test_parse_go_time(text, expected) -> None:
    assert st.parse_go_time(text) == expected


@pytest.mark.parametrize(
    ("alias", "key", "expected"),
    [
        ("0#@person1#default", None, "@person1#default"),
        ("12#a:b:c#savings", None, "a:b:c#savings"),
        ("@person1#reserve", None, "@person1#reserve"),
        ("@person1", "reserve", "@person1#reserve"),
        ("@person1", None, "@person1#default"),
        ("3#@external/USD", None, "@external/USD#default"),
        ("", None, None),
        (None, None, None),
        (42, None, None),
    ],
)
def test_alias_identity_forms(alias, key, expected) -> None:
    got = st.alias_identity(ORG, LEDGER, alias, key)
    assert got == (f"{ORG}:{LEDGER}:{expected}" if expected else None)


def test_parse_full_entry_dated_by_ttl_names_its_balances() -> None:
    tx = _v7(NOW - timedelta(hours=5))  # the ttl (enqueue time) wins over the transaction's own time
    bid = _v7(NOW - timedelta(days=3))
    raw = orjson.dumps({
        "transaction_id": tx, "organization_id": ORG, "ledger_id": LEDGER, "transaction_status": "CREATED",
        "ttl": (NOW - timedelta(minutes=40)).strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
        "balances": [{"ID": bid.upper(), "Alias": "0#@a#default"}, {"id": "not-a-uuid", "alias": "@b", "key": "k"}],
        "balancesAfter": [{"ID": bid}],
        "validate": {"from": {"0#@a#default": {}}, "to": {"1#@c#default": {}}, "aliases": ["2#@d#x"]},
    })
    e = st.parse_backup_entry(_field(tx), raw, NOW)
    assert (e.transaction_id, e.organization_id, e.ledger_id, e.age_source) == (tx, ORG, LEDGER, "ttl")
    assert e.age_seconds == pytest.approx(2400, abs=1)
    assert e.balance_ids == {bid}
    assert e.identities == {f"{ORG}:{LEDGER}:{x}" for x in ("@a#default", "@b#k", "@c#default", "@d#x")}
    assert e.has_validate and e.status == "CREATED" and e.parse_error is None


def test_parse_lua_commit_entry_dated_by_transaction_id() -> None:
    """R1 commit/cancel: Lua HSETs only {"balances": [...]}: no ttl, no validate (reference §4.4)."""
    tx = _v7(NOW - timedelta(hours=3))
    e = st.parse_backup_entry(_field(tx), orjson.dumps({"balances": [{"ID": ORG, "Alias": "1#@x#default"}]}), NOW)
    assert e.age_source == "transaction_id" and e.age_seconds == pytest.approx(3 * 3600, abs=1)
    assert not e.has_validate and e.balance_ids == {ORG}
    assert st.classify_entry(e, hard_s=4500) == "stuck_backup_entry"
    # a zero ttl is "no ttl" too
    e = st.parse_backup_entry(_field(tx), orjson.dumps({"ttl": "0001-01-01T00:00:00Z"}), NOW)
    assert e.age_source == "transaction_id"


def test_parse_undatable_and_broken_entries() -> None:
    v4 = "6f1c2a3e-1b2c-4d5e-8f90-123456789abc"
    e = st.parse_backup_entry(_field(v4), b'{"balances": []}', NOW)
    assert e.age_seconds is None and e.age_source is None
    assert st.classify_entry(e, hard_s=4500) == "backup_entry_age_unknown"
    # not JSON: still dated by its field's transaction id, and never a crash
    tx = _v7(NOW - timedelta(minutes=5))
    e = st.parse_backup_entry(_field(tx), b"\x00garbage", NOW)
    assert e.parse_error == "value is not JSON" and e.age_source == "transaction_id"
    assert st.classify_entry(e, hard_s=4500) == "in_flight"
    # a field that does not parse: the JSON's own ids are used
    e = st.parse_backup_entry("weird-field", orjson.dumps({"transaction_id": tx, "organization_id": ORG,
                                                           "ledger_id": LEDGER}), NOW)
    assert (e.transaction_id, e.organization_id) == (tx, ORG)
    e = st.parse_backup_entry("weird-field", b"[]", NOW)
    assert e.transaction_id is None and e.age_seconds is None and e.parse_error == "value is not a JSON object"
    # tenant-prefixed field (R2 multi-tenant)
    e = st.parse_backup_entry("tenant:t1:" + _field(tx), b"{}", NOW)
    assert (e.transaction_id, e.organization_id) == (tx, ORG)
    # a ttl in the future is age 0, not negative
    e = st.parse_backup_entry(_field(tx), orjson.dumps({"ttl": (NOW + timedelta(hours=1)).isoformat()}), NOW)
    assert e.age_seconds == 0.0


def _tx(status: str = "APPROVED", *, has_body: bool = False, age_min: float = 60, n_ops: int = 2,
        behind: list[str] | None = None) -> st.TxFacts:
    return st.TxFacts(_v7(NOW), ORG, LEDGER, status, has_body, NOW - timedelta(minutes=age_min), n_ops, behind or [])


def test_classify_transaction() -> None:
    c = {"now": NOW, "soft_s": 900, "hard_s": 4500, "pending_lock": False, "balance_evidence": False,
         "has_entry": False, "entry_age": None}

    def cls(tx: st.TxFacts, **kw) -> str:
        return st.classify_transaction(tx, **{**c, **kw})

    assert cls(_tx()) == "settled"
    assert cls(_tx("NOTED")) == "settled"
    assert cls(_tx("CANCELED")) == "settled"
    assert cls(_tx("PENDING", has_body=True)) == "held"
    assert cls(_tx("PENDING", has_body=True), pending_lock=True) == "in_flight"  # a commit or cancel is running
    # a backup-queue entry: in flight until the hard grace, stuck after it, even when PostgreSQL looks settled
    assert cls(_tx(), has_entry=True, entry_age=600) == "in_flight"
    assert cls(_tx(), has_entry=True, entry_age=5000) == "stuck"
    assert cls(_tx(), has_entry=True, entry_age=None) == "in_flight"  # undated: reported as a warning instead
    # unsettled in PostgreSQL: operations missing, a balance behind, a non-final status
    for tx in (_tx(n_ops=0, age_min=5), _tx(behind=["k"], age_min=5), _tx("CREATED", age_min=5)):
        assert cls(tx) == "in_flight"  # younger than the soft grace
    assert cls(_tx(n_ops=0, age_min=30)) == "stuck"
    assert cls(_tx(behind=["k"], age_min=30), balance_evidence=True) == "in_flight"  # the sync worker holds it
    assert cls(_tx(behind=["k"], age_min=80), balance_evidence=True) == "stuck"  # not past the hard grace
    assert cls(_tx("PENDING", has_body=False, age_min=30)) == "stuck"


def test_entry_window_placement() -> None:
    ctx = make_context("r1", NOW, start=NOW - timedelta(days=1), end=NOW - timedelta(hours=1))
    inside = st.parse_backup_entry(_field(_v7(NOW - timedelta(hours=3))), b"{}", NOW)
    after = st.parse_backup_entry(_field(_v7(NOW - timedelta(minutes=5))), b"{}", NOW)
    undated = st.parse_backup_entry(_field("6f1c2a3e-1b2c-4d5e-8f90-123456789abc"), b"{}", NOW)
    assert st.entry_in_window(inside, ctx) and not st.entry_in_window(after, ctx) and st.entry_in_window(undated, ctx)
    assert st.entry_in_window(after, make_context("r1", NOW))


# ------------------------------------------------------------------------------- real servers: fixtures


class _Ledgers:
    def __init__(self, stack) -> None:
        self.stack = stack
        self.made: dict[tuple[str, str], tuple] = {}

    def get(self, revision: str, kind: str):
        if (revision, kind) not in self.made:
            env = self.stack.new_env(revision)
            stats = generate(env, operations=3000, seed=21, now=NOW)
            manifest = None
            if kind == "faulted":
                faults = [f for f in SETTLEMENT_FAULTS if revision == "r2" or f != "quarantined_transaction"]
                manifest = inject(env, faults=faults, seed=21, now=NOW)
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
    def pick(revision: str, kind: str):
        env, manifest, stats = ledgers.get(revision, kind)
        for k, v in env.airflow_conn_env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv(ENV_REDIS_TENANTS, raising=False)
        return env, manifest, stats

    return pick


# --------------------------------------------------------------------------- real servers: manifest tests


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_every_fault_found_exactly(use, revision: str) -> None:
    _, manifest, _ = use(revision, "faulted")
    wanted = [f for f in SETTLEMENT_FAULTS if revision == "r2" or f != "quarantined_transaction"]
    assert all(manifest.faults[f].get("injected") for f in wanted), manifest.faults
    result = check_once("settlement", revision, NOW)
    expected = manifest.keys(check="settlement")
    got = reported(result)
    assert got - expected == set(), "reported but not injected"
    assert expected - got == set(), "injected but not reported"
    kinds = {k for _, k, _ in expected}
    assert kinds == {"stuck_backup_entry", "backup_entry_age_unknown"} | (
        {"quarantined_transaction"} if revision == "r2" else set())
    by_kind = {v.kind: v for v in result.samples}
    assert by_kind["backup_entry_age_unknown"].severity == "warning"
    assert by_kind["stuck_backup_entry"].details["age_seconds"] >= result.metrics["hard_grace_seconds"]
    assert by_kind["stuck_backup_entry"].details["age_source"] == "ttl"
    assert result.warnings == 1 and result.status == "failed"
    m = result.metrics
    assert m["transactions_stuck"] >= len(expected) - 1  # stuck entries and quarantined rows
    assert m["backup_queue_depth"] == m["entries_judged"]
    assert m["backup_queue_oldest_age_seconds"] >= 2 * 3600


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_clean_ledger_with_in_flight_slice_is_silent(use, revision: str) -> None:
    _, _, stats = use(revision, "clean")
    result = check_once("settlement", revision, NOW)
    assert (result.violations, result.warnings, result.samples) == (0, 0, [])
    assert result.status == "passed"
    entries = stats["redis"]["backup_queue_entries"]
    assert entries >= 5
    m = result.metrics
    # every in-flight item of the slice has a young backup-queue entry: in flight, not stuck
    assert result.in_flight == m["transactions_in_flight"] >= entries
    assert m["transactions_stuck"] == 0 and m["balances_stuck"] == 0
    assert m["transactions_settled"] > 0 and m["entries_in_flight"] == entries == m["backup_queue_depth"]
    assert 0 < m["oldest_in_flight_age_seconds"] < m["hard_grace_seconds"]
    assert m["schedule_depth"] > 0


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_window_scope(use, revision: str) -> None:
    """Entries and quarantine rows are placed at their write time; an undated entry is reported by every run."""
    _, manifest, _ = use(revision, "faulted")
    for entry in manifest.expected(check="settlement"):
        if entry.kind == "backup_entry_age_unknown":
            continue
        at = entry.at_datetime
        inside = check_once("settlement", revision, NOW, start=at - timedelta(minutes=30), end=at + timedelta(minutes=1))
        assert entry.key in reported(inside)
        undated = {e.key for e in manifest.expected(check="settlement") if e.kind == "backup_entry_age_unknown"}
        others = {e.key for e in manifest.expected(check="settlement", window=(at - timedelta(minutes=30),
                                                                                  at + timedelta(minutes=1)))}
        assert reported(inside) == (others | undated)
        outside = check_once("settlement", revision, NOW, start=at + timedelta(seconds=1), end=NOW)
        assert entry.key not in reported(outside)
    # a window with no fault in it reports just the undated entry
    lo = NOW - timedelta(days=3, hours=1)
    quiet = check_once("settlement", revision, NOW, start=lo, end=lo + timedelta(minutes=10))
    assert {k for _, k, _ in reported(quiet)} == {"backup_entry_age_unknown"}
    assert quiet.metrics["entries_judged"] == 1  # only the undated entry is judged in that window


# ------------------------------------------------------------------ real servers: hand-made evidence


def _insert_tx(env, tx: str, status: str, at: datetime, body: dict | None = None) -> None:
    with psycopg.connect(env.transaction_conninfo) as conn:
        org, led, code = conn.execute(
            "SELECT organization_id, ledger_id, asset_code FROM balance ORDER BY id LIMIT 1").fetchone()
        conn.execute(
            'INSERT INTO "transaction" (id, description, status, status_description, amount, asset_code, '
            "chart_of_accounts_group_name, ledger_id, organization_id, body, created_at, updated_at) "
            "VALUES (%s, '', %s, %s, 5, %s, '', %s, %s, %s, %s, %s)",
            (tx, status, status, code, led, org, orjson.dumps(body).decode() if body else None, at, at))
        conn.commit()


def test_replica_lag_pending_locks_and_tenant_queues(local_stack, monkeypatch) -> None:
    env = local_stack.new_env("r1")
    try:
        for k, v in env.airflow_conn_env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv(ENV_REDIS_TENANTS, raising=False)
        generate(env, operations=2000, seed=4, now=NOW, inflight=False)
        base = check_once("settlement", "r1", NOW).metrics
        assert base["transactions_in_flight"] == base["transactions_stuck"] == 0

        # An APPROVED row without operations, 20 min old, no evidence: stuck (a metric; orphans reports it).
        _insert_tx(env, _v7(NOW - timedelta(minutes=20)), "APPROVED", NOW - timedelta(minutes=20))
        m = check_once("settlement", "r1", NOW).metrics
        assert (m["transactions_stuck"], m["transactions_in_flight"]) == (1, 0)
        # ... in flight when the replica lags 10 minutes (the soft grace becomes 25 min).
        ctx = make_context("r1", NOW)
        ctx.extra["replica_lag_seconds"] = 600
        lagged = run_check("settlement", ctx)
        assert (lagged.metrics["transactions_stuck"], lagged.in_flight) == (0, 1)
        assert lagged.metrics["soft_grace_seconds"] == 900 + 600

        # A PENDING hold is settled as a hold; with a pending_transaction lock its commit is running.
        hold = _v7(NOW - timedelta(minutes=30))
        _insert_tx(env, hold, "PENDING", NOW - timedelta(minutes=30), body={"send": {"value": "5"}})
        with psycopg.connect(env.transaction_conninfo) as conn:
            org, led = conn.execute('SELECT organization_id::text, ledger_id::text FROM "transaction" WHERE id = %s',
                                    (hold,)).fetchone()
            bal = conn.execute("SELECT id, account_id, alias, key, available FROM balance WHERE organization_id = %s "
                               "AND ledger_id = %s AND account_type <> 'external' ORDER BY id LIMIT 1",
                               (org, led)).fetchone()
            v = conn.execute("SELECT COALESCE(version, 0) FROM balance WHERE id = %s", (bal[0],)).fetchone()[0]
            conn.execute(
                "INSERT INTO operation (id, transaction_id, description, type, asset_code, amount, available_balance, "
                "on_hold_balance, available_balance_after, on_hold_balance_after, status, account_id, account_alias, "
                "balance_id, chart_of_accounts, organization_id, ledger_id, created_at, updated_at, balance_key, "
                "balance_version_before, balance_version_after) SELECT %s, %s, '', 'ON_HOLD', asset_code, 0, "
                "available, on_hold, available, on_hold, '', account_id, alias, id, '', organization_id, ledger_id, "
                "%s, %s, key, %s, %s FROM balance WHERE id = %s",
                (_v7(NOW - timedelta(minutes=30)), hold, NOW - timedelta(minutes=30), NOW - timedelta(minutes=30),
                 v, v, bal[0]))
            conn.commit()
        m = check_once("settlement", "r1", NOW).metrics
        assert m["transactions_held"] == base["transactions_held"] + 1
        client = redis_lib.Redis.from_url(env.redis_url)
        client.set(f"{rstore.PENDING_LOCK_PREFIX}{org}:{led}:{hold}", "1", ex=300)
        m = check_once("settlement", "r1", NOW).metrics
        assert m["transactions_held"] == base["transactions_held"]
        assert m["transactions_in_flight"] == 1

        # A tenant's backup queue is read when the tenant is configured.
        old_tx = _v7(NOW - timedelta(hours=4))
        field = "tenant:acme:" + _field(old_tx, org, led)
        client.hset("tenant:acme:" + rstore.BACKUP_QUEUE, field, orjson.dumps({"transaction_id": old_tx}))
        client.close()
        assert "stuck_backup_entry" not in {k for _, k, _ in reported(check_once("settlement", "r1", NOW))}
        monkeypatch.setenv(ENV_REDIS_TENANTS, "acme")
        got = reported(check_once("settlement", "r1", NOW))
        assert ("settlement", "stuck_backup_entry", field) in got
        monkeypatch.setenv(ENV_REDIS_TENANTS, "*")
        assert ("settlement", "stuck_backup_entry", field) in reported(check_once("settlement", "r1", NOW))
    finally:
        if not os.environ.get("RECON_TEST_KEEP_DATA"):
            local_stack.drop_env(env)


def test_lagging_balance_evidence_and_wrong_typed_keys(local_stack, monkeypatch) -> None:
    """A transaction whose balance PostgreSQL has not caught up with is in flight while the sync worker still
    holds the hot key (schedule entry), stuck without it; Midaz keys of the wrong Redis type are skipped and
    named in the metrics, never a crash (bad input)."""
    env = local_stack.new_env("r2")
    try:
        for k, v in env.airflow_conn_env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv(ENV_REDIS_TENANTS, raising=False)
        generate(env, operations=2000, seed=6, now=NOW, inflight=False)
        at = NOW - timedelta(minutes=30)
        tx = _v7(at)
        _insert_tx(env, tx, "APPROVED", at)
        with psycopg.connect(env.transaction_conninfo) as conn:
            bid, org, led, alias, key, ver = conn.execute(
                "SELECT id::text, organization_id::text, ledger_id::text, alias, key, COALESCE(version, 0) "
                "FROM balance WHERE account_type <> 'external' AND deleted_at IS NULL ORDER BY id LIMIT 1").fetchone()
            conn.execute(
                "INSERT INTO operation (id, transaction_id, description, type, asset_code, amount, available_balance, "
                "on_hold_balance, available_balance_after, on_hold_balance_after, status, account_id, account_alias, "
                "balance_id, chart_of_accounts, organization_id, ledger_id, created_at, updated_at, balance_key, "
                "balance_version_before, balance_version_after, direction) SELECT %s, %s, '', 'CREDIT', asset_code, "
                "1, available, on_hold, available + 1, on_hold, '', account_id, alias, id, '', organization_id, "
                "ledger_id, %s, %s, key, %s, %s, 'credit' FROM balance WHERE id = %s",
                (_v7(at), tx, at, at, ver, ver + 1, bid))
            conn.commit()
        m = check_once("settlement", "r2", NOW).metrics
        assert (m["transactions_stuck"], m["balances_stuck"]) == (1, 1)
        raw = f"{rstore.BALANCE_PREFIX}{org}:{led}:{alias}#{key}"
        client = redis_lib.Redis.from_url(env.redis_url)
        client.set(raw, orjson.dumps({"ID": bid, "Available": "1", "OnHold": "0", "Version": ver + 1}), ex=1800)
        client.zadd(rstore.SCHEDULE_R2, {raw: at.timestamp()})
        m = check_once("settlement", "r2", NOW).metrics
        assert (m["transactions_stuck"], m["transactions_in_flight"]) == (0, 1)
        assert (m["balances_stuck"], m["balances_in_flight"]) == (0, 1)

        # wrong types: the backup queue a string, the v2 schedule a list
        client.delete(rstore.SCHEDULE_R2)
        client.rpush(rstore.SCHEDULE_R2, "x")
        client.set(rstore.BACKUP_QUEUE, "not a hash")
        client.close()
        result = check_once("settlement", "r2", NOW)
        assert result.metrics["wrong_type_keys"] == [rstore.BACKUP_QUEUE]
        assert result.metrics["transactions_stuck"] == 1  # the schedule no longer vouches for the balance
        sync = check_once("redis_sync", "r2", NOW)
        assert set(sync.metrics["wrong_type_keys"]) == {rstore.BACKUP_QUEUE, rstore.SCHEDULE_R2}
        assert ("redis_sync", "redis_ahead_unscheduled", raw) in reported(sync)
    finally:
        if not os.environ.get("RECON_TEST_KEEP_DATA"):
            local_stack.drop_env(env)
