"""Check 1 (reference §6.1 A–G): balance consistency — each balance against its operation trail, each
operation's arithmetic, the version chain, sign rules, zero sum per (organization, ledger, asset) and the
duplicates the schema does not prevent.

Forms and where they live:
  A  balance row vs its last operation          sql/common/balances/transaction__balance_last_operation_mismatch.sql
  B  balance row vs replay of its operations     sql/{r1,r2}/balances/transaction__balance_replay_mismatch.sql
  C  per-operation arithmetic                    sql/{r1,r2}/balances/transaction__operation_arithmetic_invalid.sql
  D  version chain (R2 also gaps after the fix)  …/transaction__version_chain_broken.sql, r2/…/transaction__version_gap.sql
  E  sign rules, deleted balances hold nothing   sql/{r1,r2}/balances/transaction__balance_sign_invalid.sql, …deleted…
  F  zero sum on the EFFECTIVE balance           Python: sql/{r1,r2}/balances/effective/*.sql + Redis (below)
  G  duplicates (balance alias#key; account alias and asset code in onboarding)  …__duplicate_*.sql
A–E and G are SQL invariants judged by one GE SqlSuite per database (expectations/balances.py); F is judged
by a GE frame suite over the per-group verdicts. A–D judge PostgreSQL rows only.

Revision rules (ctx.revision): A's version test is `<` at R1 and `<>` at R2 when the last operation was
written on/after the version-gap fix (DESIGN §7); B replays by type semantics at R1 (a DEBIT in a transaction
that holds the same balance is a commit: it moves on_hold) and by the recorded per-operation deltas at R2
(validated by C); C follows add_sub.lua at R1 and balance_atomic_operation.lua at R2 (route-validation
one-field legs, debit-direction sign flip, snapshot overdraft exemption, OVERDRAFT/BLOCK/UNBLOCK by their
direction); D reports gaps only at R2 and only when both rows were written on/after the fix; E and F sign
each balance by its direction at R2.

In flight (never a violation; counted in `in_flight`):
  * a balance or operation written within the soft grace (+ replica lag): GREATEST(updated_at, UUIDv7 time);
  * a balance whose Redis key is ahead of PostgreSQL (Version > version): its PostgreSQL row is legitimately
    behind until the sync runs, so A and B do not judge it (redis_sync judges whether that lag is legit);
  * a zero-sum group whose non-zero effective net moved between two reads (a read race with live traffic).
  The effective balance is the Redis value where the key exists, else the PostgreSQL row; Redis is consistent
  per Lua call, so a settled ledger sums to zero at every instant and a non-zero net that survives a
  confirming re-read (fresh snapshot + fresh SCAN) with the same value is reported even in an active ledger.

WINDOW scope (data written in [start, end), index-backed):
  * A, B, E: balances touched by an operation whose id is in the window (UUIDv7 primary-key range) or
    updated in the window. A finds their last operation through idx_operation_account_id (newest ids of the
    account); B replays their whole history (a replay needs it).
  * C: operations whose id is in the window.
  * D: pairs whose later operation is in the window; the earlier one may predate the window (the newest
    pre-window operations of each touched balance are added through idx_operation_account_id).
  * E (deleted balances) also: balances deleted in the window.
  * F: every (organization, ledger, asset) with an operation in the window or a balance updated or deleted
    in it, recomputed over all its balances (the Redis overlay is read whole: Redis is current state).
  * G: duplicate groups with a member created or updated in the window (balances: or touched by one of its
    operations).
  A finding about a balance's current state (A, B, F) is therefore reported by every window in which that
  balance or group was written, not only by the window of the faulty write.
FULL scope judges everything in one pass per form: A = a parallel max-version aggregate plus a hashed second
pass (no sort of the table), B = a parallel hash aggregate per balance (+ the holds, found through the
transaction_id index), C and E = plain scans, D = one parallel sort for the window function. Measured on a
10M-operation R1 ledger (2 cores, 4 MB work_mem, a shared and loaded machine, back to back): the whole check
56-60 s, the reference's own §6.1 A–G SQL 90 s. No per-balance queries: Redis is SCANned in batches read
with one MGET each and joined to PostgreSQL once per ~5,000 keys (~20 µs a key without hiredis).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from reconciliation import config
from reconciliation.checks.base import DATABASES, CheckContext, add_rows, make_violation
from reconciliation.expectations import balances as suite
from reconciliation.result import CheckResult
from reconciliation.sanitize import sanitize
from reconciliation.stores import redis as rstore
from reconciliation.stores.postgres import SQL_PARAM, read_only, render
from reconciliation.window import uuidv7_lower_bound

CHECK = suite.CHECK
SCAN_COUNT = 1000
PG_BATCH = 5000  # parsed Redis values per PostgreSQL round trip
MAX_BIGINT = (1 << 63) - 1
MAX_EXPONENT = 1000  # a decimal beyond 10^±1000 is not a Midaz amount (and would overflow NUMERIC)

Group = tuple[str, str, str]  # (organization_id, ledger_id, asset_code)


# ---------------------------------------------------------------------------------------------------------
# Redis values (pure parsing: unit-tested without stores)
# ---------------------------------------------------------------------------------------------------------


class RedisBalance(NamedTuple):
    """A balance key and its parsed value, reduced to what the zero-sum overlay needs: ids as lower-case text,
    amounts as exact decimal text (PostgreSQL does the arithmetic). A NamedTuple: one is built per Redis key."""

    id: str
    organization_id: str
    ledger_id: str
    alias: str
    key: str
    available: str
    on_hold: str
    version: int


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TENANT = re.compile(r"tenant:[^:]+:")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,300}(?:\.[0-9]{1,300})?")  # what add_sub.lua writes
_PREFIX = rstore.BALANCE_PREFIX
# Field separator of the per-batch overlay parameters: one text per column, split in SQL (string_to_array),
# because adapting Python lists element by element costs more than the query (measured). A key holding it
# (or NUL, or a line break) is not a Midaz key and is skipped.
_SEP = "\x1f"


def _decimal_text(d: Decimal) -> str | None:
    """Exact text of a parsed amount; None beyond 10^±1000 (not a Midaz amount; would overflow NUMERIC)."""
    if not d.is_finite() or not -MAX_EXPONENT <= d.adjusted() <= MAX_EXPONENT:
        return None
    return format(d, "f")


def _parse_key(text: str, seen: dict[str, tuple[str, str]]) -> tuple[str, str, str, str] | None:
    """(org, ledger, alias, key) of `[tenant:<id>:]balance:{transactions}:<org>:<ledger>:<alias>#<key>`
    (reference §4.1: aliases may hold ':' and '/', never '#'). Slicing, not a regex over the whole key: this
    runs once per Redis key; `seen` caches the validated <org>:<ledger> prefixes (a handful per deployment)."""
    at = text.find(_PREFIX)
    if at < 0 or (at and not _TENANT.fullmatch(text, 0, at)):
        return None
    rest = text[at + len(_PREFIX):]
    if len(rest) < 76 or rest[73] != ":":
        return None
    head = rest[:73]
    ids = seen.get(head)
    if ids is None:
        if head[36] != ":" or not (_UUID.fullmatch(head, 0, 36) and _UUID.fullmatch(head, 37, 73)):
            return None
        ids = seen[head] = (head[:36].lower(), head[37:].lower())
    alias, sep, key = rest[74:].partition("#")
    if not (sep and alias and key) or "\x00" in rest or "\n" in rest or _SEP in rest:
        return None
    return ids[0], ids[1], alias, key


def _parse_value(raw: bytes | str) -> tuple[str, str, str, int] | None:
    """(ID, Available, OnHold, Version). Fast path for the PascalCase JSON the Lua scripts write (§4.2: amounts
    as plain decimal strings); any other shape goes through stores.redis.parse_balance_value (case-insensitive
    keys, numeric amounts read exactly)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, dict):
        bid, av, oh, ver = obj.get("ID"), obj.get("Available"), obj.get("OnHold", "0"), obj.get("Version")
        if (type(bid) is str and type(av) is str and type(oh) is str and type(ver) is int
                and _PLAIN_DECIMAL.fullmatch(av) and _PLAIN_DECIMAL.fullmatch(oh)):
            return bid, av, oh, ver
    try:
        value = rstore.parse_balance_value(raw)
    except (ValueError, TypeError):
        return None
    av_text, oh_text = _decimal_text(value.available), _decimal_text(value.on_hold)
    if av_text is None or oh_text is None:
        return None
    return value.id, av_text, oh_text, value.version


def parse_redis_balance(raw_key: bytes | str, raw_value: bytes | str | None,
                        seen: dict[str, tuple[str, str]] | None = None) -> RedisBalance | None:
    """Parse one key/value pair; None when either is not a Midaz balance (redis_sync reports those).

    Never raises: weird keys, non-UTF-8 bytes, non-JSON values, non-UUID ids, absurd versions or amounts
    all yield None, so bad input can never stop the check (nor break the batch's uuid[] / numeric[] casts)."""
    if raw_value is None:
        return None  # expired between SCAN and GET
    try:
        key_text = raw_key.decode("utf-8") if isinstance(raw_key, bytes) else str(raw_key)
    except UnicodeDecodeError:
        return None
    parsed_key = _parse_key(key_text, {} if seen is None else seen)
    if parsed_key is None:
        return None
    parsed_value = _parse_value(raw_value)
    if parsed_value is None:
        return None
    bid, available, on_hold, version = parsed_value
    if not (0 <= version <= MAX_BIGINT) or len(bid) != 36 or not _UUID.fullmatch(bid):
        return None
    return RedisBalance(bid.lower(), *parsed_key, available, on_hold, version)


def iter_redis_balances(client: Any, patterns: list[str], stats: dict[str, int]) -> Iterator[list[RedisBalance]]:
    """SCAN every balance key pattern (never KEYS) and read each batch with one MGET; yield parsed batches.

    MGET rather than a pipeline of GETs: one reply per batch instead of one per key (redis-py parses each
    reply in Python: ~25 µs a key, measured). All balance keys share the {transactions} hash tag, so MGET
    is valid on a cluster too. Keys stay bytes until parsed: a key that is not UTF-8 is skipped, not fatal."""
    seen: dict[str, tuple[str, str]] = {}
    for pattern in patterns:
        cursor: Any = 0
        while True:
            cursor, keys = client.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
            if keys:
                values = client.mget(keys)
                batch = []
                for k, v in zip(keys, values, strict=True):
                    rb = parse_redis_balance(k, v, seen)
                    if rb is None:
                        stats["redis_keys_skipped"] = stats.get("redis_keys_skipped", 0) + 1
                    else:
                        batch.append(rb)
                stats["redis_keys_scanned"] = stats.get("redis_keys_scanned", 0) + len(keys)
                if batch:
                    yield batch
            if int(cursor) == 0:
                break


def _rebatch(batches: Iterator[list[RedisBalance]], size: int) -> Iterator[list[RedisBalance]]:
    pending: list[RedisBalance] = []
    for batch in batches:
        pending.extend(batch)
        if len(pending) >= size:
            yield pending
            pending = []
    if pending:
        yield pending


# ---------------------------------------------------------------------------------------------------------
# 6.1-F: effective net per (organization, ledger, asset)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class GroupNet:
    """One (organization, ledger, asset): the PostgreSQL net and the Redis overlay's correction to it."""

    pg_net: Decimal
    balances: int
    young: bool
    redis_delta: Decimal = Decimal(0)
    redis_keys: int = 0

    @property
    def effective(self) -> Decimal:
        return self.pg_net + self.redis_delta


@dataclass
class EffectiveRead:
    """One consistent read: PostgreSQL group nets (one snapshot) overlaid with the Redis values read after."""

    groups: dict[Group, GroupNet]
    ahead: set[str] = field(default_factory=set)
    stats: dict[str, int] = field(default_factory=dict)


def _bind(sql: str) -> str:
    """`:name` placeholders -> psycopg `%(name)s`: the per-batch key data travels as bind parameters (never
    inlined into the SQL text: it comes from Redis, i.e. from outside)."""
    return SQL_PARAM.sub(lambda m: f"%({m.group(1)})s", sql)


def read_effective(ctx: CheckContext, params: dict[str, Any], only: set[Group] | None = None) -> EffectiveRead:
    """PostgreSQL FIRST (the REPEATABLE READ snapshot is fixed by the group query), Redis second, the overlay
    joined in the same snapshot. Only keys whose value differs from PostgreSQL are kept (by balance id, so a
    key SCAN returns twice is counted once); equal keys add nothing to any sum."""
    group_sql = render(ctx.load_sql(CHECK, "effective/transaction__group_net"), params)
    overlay_sql = _bind(ctx.load_sql(CHECK, "effective/transaction__redis_overlay"))
    patterns = rstore.balance_key_patterns(os.environ.get(config.ENV_REDIS_TENANTS))
    client = rstore.hook_client(ctx.redis_conn_id)
    read = EffectiveRead(groups={})
    diffs: dict[str, tuple[Group, Decimal, bool]] = {}
    with read_only(ctx.transaction_conn_id) as conn, conn.cursor() as cur:
        cur.execute("SET LOCAL jit = off")  # see suite.without_jit()
        cur.execute(group_sql)
        for org, ledger, asset, net, n, young in cur:
            g = (str(org), str(ledger), str(asset))
            if only is None or g in only:
                read.groups[g] = GroupNet(pg_net=net if net is not None else Decimal(0), balances=n, young=bool(young))
        for batch in _rebatch(iter_redis_balances(client, patterns, read.stats), PG_BATCH):
            cur.execute(overlay_sql, {
                "r_ids": _SEP.join(b.id for b in batch),
                "r_orgs": _SEP.join(b.organization_id for b in batch),
                "r_ledgers": _SEP.join(b.ledger_id for b in batch),
                "r_aliases": _SEP.join(b.alias for b in batch),
                "r_keys": _SEP.join(b.key for b in batch),
                "r_available": _SEP.join(b.available for b in batch),
                "r_on_hold": _SEP.join(b.on_hold for b in batch),
                "r_versions": _SEP.join(str(b.version) for b in batch),
            })
            for balance_id, org, ledger, asset, delta, ahead in cur:
                diffs[str(balance_id)] = ((str(org), str(ledger), str(asset)), delta, bool(ahead))
    for balance_id, (g, delta, ahead) in diffs.items():
        if ahead:
            read.ahead.add(balance_id)
        net = read.groups.get(g)
        if net is not None and delta:
            net.redis_delta += delta
            net.redis_keys += 1
    read.stats["redis_keys_differing"] = len(diffs)
    read.stats["redis_keys_ahead"] = len(read.ahead)
    return read


def zero_sum_verdicts(first: dict[Group, GroupNet], second: dict[Group, GroupNet] | None) -> dict[Group, str]:
    """Zero -> zero; non-zero twice with the same value -> not_zero; otherwise (moved, vanished) -> in flight."""
    out: dict[Group, str] = {}
    for g, net in first.items():
        if net.effective == 0:
            out[g] = suite.NET_ZERO
            continue
        again = (second or {}).get(g)
        out[g] = suite.NET_NOT_ZERO if again is not None and again.effective == net.effective else suite.NET_IN_FLIGHT
    return out


def _judge_zero_sum(ctx: CheckContext, params: dict[str, Any], result: CheckResult) -> set[str]:
    """6.1-F; returns the balance ids whose Redis key is ahead of PostgreSQL (in flight for A and B)."""
    import pandas as pd

    t0 = time.monotonic()
    first = read_effective(ctx, params)
    second = None
    suspects = {g for g, net in first.groups.items() if net.effective != 0}
    if suspects:
        second = read_effective(ctx, params, only=suspects)
    verdicts = zero_sum_verdicts(first.groups, second.groups if second else None)
    ahead = first.ahead | (second.ahead if second else set())
    groups = sorted(first.groups)
    result.metrics.update(
        zero_sum_groups=len(groups),
        zero_sum_groups_reread=len(suspects),
        redis_keys_scanned=first.stats.get("redis_keys_scanned", 0),
        redis_keys_skipped=first.stats.get("redis_keys_skipped", 0),
        redis_keys_differing=first.stats.get("redis_keys_differing", 0),
        redis_keys_ahead=len(ahead),
    )
    in_flight = sum(1 for g in groups if verdicts[g] == suite.NET_IN_FLIGHT)
    result.in_flight += in_flight
    result.metrics["zero_sum_in_flight_groups"] = in_flight
    if groups:
        frame = pd.DataFrame({"verdict": [verdicts[g] for g in groups]})
        unexpected = suite.zero_sum_suite().validate(frame).get("ledger_not_zero_sum", [])
        for i in unexpected:
            g = groups[int(i)]
            net = first.groups[g]
            result.add(
                make_violation(
                    CHECK,
                    "ledger_not_zero_sum",
                    "/".join(g),
                    organization_id=g[0],
                    ledger_id=g[1],
                    asset_code=g[2],
                    effective_net=net.effective,
                    postgres_net=net.pg_net,
                    redis_delta=net.redis_delta,
                    redis_keys_overlaid=net.redis_keys,
                    balances=net.balances,
                    recently_written=net.young,
                    expected_net=Decimal(0),
                )
            )
    result.metrics["zero_sum_seconds"] = round(time.monotonic() - t0, 3)
    return ahead


# ---------------------------------------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------------------------------------


def check_params(ctx: CheckContext, redis_ahead: set[str] | None = None) -> dict[str, Any]:
    """SQL parameters of this run: the soft grace is widened by the measured replica lag (preflight)."""
    params = suite.sql_params(ctx, sorted(redis_ahead or ()))
    lag = max(0.0, float(ctx.extra.get("replica_lag_seconds") or 0.0))
    if lag:
        params["settled_before"] = params["settled_before"] - timedelta(seconds=lag)
        params["young_id_lower"] = uuidv7_lower_bound(params["settled_before"])
    return params


def _run_sql_invariants(ctx: CheckContext, params: dict[str, Any], result: CheckResult) -> None:
    for db in DATABASES:
        sql_suite, metric_sqls = suite.sql_suite(ctx, db, params)
        if sql_suite is not None:
            t0 = time.monotonic()
            outcomes = sql_suite.run()
            result.metrics[f"{db}_sql_seconds"] = round(time.monotonic() - t0, 3)
            for stem, outcome in sorted(outcomes.items()):
                kind = stem.split("__")[1]
                if outcome.exception:
                    raise RuntimeError(sanitize(f"{CHECK}: {kind} could not be evaluated: {outcome.exception}"))
                add_rows(result, CHECK, kind, outcome.rows, outcome.total)
                result.metrics[f"{kind}_rows"] = outcome.total
        for sql in metric_sqls:
            ctx.run_metrics(db, sql, params, result)


def run(ctx: CheckContext) -> CheckResult:
    """Judge forms A–G of reference §6.1 for the context's scope and revision."""
    result = ctx.new_result(CHECK)
    t0 = time.monotonic()
    ahead = _judge_zero_sum(ctx, check_params(ctx), result)
    _run_sql_invariants(ctx, check_params(ctx, ahead), result)
    result.metrics["seconds"] = round(time.monotonic() - t0, 3)
    return result.finish()
