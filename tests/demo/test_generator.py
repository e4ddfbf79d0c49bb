"""The generated ledger is consistent by the reference's own invariants (§6) — except for the in-flight slice,
which must look exactly like legitimate mid-write states — and generation is deterministic for a seed.

Why: every check is proven against this data; if the clean ledger were not clean (or the slice not
legitimate), a check's "nothing found" and a fault's "found" would both mean nothing.
Queries here are the reference's example SQL run directly (not our checks), with the soft grace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
import redis
from pymongo import MongoClient

from reconciliation.demo.gen_model import BACKUP_QUEUE, REDIS_BALANCE_PREFIX, SCHEDULE_R1, SCHEDULE_R2, uuid7_ms
from reconciliation.demo.generator import generate
from reconciliation.demo.servers import LocalStack, MidazEnv

GRACE = timedelta(minutes=15)
OPS = 5000


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module", params=["r1", "r2"])
def ledger(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[tuple[MidazEnv, dict[str, Any]]]:
    env = local_stack.new_env(request.param)
    now = _now()
    stats = generate(env, operations=OPS, seed=11, now=now)
    stats["_now"] = now
    yield env, stats
    local_stack.drop_env(env)


def _rows(conninfo: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(sql, params or {}).fetchall()


def _settled(stats: dict[str, Any]) -> datetime:
    return stats["_now"] - GRACE


def _redis_values(env: MidazEnv) -> dict[str, dict[str, Any]]:
    r = redis.Redis.from_url(env.redis_url)
    out = {}
    for key in r.scan_iter(match=REDIS_BALANCE_PREFIX + "*", count=1000):
        out[key.decode()] = orjson.loads(r.get(key))
    return out


def _redis_by_balance(env: MidazEnv) -> dict[str, dict[str, Any]]:
    return {v["ID"]: v for v in _redis_values(env).values()}


def test_volume_and_shape(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    env, stats = ledger
    assert stats["operations"] >= OPS
    ops = _rows(env.transaction_conninfo, "SELECT count(*) FROM operation")[0][0]
    assert ops == stats["operations"]
    counts = dict(_rows(env.transaction_conninfo, 'SELECT status, count(*) FROM "transaction" GROUP BY 1'))
    assert set(counts) == {"APPROVED", "PENDING", "CANCELED", "NOTED"}
    types = dict(_rows(env.transaction_conninfo, "SELECT type, count(*) FROM operation GROUP BY 1"))
    assert set(types) == {"DEBIT", "CREDIT", "ON_HOLD", "RELEASE"}
    # reversals exist and mirror their parents; operation.status is '' (never set by Midaz)
    assert _rows(env.transaction_conninfo, 'SELECT count(*) FROM "transaction" WHERE parent_transaction_id IS NOT NULL')[0][0] > 0
    assert _rows(env.transaction_conninfo, "SELECT count(*) FROM operation WHERE status <> ''")[0][0] == 0
    # long fractions from share splits
    assert _rows(env.transaction_conninfo, "SELECT count(*) FROM operation WHERE scale(amount) > 8")[0][0] > 0
    # ids are UUIDv7 carrying the write time; updated_at == the id time for create-time rows
    bad = _rows(env.transaction_conninfo, """
        SELECT count(*) FROM operation
        WHERE abs(extract(epoch FROM updated_at - to_timestamp((('x'||substr(replace(id::text,'-',''),1,12))::bit(48)::bigint)/1000.0))) > 0.001""")
    assert bad[0][0] == 0
    # backdated created_at exists (~1 %): created_at well before the write time carried by the id
    assert _rows(env.transaction_conninfo, """
        SELECT count(*) FROM "transaction" WHERE created_at
          < to_timestamp((('x'||substr(replace(id::text,'-',''),1,12))::bit(48)::bigint)/1000.0) - interval '5 minutes'""")[0][0] > 0


def test_double_entry_status_rule(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    """§6.2 R1 status rule; at R2 a transaction is flagged only when the direction rule fails too."""
    env, stats = ledger
    rows = _rows(env.transaction_conninfo, """
        WITH s AS (
          SELECT t.id, t.status, t.amount, t.updated_at,
            COALESCE(SUM(o.amount) FILTER (WHERE o.type='DEBIT'),0) AS debit,
            COALESCE(SUM(o.amount) FILTER (WHERE o.type='CREDIT'),0) AS credit,
            COALESCE(SUM(o.amount) FILTER (WHERE o.type='ON_HOLD'),0) AS on_hold,
            COALESCE(SUM(o.amount) FILTER (WHERE o.type='RELEASE'),0) AS release,
            COUNT(o.id) FILTER (WHERE o.asset_code <> t.asset_code) AS n_asset_mismatch,
            COUNT(o.id) FILTER (WHERE o.type NOT IN ('DEBIT','CREDIT','ON_HOLD','RELEASE')) AS n_bad_type,
            COUNT(o.id) FILTER (WHERE o.balance_affected = (t.status = 'NOTED')) AS n_bad_affected,
            MAX(o.updated_at) AS last_op_at
          FROM "transaction" t LEFT JOIN operation o ON o.transaction_id = t.id AND o.deleted_at IS NULL
          WHERE t.deleted_at IS NULL GROUP BY t.id)
        SELECT id::text FROM s
        WHERE updated_at < %(settled)s AND COALESCE(last_op_at, updated_at) < %(settled)s
          AND (n_asset_mismatch > 0 OR n_bad_type > 0 OR n_bad_affected > 0 OR CASE status
            WHEN 'APPROVED' THEN NOT (debit = credit AND credit = amount AND release = 0 AND on_hold IN (0, amount))
            WHEN 'NOTED'    THEN NOT (debit = credit AND credit = amount AND on_hold = 0 AND release = 0)
            WHEN 'PENDING'  THEN NOT (on_hold = amount AND debit = 0 AND credit = 0 AND release = 0)
            WHEN 'CANCELED' THEN NOT (on_hold = amount AND release = amount AND debit = 0 AND credit = 0)
            ELSE TRUE END)""", {"settled": _settled(stats)})
    status_fail = {r[0] for r in rows}
    if env.revision == "r1":
        assert status_fail == set()
        return
    # R2: the route-validation ledger's pending flows fail the R1 rule by design; they must pass by direction
    assert status_fail, "the R2 route-validation ledger should produce direction-only pending flows"
    dir_rows = _rows(env.transaction_conninfo, """
        WITH ops AS (
          SELECT o.transaction_id, o.amount, o.direction IS NULL AS legacy_dir,
                 COALESCE(NULLIF(lower(o.direction), ''),
                   CASE upper(o.type) WHEN 'DEBIT' THEN 'debit' WHEN 'ON_HOLD' THEN 'debit'
                                      WHEN 'CREDIT' THEN 'credit' WHEN 'RELEASE' THEN 'credit' END) AS dir
          FROM operation o WHERE o.deleted_at IS NULL AND upper(o.type) <> 'OVERDRAFT')
        SELECT t.id::text FROM "transaction" t JOIN ops ON ops.transaction_id = t.id
        WHERE t.deleted_at IS NULL GROUP BY t.id, t.status
        HAVING COALESCE(SUM(ops.amount) FILTER (WHERE dir = 'debit'), 0)
            <> COALESCE(SUM(ops.amount) FILTER (WHERE dir = 'credit'), 0)""")
    assert status_fail & {r[0] for r in dir_rows} == set()


def test_value_conserved_per_transaction(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    env, stats = ledger
    sign = "CASE WHEN b.direction = 'debit' THEN -1 ELSE 1 END *" if env.revision == "r2" else ""
    rows = _rows(env.transaction_conninfo, f"""
        SELECT o.transaction_id FROM operation o JOIN balance b ON b.id = o.balance_id
        WHERE o.deleted_at IS NULL AND o.balance_affected AND o.updated_at < %(settled)s
        GROUP BY o.transaction_id
        HAVING SUM({sign} ((o.available_balance_after + o.on_hold_balance_after)
                           - (o.available_balance + o.on_hold_balance))) <> 0""", {"settled": _settled(stats)})
    assert rows == []


def test_operation_arithmetic(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    """§6.1-C: versions +1; deltas follow the type (R2: each of Δavailable/Δon_hold is 0 or ±amount, signed
    by the balance direction, not both 0)."""
    env, stats = ledger
    if env.revision == "r1":
        cond = """CASE o.type
          WHEN 'CREDIT'  THEN o.available_balance_after = o.available_balance + o.amount AND o.on_hold_balance_after = o.on_hold_balance
          WHEN 'DEBIT'   THEN (o.available_balance_after = o.available_balance - o.amount AND o.on_hold_balance_after = o.on_hold_balance)
                           OR (o.available_balance_after = o.available_balance AND o.on_hold_balance_after = o.on_hold_balance - o.amount)
          WHEN 'ON_HOLD' THEN o.available_balance_after = o.available_balance - o.amount AND o.on_hold_balance_after = o.on_hold_balance + o.amount
          WHEN 'RELEASE' THEN o.available_balance_after = o.available_balance + o.amount AND o.on_hold_balance_after = o.on_hold_balance - o.amount
          ELSE FALSE END"""
    else:
        cond = """(o.available_balance_after - o.available_balance) IN (0, o.amount, -o.amount)
              AND (o.on_hold_balance_after - o.on_hold_balance) IN (0, o.amount, -o.amount)
              AND NOT (o.available_balance_after = o.available_balance AND o.on_hold_balance_after = o.on_hold_balance)
              AND (o.type <> 'CREDIT' OR o.available_balance_after - o.available_balance
                     = CASE WHEN b.direction = 'debit' THEN -o.amount ELSE o.amount END)"""
    rows = _rows(env.transaction_conninfo, f"""
        SELECT o.id FROM operation o JOIN balance b ON b.id = o.balance_id
        WHERE o.deleted_at IS NULL AND o.balance_affected
          AND NOT (o.balance_version_after = o.balance_version_before + 1 AND o.amount > 0 AND {cond})""")
    assert rows == []
    noted = _rows(env.transaction_conninfo, """
        SELECT count(*) FROM operation WHERE NOT balance_affected AND (available_balance <> 0 OR on_hold_balance <> 0
           OR available_balance_after <> 0 OR on_hold_balance_after <> 0 OR balance_version_before <> 0
           OR balance_version_after <> 0)""")
    assert noted[0][0] == 0


def test_balance_equals_last_operation(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    """§6.1-A on balances whose Redis key (if any) is not ahead of PostgreSQL; R2: versions equal."""
    env, stats = ledger
    rows = _rows(env.transaction_conninfo, """
        WITH last_op AS (
          SELECT DISTINCT ON (o.balance_id) o.balance_id, o.available_balance_after, o.on_hold_balance_after,
                 o.balance_version_after, o.updated_at
          FROM operation o WHERE o.deleted_at IS NULL AND o.balance_affected
          ORDER BY o.balance_id, o.balance_version_after DESC, o.created_at DESC, o.id DESC)
        SELECT b.id::text, COALESCE(b.version, 0), l.balance_version_after,
               b.available = l.available_balance_after AND b.on_hold = l.on_hold_balance_after
        FROM balance b JOIN last_op l ON l.balance_id = b.id
        WHERE b.deleted_at IS NULL AND b.updated_at < %(settled)s AND l.updated_at < %(settled)s""",
                 {"settled": _settled(stats)})
    hot = _redis_by_balance(env)
    checked = 0
    for bid, version, last_version, amounts_equal in rows:
        if bid in hot and int(hot[bid]["Version"]) > version:
            continue
        checked += 1
        assert amounts_equal, bid
        assert version >= last_version, bid
        if env.revision == "r2":
            assert version == last_version, bid
    assert checked > 50
    # R1 version gaps (no-op increments of pending / cancel destinations) exist and are legitimate
    gaps = _rows(env.transaction_conninfo, """
        SELECT count(*) FROM balance b WHERE b.version > (SELECT COALESCE(MAX(balance_version_after), 0)
                                                          FROM operation o WHERE o.balance_id = b.id)""")[0][0]
    assert (gaps > 0) == (env.revision == "r1")


def test_replay_matches_balance(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    """§6.1-B (R2: replay the per-operation deltas)."""
    env, stats = ledger
    rows = _rows(env.transaction_conninfo, """
        WITH agg AS (
          SELECT balance_id, SUM(available_balance_after - available_balance) AS av,
                 SUM(on_hold_balance_after - on_hold_balance) AS oh, MAX(updated_at) AS last_op_at
          FROM operation WHERE deleted_at IS NULL AND balance_affected GROUP BY balance_id)
        SELECT b.id::text FROM balance b JOIN agg a ON a.balance_id = b.id
        WHERE b.deleted_at IS NULL AND b.updated_at < %(settled)s AND a.last_op_at < %(settled)s
          AND (b.available <> a.av OR b.on_hold <> a.oh)""", {"settled": _settled(stats)})
    hot = _redis_by_balance(env)
    assert [r for r in rows if r[0] not in hot] == []
    if env.revision == "r1":  # the type-semantics replay of the reference, verbatim
        rows = _rows(env.transaction_conninfo, """
            WITH op AS (
              SELECT o.*, EXISTS (SELECT 1 FROM operation h WHERE h.transaction_id = o.transaction_id
                  AND h.balance_id = o.balance_id AND h.type = 'ON_HOLD' AND h.deleted_at IS NULL) AS tx_had_hold
              FROM operation o WHERE o.deleted_at IS NULL AND o.balance_affected),
            agg AS (
              SELECT balance_id,
                SUM(CASE type WHEN 'CREDIT' THEN amount WHEN 'DEBIT' THEN CASE WHEN tx_had_hold THEN 0 ELSE -amount END
                              WHEN 'ON_HOLD' THEN -amount WHEN 'RELEASE' THEN amount ELSE 0 END) AS exp_available,
                SUM(CASE type WHEN 'ON_HOLD' THEN amount WHEN 'RELEASE' THEN -amount
                              WHEN 'DEBIT' THEN CASE WHEN tx_had_hold THEN -amount ELSE 0 END ELSE 0 END) AS exp_on_hold,
                MAX(updated_at) AS last_op_at
              FROM op GROUP BY balance_id)
            SELECT b.id::text FROM balance b JOIN agg a ON a.balance_id = b.id
            WHERE b.deleted_at IS NULL AND b.updated_at < %(settled)s AND a.last_op_at < %(settled)s
              AND (b.available <> a.exp_available OR b.on_hold <> a.exp_on_hold)""", {"settled": _settled(stats)})
        assert [r for r in rows if r[0] not in hot] == []


def test_version_chain(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    """§6.1-D: no repeated versions, no overlaps, continuous amounts; R2 also no gaps."""
    env, _ = ledger
    gap = "OR balance_version_before <> prev_version_after" if env.revision == "r2" else ""
    rows = _rows(env.transaction_conninfo, f"""
        SELECT * FROM (
          SELECT o.balance_id, o.id AS op_id, o.balance_version_before, o.balance_version_after,
                 o.available_balance, o.on_hold_balance,
                 LAG(o.id) OVER w AS prev_op_id, LAG(o.balance_version_after) OVER w AS prev_version_after,
                 LAG(o.available_balance_after) OVER w AS prev_available_after,
                 LAG(o.on_hold_balance_after) OVER w AS prev_on_hold_after
          FROM operation o WHERE o.deleted_at IS NULL AND o.balance_affected AND o.balance_version_after > 0
          WINDOW w AS (PARTITION BY o.balance_id ORDER BY o.balance_version_after, o.id)) s
        WHERE prev_op_id IS NOT NULL
          AND (balance_version_before < prev_version_after OR balance_version_after = prev_version_after
               OR available_balance <> prev_available_after OR on_hold_balance <> prev_on_hold_after {gap})""")
    assert rows == []
    first = _rows(env.transaction_conninfo, """
        SELECT count(*) FROM (SELECT DISTINCT ON (balance_id) * FROM operation WHERE balance_affected
                              ORDER BY balance_id, balance_version_after) f
        WHERE available_balance <> 0 OR on_hold_balance <> 0""")
    assert first[0][0] == 0


def test_sign_rules_and_effective_zero_sum(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    """§6.1-E, and §6.1-F on the effective balance (the Redis value where the key exists)."""
    env, _ = ledger
    r2 = env.revision == "r2"
    rows = _rows(env.transaction_conninfo, """
        SELECT id::text, organization_id::text, ledger_id::text, asset_code, account_type, available, on_hold,
               """ + ("direction" if r2 else "'credit'") + """ FROM balance WHERE deleted_at IS NULL""")
    hot = _redis_by_balance(env)
    sums: dict[tuple[str, str, str], Decimal] = {}
    for bid, org, led, asset, acct_type, available, on_hold, direction in rows:
        if bid in hot:
            available, on_hold = Decimal(hot[bid]["Available"]), Decimal(hot[bid]["OnHold"])
        sign = -1 if direction == "debit" else 1
        if acct_type == "external":
            assert on_hold == 0 and sign * available <= 0, bid
        else:
            assert available >= 0 and on_hold >= 0, bid
        sums[(org, led, asset)] = sums.get((org, led, asset), Decimal(0)) + sign * (available + on_hold)
    assert len(sums) >= 5
    assert {k: v for k, v in sums.items() if v != 0} == {}
    if r2:  # both directions of @external exist (legacy credit and post-2026-07-13 debit)
        dirs = {r[0] for r in _rows(env.transaction_conninfo, "SELECT DISTINCT direction FROM balance WHERE account_type = 'external'")}
        assert dirs == {"credit", "debit"}


def test_orphans_status_and_reversals(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    env, stats = ledger
    settled = _settled(stats)
    assert _rows(env.transaction_conninfo, """
        SELECT t.id FROM "transaction" t WHERE t.updated_at < %(s)s
          AND NOT EXISTS (SELECT 1 FROM operation o WHERE o.transaction_id = t.id)""", {"s": settled}) == []
    assert _rows(env.transaction_conninfo, """
        SELECT id FROM "transaction" WHERE status NOT IN ('APPROVED','PENDING','CANCELED','NOTED')
           OR (status = 'PENDING') <> (body IS NOT NULL)""") == []
    assert _rows(env.transaction_conninfo, """
        SELECT o.id FROM operation o LEFT JOIN balance b ON b.id = o.balance_id
        WHERE b.id IS NULL OR b.account_id <> o.account_id OR b.asset_code <> o.asset_code OR b.key <> o.balance_key
           OR b.alias <> o.account_alias OR b.organization_id <> o.organization_id OR b.ledger_id <> o.ledger_id""") == []
    assert _rows(env.transaction_conninfo, """
        SELECT c.id FROM "transaction" c JOIN "transaction" p ON p.id = c.parent_transaction_id
        WHERE p.status <> 'APPROVED' OR p.parent_transaction_id IS NOT NULL OR c.amount <> p.amount
           OR c.asset_code <> p.asset_code OR c.status <> 'APPROVED'""") == []
    assert _rows(env.transaction_conninfo, """
        SELECT parent_transaction_id FROM "transaction" WHERE parent_transaction_id IS NOT NULL
        GROUP BY 1 HAVING COUNT(*) > 1""") == []
    # reversal symmetry per account
    assert _rows(env.transaction_conninfo, """
        WITH p AS (SELECT c.id AS child, o.account_id, SUM(o.amount) FILTER (WHERE o.type='CREDIT') AS pc,
                          SUM(o.amount) FILTER (WHERE o.type='DEBIT') AS pd
                   FROM "transaction" c JOIN operation o ON o.transaction_id = c.parent_transaction_id GROUP BY 1, 2),
             k AS (SELECT o.transaction_id AS child, o.account_id, SUM(o.amount) FILTER (WHERE o.type='DEBIT') AS cd,
                          SUM(o.amount) FILTER (WHERE o.type='CREDIT') AS cc
                   FROM operation o JOIN "transaction" c ON c.id = o.transaction_id
                   WHERE c.parent_transaction_id IS NOT NULL GROUP BY 1, 2)
        SELECT * FROM p FULL JOIN k USING (child, account_id)
        WHERE COALESCE(p.pc, 0) <> COALESCE(k.cd, 0) OR COALESCE(p.pd, 0) <> COALESCE(k.cc, 0)""") == []
    # in-flight item: a transaction row younger than the grace without operations
    young = _rows(env.transaction_conninfo, """
        SELECT count(*) FROM "transaction" t WHERE NOT EXISTS (SELECT 1 FROM operation o WHERE o.transaction_id = t.id)""")
    assert young[0][0] == 1


def test_referential(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    """§6.4: every live account has exactly one live default balance; every balance matches its account."""
    env, _ = ledger
    accounts = {r[0]: r[1:] for r in _rows(env.onboarding_conninfo, """
        SELECT id::text, organization_id::text, ledger_id::text, alias, asset_code, type FROM account
        WHERE deleted_at IS NULL""")}
    balances = _rows(env.transaction_conninfo, """
        SELECT id::text, account_id::text, organization_id::text, ledger_id::text, alias, asset_code, account_type, key
        FROM balance WHERE deleted_at IS NULL""")
    defaults: dict[str, int] = {}
    for bid, acc, org, led, alias, asset, typ, key in balances:
        assert accounts[acc] == (org, led, alias, asset, typ), bid
        if key == "default":
            defaults[acc] = defaults.get(acc, 0) + 1
    assert defaults == {a: 1 for a in accounts}
    assert _rows(env.onboarding_conninfo, """
        SELECT s.code FROM asset s WHERE NOT EXISTS (SELECT 1 FROM account a WHERE a.ledger_id = s.ledger_id
          AND a.alias = '@external/' || s.code AND a.type = 'external')""") == []
    assert _rows(env.onboarding_conninfo, """
        SELECT organization_id, ledger_id, alias FROM account GROUP BY 1, 2, 3 HAVING count(*) > 1""") == []
    ledgers = {r[0] for r in _rows(env.onboarding_conninfo, "SELECT id::text FROM ledger")}
    for table in ("transaction", "operation", "balance", "asset_rate", "operation_route", "transaction_route"):
        got = {r[0] for r in _rows(env.transaction_conninfo, f'SELECT DISTINCT ledger_id::text FROM "{table}"')}
        assert got <= ledgers
    # routes named by transactions/operations exist
    assert _rows(env.transaction_conninfo, """
        SELECT t.id FROM "transaction" t WHERE t.route IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM transaction_route r WHERE r.id::text = t.route)""") == []
    assert _rows(env.transaction_conninfo, """
        SELECT o.id FROM operation o WHERE o.route IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM operation_route r WHERE r.id::text = o.route)""") == []
    assert _rows(env.transaction_conninfo, 'SELECT count(*) FROM "transaction" WHERE route IS NOT NULL')[0][0] > 0


def test_redis_state(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    """§4.2 encoding (Decimal-parsable strings), §6.5 classification: never behind, equal version => equal
    amounts, ahead => in flight (schedule entry, or younger than the soft grace); backup entries young."""
    env, stats = ledger
    r = redis.Redis.from_url(env.redis_url)
    values = _redis_values(env)
    assert len(values) > 10
    pg = {row[0]: row[1:] for row in _rows(env.transaction_conninfo,
                                           "SELECT id::text, available, on_hold, COALESCE(version,0), alias, key FROM balance")}
    sched_key = SCHEDULE_R2 if env.revision == "r2" else SCHEDULE_R1
    ahead = 0
    for key, v in values.items():
        assert isinstance(v["Available"], str) and isinstance(v["OnHold"], str) and isinstance(v["Version"], int)
        available, on_hold = Decimal(v["Available"]), Decimal(v["OnHold"])
        idx, alias, bkey = v["Alias"].split("#")
        assert idx.isdigit() and key.endswith(f":{alias}#{bkey}") and v["Key"] == bkey
        if env.revision == "r2":
            assert v["Direction"] in ("credit", "debit") and v["BalanceScope"] == "transactional"
        pa, po, pv, palias, pkey = pg[v["ID"]]
        assert (palias, pkey) == (alias, bkey)
        ttl = r.ttl(key)
        assert 0 < ttl <= 3600
        assert v["Version"] >= pv
        if v["Version"] == pv:
            assert (available, on_hold) == (pa, po), key
        else:
            ahead += 1
            age = 3600 - ttl
            assert r.zscore(sched_key, key) is not None or age < GRACE.total_seconds(), key
    assert ahead >= 4
    entries = r.hgetall(BACKUP_QUEUE)
    assert len(entries) >= 5
    now_ms = int(stats["_now"].timestamp() * 1000)
    hard = 75 if env.revision == "r1" else 100
    for field, raw in entries.items():
        entry = orjson.loads(raw)
        tx_id = field.decode().rsplit(":", 1)[1]
        age_ms = now_ms - uuid7_ms(tx_id)
        assert age_ms < hard * 60_000
        if "ttl" in entry:
            assert entry["transaction_id"] == tx_id
        else:
            assert set(entry) == {"balances"}
    # R1 schedule members of settled keys are due 50 min after the write (never overdue)
    for member, score in r.zrange(sched_key, 0, -1, withscores=True):
        assert member.decode().startswith(REDIS_BALANCE_PREFIX)
        if env.revision == "r1":
            assert score > stats["_now"].timestamp()


def test_mongo_metadata(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    env, _ = ledger
    client: MongoClient[dict[str, Any]] = MongoClient(env.mongo_uri)
    try:
        tdb, odb = client[env.mongo_transaction_db], client[env.mongo_onboarding_db]
        assert {"account_type", "operation_route", "transaction_route"} <= set(
            odb.list_collection_names()) | set(tdb.list_collection_names())
        for name in ("account_type",):
            assert odb[name].count_documents({}) == 0
        for name in ("operation_route", "transaction_route"):
            assert tdb[name].count_documents({}) == 0
        tx_ids = [d["entity_id"] for d in tdb["transaction"].find({}, {"entity_id": 1})]
        assert len(tx_ids) == len(set(tx_ids)) > 100
        with psycopg.connect(env.transaction_conninfo) as conn:
            found = {r[0] for r in conn.execute('SELECT id::text FROM "transaction" WHERE id = ANY(%s::uuid[])',
                                                (tx_ids,)).fetchall()}
        assert found == set(tx_ids)
        for coll, table, conninfo in (("account", "account", env.onboarding_conninfo),
                                      ("ledger", "ledger", env.onboarding_conninfo),
                                      ("operation", "operation", env.transaction_conninfo)):
            db = odb if conninfo == env.onboarding_conninfo else tdb
            ids = [d["entity_id"] for d in db[coll].find({}, {"entity_id": 1})]
            assert ids, coll
            with psycopg.connect(conninfo) as conn:
                n = conn.execute(f"SELECT count(*) FROM {table} WHERE id = ANY(%s::uuid[])", (ids,)).fetchone()[0]
            assert n == len(set(ids)) == len(ids)
        for doc in tdb["transaction"].find({}).limit(200):
            assert doc["entity_name"] == "Transaction"
            assert 1 <= len(doc["metadata"]) <= 5
            assert all(not isinstance(v, (dict, list)) for v in doc["metadata"].values())
            assert doc["created_at"] <= doc["updated_at"]
    finally:
        client.close()


def _fingerprint(env: MidazEnv) -> str:
    h = hashlib.sha256()
    with psycopg.connect(env.transaction_conninfo) as conn:
        for sql in ('SELECT id, status, amount::text, created_at, updated_at FROM "transaction" ORDER BY id',
                    "SELECT id, balance_id, type, amount::text, available_balance_after::text, balance_version_after "
                    "FROM operation ORDER BY id",
                    "SELECT id, available::text, on_hold::text, version FROM balance ORDER BY id"):
            for row in conn.execute(sql):
                h.update(repr(row).encode())
    with psycopg.connect(env.onboarding_conninfo) as conn:
        for row in conn.execute("SELECT id, alias, asset_code FROM account ORDER BY id"):
            h.update(repr(row).encode())
    return h.hexdigest()


def test_deterministic_for_a_seed(local_stack: LocalStack) -> None:
    now = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    envs = [local_stack.new_env("r1") for _ in range(3)]
    try:
        generate(envs[0], operations=1500, seed=3, now=now)
        generate(envs[1], operations=1500, seed=3, now=now)
        generate(envs[2], operations=1500, seed=4, now=now)
        a, b, c = (_fingerprint(e) for e in envs)
        assert a == b
        assert a != c
    finally:
        for e in envs:
            local_stack.drop_env(e)


def test_cli_seed_and_inject(local_stack: LocalStack, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m reconciliation.demo seed` reads the checks' AIRFLOW_CONN_* settings, seeds, injects and writes
    the manifest; connection strings never reach the output."""
    from reconciliation.demo.__main__ import _airflow_conn, _pg_conninfo, main
    from reconciliation.demo.manifest import Manifest

    env = local_stack.new_env("r1")
    try:
        for key, value in env.airflow_conn_env().items():
            monkeypatch.setenv(key, value)
        path = tmp_path / "manifest.json"
        assert main(["seed", "--revision", "r1", "--operations", "1500", "--seed", "3",
                     "--faults", "metadata_orphan,stuck_backup_entry", "--manifest", str(path)]) == 0
        out = capsys.readouterr()
        stats = orjson.loads(out.out)
        assert stats["ledger"]["operations"] >= 1500 and stats["faults"]["entries"] == 2
        assert Manifest.load(path).keys(check="settlement")
        assert "127.0.0.1" not in out.out and "password" not in out.out
        assert _rows(env.transaction_conninfo, "SELECT count(*) FROM operation")[0][0] == stats["ledger"]["operations"]
    finally:
        local_stack.drop_env(env)
    # URI form of an Airflow connection
    monkeypatch.setenv("AIRFLOW_CONN_X_DB", "postgres://u%40x:p%2Fw@db.example:6543/onboarding?sslmode=require")
    conn = _airflow_conn("x_db")
    assert conn is not None and conn["login"] == "u@x" and conn["password"] == "p/w" and conn["port"] == 6543
    info = _pg_conninfo(conn)
    assert "dbname=onboarding" in info and "sslmode=require" in info and "port=6543" in info


def test_refuses_non_empty_stores(ledger: tuple[MidazEnv, dict[str, Any]]) -> None:
    env, _ = ledger
    with pytest.raises(ValueError, match="already holds a ledger"):
        generate(env, operations=1000, seed=1)
