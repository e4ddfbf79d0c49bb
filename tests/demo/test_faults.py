"""Every fault the injector reports is really in the stores, on the entity the manifest names; faults combine
on disjoint entities, land on the day asked for, and are deterministic for a ledger and seed.

Why: the manifest is the oracle of every check test (nothing missed, nothing extra). Each manifest entry is
probed here by a targeted query on its own entity (not by running a check), so a wrong entity string, a
fault that silently did nothing, or a cascade that does not exist shows up here first.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
import redis
from pymongo import MongoClient

from reconciliation.catalog import BY_KIND
from reconciliation.demo.faults import CATALOGUE_8_4, FAULTS, available_faults, inject
from reconciliation.demo.gen_model import BACKUP_QUEUE, REDIS_BALANCE_PREFIX, SCHEDULE_R1, SCHEDULE_R2, uuid7_ms
from reconciliation.demo.generator import generate
from reconciliation.demo.manifest import Manifest
from reconciliation.demo.servers import LocalStack, MidazEnv

OPS = 4000
AGGREGATE_KINDS = {"ledger_not_zero_sum", "live_accounts_default_balances_mismatch", "metadata_exceeds_rows"}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KNOWN_STATUSES = {"APPROVED", "PENDING", "CANCELED", "NOTED"}
REPORTED_KINDS = {k for k, spec in BY_KIND.items() if spec.severity in ("error", "warning")}  # info: not listed


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Stores:
    """Direct read access to one Midaz env (what the probes query)."""

    def __init__(self, env: MidazEnv, manifest: Manifest, now: datetime) -> None:
        self.env, self.manifest, self.now = env, manifest, now
        self.r2 = env.revision == "r2"
        self.onb = psycopg.connect(env.onboarding_conninfo, autocommit=True)
        self.txn = psycopg.connect(env.transaction_conninfo, autocommit=True)
        self.redis = redis.Redis.from_url(env.redis_url)
        self.mongo: MongoClient[dict[str, Any]] = MongoClient(env.mongo_uri)

    def t(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.txn.execute(sql, params).fetchall()

    def o(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.onb.execute(sql, params).fetchall()

    def close(self) -> None:
        self.onb.close()
        self.txn.close()
        self.redis.close()
        self.mongo.close()

    # shared facts
    def balance(self, bid: str) -> dict[str, Any]:
        cols = ("id::text", "organization_id::text", "ledger_id::text", "account_id::text", "alias", "asset_code",
                "available", "on_hold", "version", "account_type", "deleted_at", "key")
        row = self.t(f"SELECT {', '.join(cols)} FROM balance WHERE id = %s", bid)
        assert row, f"balance {bid} missing"
        d = dict(zip((c.split("::")[0] for c in cols), row[0], strict=True))
        d["direction"] = self.t("SELECT direction FROM balance WHERE id = %s", bid)[0][0] if self.r2 else "credit"
        return d

    def ops(self, bid: str) -> list[tuple[Any, ...]]:
        return self.t("""SELECT id::text, available_balance, on_hold_balance, available_balance_after,
                         on_hold_balance_after, balance_version_before, balance_version_after, type, amount
                         FROM operation WHERE balance_id = %s AND deleted_at IS NULL AND balance_affected
                         ORDER BY balance_version_after, id""", bid)

    def redis_value(self, key: str) -> dict[str, Any] | None:
        raw = self.redis.get(key)
        return orjson.loads(raw) if raw else None

    def pg_for_key(self, key: str) -> dict[str, Any] | None:
        org, led, rest = key[len(REDIS_BALANCE_PREFIX):][:36], key[len(REDIS_BALANCE_PREFIX) + 37:][:36], \
            key[len(REDIS_BALANCE_PREFIX) + 74:]
        alias, bkey = rest.split("#", 1)
        row = self.t("SELECT id::text FROM balance WHERE organization_id = %s AND ledger_id = %s AND alias = %s "
                     "AND key = %s AND deleted_at IS NULL", org, led, alias, bkey)
        return self.balance(row[0][0]) if row else None

    def backup_named(self) -> set[str]:
        out = set()
        for raw in self.redis.hgetall(BACKUP_QUEUE).values():
            try:
                entry = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            for snap in entry.get("balances") or []:
                out.add(snap.get("ID", ""))
        return out

    def tx_sums(self, tx: str) -> dict[str, Any]:
        row = self.t("""SELECT t.status, t.amount,
            COALESCE(SUM(o.amount) FILTER (WHERE o.type='DEBIT'),0), COALESCE(SUM(o.amount) FILTER (WHERE o.type='CREDIT'),0),
            COALESCE(SUM(o.amount) FILTER (WHERE o.type='ON_HOLD'),0), COALESCE(SUM(o.amount) FILTER (WHERE o.type='RELEASE'),0)
            FROM "transaction" t LEFT JOIN operation o ON o.transaction_id = t.id AND o.deleted_at IS NULL
            WHERE t.id = %s GROUP BY t.id""", tx)[0]
        return dict(zip(("status", "amount", "debit", "credit", "on_hold", "release"), row, strict=True))

    def mongo_doc(self, entity: str) -> tuple[Any, str, str]:
        dbcoll, eid = entity.split("/", 1)
        db, coll = dbcoll.split(".", 1)
        return self.mongo[db][coll], coll, eid


# ---------------------------------------------------------------------------------------------- probes
def _status_rule_fails(s: dict[str, Any]) -> bool:
    st, amt, d, c, h, r = s["status"], s["amount"], s["debit"], s["credit"], s["on_hold"], s["release"]
    if st == "APPROVED":
        return not (d == c == amt and r == 0 and h in (0, amt))
    if st == "NOTED":
        return not (d == c == amt and h == 0 and r == 0)
    if st == "PENDING":
        return not (h == amt and d == c == r == 0)
    if st == "CANCELED":
        return not (h == amt and r == amt and d == c == 0)
    return True


def p_balance_last_operation_mismatch(s: Stores, e: str) -> None:
    b, last = s.balance(e), s.ops(e)[-1]
    assert (b["available"], b["on_hold"]) != (last[3], last[4]) or b["version"] < last[6]


def p_balance_replay_mismatch(s: Stores, e: str) -> None:
    b, ops = s.balance(e), s.ops(e)
    assert (sum(o[3] - o[1] for o in ops), sum(o[4] - o[2] for o in ops)) != (b["available"], b["on_hold"])


def p_lost_flush(s: Stores, e: str) -> None:
    b = s.balance(e)
    key = f"{REDIS_BALANCE_PREFIX}{b['organization_id']}:{b['ledger_id']}:{b['alias']}#{b['key']}"
    assert not s.redis.exists(key)
    p_balance_last_operation_mismatch(s, e)


def p_operation_arithmetic_invalid(s: Stores, e: str) -> None:
    (vb, va) = s.t("SELECT balance_version_before, balance_version_after FROM operation WHERE id = %s", e)[0]
    assert va != vb + 1


def _op_balance(s: Stores, e: str) -> tuple[str, int, int]:
    row = s.t("SELECT balance_id::text, balance_version_before, balance_version_after FROM operation WHERE id = %s", e)
    return row[0]


def p_version_chain_broken(s: Stores, e: str) -> None:
    bid, vb, va = _op_balance(s, e)
    prev = [o for o in s.ops(bid) if o[0] != e and (o[6], o[0]) < (va, e)]
    assert prev and (vb < prev[-1][6] or va == prev[-1][6])


def p_version_gap(s: Stores, e: str) -> None:
    bid, vb, va = _op_balance(s, e)
    prev = [o for o in s.ops(bid) if o[0] != e and (o[6], o[0]) < (va, e)]
    assert prev and vb > prev[-1][6]


def p_balance_sign_invalid(s: Stores, e: str) -> None:
    b = s.balance(e)
    sign = -1 if b["direction"] == "debit" else 1
    if b["account_type"] == "external":
        assert sign * b["available"] > 0 or b["on_hold"] != 0
    else:
        assert b["available"] < 0 or b["on_hold"] < 0


def p_deleted_balance_not_zero(s: Stores, e: str) -> None:
    b = s.balance(e)
    assert b["deleted_at"] is not None and (b["available"] != 0 or b["on_hold"] != 0)


def p_ledger_not_zero_sum(s: Stores, e: str) -> None:
    org, led, asset = e.split("/")
    total = Decimal(0)
    for (bid,) in s.t("SELECT id::text FROM balance WHERE organization_id = %s AND ledger_id = %s AND asset_code = %s "
                      "AND deleted_at IS NULL", org, led, asset):
        b = s.balance(bid)
        av, oh = b["available"], b["on_hold"]
        try:
            v = s.redis_value(f"{REDIS_BALANCE_PREFIX}{org}:{led}:{b['alias']}#{b['key']}")
            if v and v.get("ID") == bid:
                av, oh = Decimal(v["Available"]), Decimal(v["OnHold"])
        except orjson.JSONDecodeError:
            pass
        total += (-1 if b["direction"] == "debit" else 1) * (av + oh)
    assert total != 0


def p_duplicate_balance(s: Stores, e: str) -> None:
    org, led, ak = e.split("/", 2)
    alias, key = ak.split("#", 1)
    assert s.t("SELECT count(*) FROM balance WHERE organization_id = %s AND ledger_id = %s AND alias = %s AND key = %s "
               "AND deleted_at IS NULL", org, led, alias, key)[0][0] > 1


def p_duplicate_account_alias(s: Stores, e: str) -> None:
    org, led, alias = e.split("/", 2)
    assert s.o("SELECT count(*) FROM account WHERE organization_id = %s AND ledger_id = %s AND alias = %s "
               "AND deleted_at IS NULL", org, led, alias)[0][0] > 1


def p_duplicate_asset_code(s: Stores, e: str) -> None:
    org, led, code = e.split("/")
    assert s.o("SELECT count(*) FROM asset WHERE organization_id = %s AND ledger_id = %s AND code = %s "
               "AND deleted_at IS NULL", org, led, code)[0][0] > 1


def p_unbalanced_transaction(s: Stores, e: str) -> None:
    assert _status_rule_fails(s.tx_sums(e))
    if s.r2:  # flagged at R2 only when the direction rule fails too (DESIGN §7)
        d, c = s.t("""SELECT COALESCE(SUM(amount) FILTER (WHERE COALESCE(direction,'') = 'debit'),0),
                             COALESCE(SUM(amount) FILTER (WHERE COALESCE(direction,'') = 'credit'),0)
                      FROM operation WHERE transaction_id = %s AND deleted_at IS NULL""", e)[0]
        assert d != c or not s.t("SELECT 1 FROM operation WHERE transaction_id = %s", e)


def p_value_not_conserved(s: Stores, e: str) -> None:
    sign = "CASE WHEN b.direction = 'debit' THEN -1 ELSE 1 END *" if s.r2 else ""
    net = s.t(f"""SELECT SUM({sign} ((o.available_balance_after + o.on_hold_balance_after)
                                     - (o.available_balance + o.on_hold_balance)))
                  FROM operation o JOIN balance b ON b.id = o.balance_id
                  WHERE o.transaction_id = %s AND o.balance_affected""", e)[0][0]
    assert net != 0


def p_operation_asset_mismatch(s: Stores, e: str) -> None:
    assert s.t('SELECT count(*) FROM operation o JOIN "transaction" t ON t.id = o.transaction_id '
               "WHERE t.id = %s AND o.asset_code <> t.asset_code", e)[0][0] > 0


def p_unknown_operation_type(s: Stores, e: str) -> None:
    assert s.t("SELECT count(*) FROM operation WHERE transaction_id = %s AND type NOT IN "
               "('DEBIT','CREDIT','ON_HOLD','RELEASE')", e)[0][0] > 0


def p_balance_affected_mismatch(s: Stores, e: str) -> None:
    assert s.t('SELECT count(*) FROM operation o JOIN "transaction" t ON t.id = o.transaction_id '
               "WHERE t.id = %s AND o.balance_affected = (t.status = 'NOTED')", e)[0][0] > 0


def p_transaction_without_operations(s: Stores, e: str) -> None:
    assert s.t('SELECT count(*) FROM "transaction" WHERE id = %s', e)[0][0] == 1
    assert s.t("SELECT count(*) FROM operation WHERE transaction_id = %s", e)[0][0] == 0


def p_operation_transaction_mismatch(s: Stores, e: str) -> None:
    assert s.t('SELECT t.deleted_at IS NOT NULL OR t.organization_id <> o.organization_id OR t.ledger_id <> o.ledger_id '
               'FROM operation o JOIN "transaction" t ON t.id = o.transaction_id WHERE o.id = %s', e)[0][0]


def p_operation_balance_missing(s: Stores, e: str) -> None:
    assert s.t("SELECT count(*) FROM operation o JOIN balance b ON b.id = o.balance_id WHERE o.id = %s", e)[0][0] == 0


def p_operation_balance_mismatch(s: Stores, e: str) -> None:
    assert s.t("""SELECT b.account_id <> o.account_id OR b.asset_code <> o.asset_code OR b.key <> o.balance_key
                  OR b.alias <> o.account_alias OR b.organization_id <> o.organization_id OR b.ledger_id <> o.ledger_id
                  FROM operation o JOIN balance b ON b.id = o.balance_id WHERE o.id = %s""", e)[0][0]


def p_reversal_invalid(s: Stores, e: str) -> None:
    assert s.t("""SELECT p.status <> 'APPROVED' OR p.parent_transaction_id IS NOT NULL OR c.amount <> p.amount
                  OR c.asset_code <> p.asset_code OR c.status <> 'APPROVED' OR p.deleted_at IS NOT NULL
                  FROM "transaction" c JOIN "transaction" p ON p.id = c.parent_transaction_id WHERE c.id = %s""", e)[0][0]


def p_multiple_reversals(s: Stores, e: str) -> None:
    assert s.t('SELECT count(*) FROM "transaction" WHERE parent_transaction_id = %s AND deleted_at IS NULL', e)[0][0] > 1


def p_reversal_asymmetric(s: Stores, e: str) -> None:
    def per_account(tx: str) -> dict[tuple[str, str], Decimal]:
        return {(str(a), t): v for a, t, v in s.t(
            "SELECT account_id, type, SUM(amount) FROM operation WHERE transaction_id = %s AND type IN ('DEBIT','CREDIT') "
            "GROUP BY 1, 2", tx)}
    parent = s.t('SELECT parent_transaction_id::text FROM "transaction" WHERE id = %s', e)[0][0]
    child, par = per_account(e), per_account(parent)
    mirrored = {(a, "DEBIT" if t == "CREDIT" else "CREDIT"): v for (a, t), v in par.items()}
    assert child != mirrored


def p_persisted_created_status(s: Stores, e: str) -> None:
    assert s.t('SELECT status FROM "transaction" WHERE id = %s', e)[0][0] == "CREATED"


def p_unknown_transaction_status(s: Stores, e: str) -> None:
    assert s.t('SELECT status FROM "transaction" WHERE id = %s', e)[0][0] not in KNOWN_STATUSES | {"CREATED"}


def p_pending_body_mismatch(s: Stores, e: str) -> None:
    status, has_body = s.t('SELECT status, body IS NOT NULL FROM "transaction" WHERE id = %s', e)[0]
    assert (status == "PENDING") != has_body


def p_ageing_pending_hold(s: Stores, e: str) -> None:
    status, updated = s.t('SELECT status, updated_at FROM "transaction" WHERE id = %s', e)[0]
    limit = s.now - timedelta(hours=168)
    assert status == "PENDING" and updated < limit and datetime.fromtimestamp(uuid7_ms(e) / 1000, UTC) < limit
    assert s.t("SELECT count(*) FROM operation WHERE transaction_id = %s AND type = 'ON_HOLD'", e)[0][0] >= 1


def _entry(s: Stores, field: str) -> dict[str, Any]:
    raw = s.redis.hget(BACKUP_QUEUE, field)
    assert raw is not None, field
    return orjson.loads(raw)


def _entry_age(s: Stores, field: str) -> timedelta:
    entry = _entry(s, field)
    if entry.get("ttl"):
        return s.now - datetime.fromisoformat(entry["ttl"].replace("Z", "+00:00"))
    return s.now - datetime.fromtimestamp(uuid7_ms(field.rsplit(":", 1)[1]) / 1000, UTC)


def _hard_grace(s: Stores) -> timedelta:
    return timedelta(minutes=100 if s.r2 else 75)


def p_backup_entry_without_transaction(s: Stores, e: str) -> None:
    assert _entry_age(s, e) > _hard_grace(s)
    assert not s.t('SELECT 1 FROM "transaction" WHERE id = %s', e.rsplit(":", 1)[1])


def p_stuck_backup_entry(s: Stores, e: str) -> None:
    assert _entry_age(s, e) > _hard_grace(s)


def p_backup_entry_age_unknown(s: Stores, e: str) -> None:
    entry = _entry(s, e)
    tx = e.rsplit(":", 1)[1]
    assert not entry.get("ttl") and uuid.UUID(tx).version != 7
    assert not s.t('SELECT 1 FROM "transaction" WHERE id = %s', tx)


def p_quarantined_transaction(s: Stores, e: str) -> None:
    assert s.t("SELECT count(*) FROM transaction_backup_quarantine WHERE transaction_id = %s", e)[0][0] == 1


def p_account_ledger_org_mismatch(s: Stores, e: str) -> None:
    assert s.o("SELECT a.organization_id <> l.organization_id FROM account a JOIN ledger l ON l.id = a.ledger_id "
               "WHERE a.id = %s", e)[0][0]


def p_account_parent_mismatch(s: Stores, e: str) -> None:
    assert s.o("SELECT p.ledger_id <> a.ledger_id OR p.asset_code <> a.asset_code FROM account a "
               "JOIN account p ON p.id = a.parent_account_id WHERE a.id = %s", e)[0][0]


def p_account_portfolio_mismatch(s: Stores, e: str) -> None:
    assert s.o("SELECT p.ledger_id <> a.ledger_id FROM account a JOIN portfolio p ON p.id = a.portfolio_id "
               "WHERE a.id = %s", e)[0][0]


def p_account_segment_mismatch(s: Stores, e: str) -> None:
    assert s.o("SELECT g.ledger_id <> a.ledger_id FROM account a JOIN segment g ON g.id = a.segment_id "
               "WHERE a.id = %s", e)[0][0]


def p_account_asset_missing(s: Stores, e: str) -> None:
    assert s.o("""SELECT NOT EXISTS (SELECT 1 FROM asset s WHERE s.organization_id = a.organization_id
                  AND s.ledger_id = a.ledger_id AND s.code = a.asset_code AND s.deleted_at IS NULL)
                  AND a.deleted_at IS NULL FROM account a WHERE a.id = %s""", e)[0][0]


def p_asset_without_external_account(s: Stores, e: str) -> None:
    org, led, code = e.split("/")
    assert s.o("SELECT count(*) FROM asset WHERE organization_id = %s AND ledger_id = %s AND code = %s "
               "AND deleted_at IS NULL", org, led, code)[0][0] >= 1
    assert s.o("SELECT count(*) FROM account WHERE organization_id = %s AND ledger_id = %s AND alias = %s "
               "AND type = 'external' AND deleted_at IS NULL", org, led, f"@external/{code}")[0][0] == 0


def p_live_child_of_deleted_parent(s: Stores, e: str) -> None:
    table, ident = e.split("/", 1)
    assert table == "segment"
    assert s.o("SELECT g.deleted_at IS NULL AND l.deleted_at IS NOT NULL FROM segment g JOIN ledger l "
               "ON l.id = g.ledger_id WHERE g.id = %s", ident)[0][0]


def p_transaction_route_missing(s: Stores, e: str) -> None:
    route = s.t('SELECT route FROM "transaction" WHERE id = %s', e)[0][0]
    assert route and not s.t("SELECT 1 FROM transaction_route WHERE id::text = %s", route)


def p_operation_route_missing(s: Stores, e: str) -> None:
    route = s.t("SELECT route FROM operation WHERE id = %s", e)[0][0]
    assert route and not s.t("SELECT 1 FROM operation_route WHERE id::text = %s", route)


def p_balance_account_missing(s: Stores, e: str) -> None:
    b = s.balance(e)
    assert b["deleted_at"] is None and not s.o("SELECT 1 FROM account WHERE id = %s", b["account_id"])


def p_balance_account_deleted(s: Stores, e: str) -> None:
    b = s.balance(e)
    assert b["deleted_at"] is None and s.o("SELECT deleted_at IS NOT NULL FROM account WHERE id = %s",
                                           b["account_id"])[0][0]


def p_balance_account_mismatch(s: Stores, e: str) -> None:
    b = s.balance(e)
    acc = s.o("SELECT organization_id, ledger_id, alias, asset_code, type FROM account WHERE id = %s", b["account_id"])[0]
    assert acc != (b["organization_id"], b["ledger_id"], b["alias"], b["asset_code"], b["account_type"])


def p_account_default_balance_missing(s: Stores, e: str) -> None:
    assert s.o("SELECT deleted_at IS NULL FROM account WHERE id = %s", e)[0][0]
    assert s.t("SELECT count(*) FROM balance WHERE account_id = %s AND key = 'default' AND deleted_at IS NULL", e)[0][0] == 0


def p_account_default_balance_duplicate(s: Stores, e: str) -> None:
    assert s.t("SELECT count(*) FROM balance WHERE account_id = %s AND key = 'default' AND deleted_at IS NULL", e)[0][0] > 1


def p_unknown_ledger(s: Stores, e: str) -> None:
    table, ident = e.split("/", 1)
    org, led = s.t(f'SELECT organization_id::text, ledger_id::text FROM "{table}" WHERE id = %s', ident)[0]
    assert not s.o("SELECT 1 FROM ledger WHERE id = %s AND organization_id = %s", led, org)


def p_transaction_asset_unknown(s: Stores, e: str) -> None:
    org, led, code = s.t('SELECT organization_id, ledger_id, asset_code FROM "transaction" WHERE id = %s', e)[0]
    assert not s.o("SELECT 1 FROM asset WHERE organization_id = %s AND ledger_id = %s AND code = %s", org, led, code)


def p_transaction_asset_deleted(s: Stores, e: str) -> None:
    org, led, code = s.t('SELECT organization_id, ledger_id, asset_code FROM "transaction" WHERE id = %s', e)[0]
    rows = s.o("SELECT deleted_at IS NOT NULL FROM asset WHERE organization_id = %s AND ledger_id = %s AND code = %s",
               org, led, code)
    assert rows and all(r[0] for r in rows)


def p_asset_rate_asset_unknown(s: Stores, e: str) -> None:
    org, led, frm, to = s.t('SELECT organization_id, ledger_id, "from", "to" FROM asset_rate WHERE id = %s', e)[0]
    codes = {r[0] for r in s.o("SELECT code FROM asset WHERE organization_id = %s AND ledger_id = %s "
                               "AND deleted_at IS NULL", org, led)}
    assert frm not in codes or to not in codes


def p_operation_account_mismatch(s: Stores, e: str) -> None:
    acc, org, led, alias = s.t("SELECT account_id, organization_id, ledger_id, account_alias FROM operation "
                               "WHERE id = %s", e)[0]
    row = s.o("SELECT organization_id, ledger_id, alias FROM account WHERE id = %s", acc)
    assert not row or row[0] != (org, led, alias)


def p_account_type_unknown(s: Stores, e: str) -> None:
    org, led, typ = s.o("SELECT organization_id::text, ledger_id::text, type FROM account WHERE id = %s", e)[0]
    assert not s.o("SELECT 1 FROM account_type WHERE ledger_id = %s AND key_value = %s AND deleted_at IS NULL", led, typ)
    if s.r2:
        assert s.o("SELECT settings->'accounting'->>'validateAccountType' FROM ledger WHERE id = %s", led)[0][0] == "true"
    else:
        assert s.manifest.settings["MIDAZ_ACCOUNT_TYPE_VALIDATION"] == f"{org}:{led}"


def p_redis_key_unparseable(s: Stores, e: str) -> None:
    assert s.redis.exists(e)
    rest = e[len(REDIS_BALANCE_PREFIX):]
    parts = rest.split(":", 2)
    assert not (len(parts) == 3 and UUID_RE.match(parts[0]) and UUID_RE.match(parts[1]) and "#" in parts[2])


def p_redis_value_unparseable(s: Stores, e: str) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(s.redis.get(e))


def p_redis_balance_unknown(s: Stores, e: str) -> None:
    v = s.redis_value(e)
    pg = s.pg_for_key(e)
    assert v is not None and (pg is None or pg["id"] != v["ID"])


def _pg_and_redis(s: Stores, e: str) -> tuple[dict[str, Any], dict[str, Any]]:
    v, pg = s.redis_value(e), s.pg_for_key(e)
    assert v is not None and pg is not None and pg["id"] == v["ID"]
    return pg, v


def p_redis_version_behind(s: Stores, e: str) -> None:
    pg, v = _pg_and_redis(s, e)
    assert v["Version"] < pg["version"]


def p_redis_amount_divergent(s: Stores, e: str) -> None:
    pg, v = _pg_and_redis(s, e)
    assert v["Version"] == pg["version"]
    assert (Decimal(v["Available"]), Decimal(v["OnHold"])) != (pg["available"], pg["on_hold"])


def _unscheduled_ahead(s: Stores, e: str) -> int:
    pg, v = _pg_and_redis(s, e)
    assert v["Version"] > pg["version"]
    assert s.redis.zscore(SCHEDULE_R1, e) is None and s.redis.zscore(SCHEDULE_R2, e) is None
    assert not s.redis.exists(f"lock:{{transactions}}:balance-sync:{e}")
    return int(s.redis.ttl(e))


def p_redis_ahead_unscheduled(s: Stores, e: str) -> None:
    ttl = _unscheduled_ahead(s, e)
    assert 3600 - ttl > 15 * 60 and (s.r2 or ttl >= 600)


def p_redis_ahead_expiring(s: Stores, e: str) -> None:
    assert not s.r2 and 0 < _unscheduled_ahead(s, e) < 600


def p_redis_operation_mismatch(s: Stores, e: str) -> None:
    pg, v = _pg_and_redis(s, e)
    last = s.ops(pg["id"])[-1]
    same = (Decimal(v["Available"]), Decimal(v["OnHold"])) == (last[3], last[4]) and (
        v["Version"] == last[6] if s.r2 else v["Version"] >= last[6])
    assert not same and pg["id"] not in s.backup_named()


def p_redis_key_for_deleted_balance(s: Stores, e: str) -> None:
    v = s.redis_value(e)
    assert v is not None and s.balance(v["ID"])["deleted_at"] is not None


def p_schedule_member_leaked(s: Stores, e: str) -> None:
    assert (s.redis.zscore(SCHEDULE_R2 if s.r2 else SCHEDULE_R1, e) is not None) and not s.redis.exists(e)


def p_schedule_worker_stuck(s: Stores, e: str) -> None:
    score = s.redis.zscore(SCHEDULE_R2 if s.r2 else SCHEDULE_R1, e)
    assert score is not None and score < s.now.timestamp() - 15 * 60
    assert s.redis.exists(e) and not s.redis.exists(f"lock:{{transactions}}:balance-sync:{e}")


def _docs(s: Stores, e: str) -> list[dict[str, Any]]:
    coll, _, eid = s.mongo_doc(e)
    docs = list(coll.find({"entity_id": eid}))
    assert docs, e
    return docs


TABLES = {"transaction": ('"transaction"', "t"), "operation": ("operation", "t"), "account": ("account", "o"),
          "portfolio": ("portfolio", "o"), "ledger": ("ledger", "o"), "asset": ("asset", "o")}
TYPE_NAMES = {"transaction": "Transaction", "operation": "Operation", "account": "Account", "ledger": "Ledger",
              "portfolio": "Portfolio", "asset": "Asset"}


def p_metadata_invalid_entity_id(s: Stores, e: str) -> None:
    _docs(s, e)
    assert not UUID_RE.match(e.split("/", 1)[1])


def p_metadata_orphan(s: Stores, e: str) -> None:
    _docs(s, e)
    _, coll, eid = s.mongo_doc(e)
    table, db = TABLES[coll]
    rows = (s.t if db == "t" else s.o)(f"SELECT 1 FROM {table} WHERE id = %s", eid)
    assert not rows


def p_metadata_duplicate(s: Stores, e: str) -> None:
    assert len(_docs(s, e)) > 1


def p_metadata_entity_name_mismatch(s: Stores, e: str) -> None:
    _, coll, _ = s.mongo_doc(e)
    assert any(d.get("entity_name") != TYPE_NAMES[coll] for d in _docs(s, e))


def p_metadata_not_object(s: Stores, e: str) -> None:
    assert any(not isinstance(d.get("metadata"), dict) for d in _docs(s, e))


def p_metadata_nested_value(s: Stores, e: str) -> None:
    assert any(isinstance(v, (dict, list)) for d in _docs(s, e) for v in (d.get("metadata") or {}).values())


def p_metadata_key_too_long(s: Stores, e: str) -> None:
    assert any(len(k) > 100 for d in _docs(s, e) for k in (d.get("metadata") or {}))


def p_metadata_value_too_long(s: Stores, e: str) -> None:
    assert any(isinstance(v, str) and len(v) > 2000 for d in _docs(s, e) for v in (d.get("metadata") or {}).values())


def p_metadata_timestamps_inverted(s: Stores, e: str) -> None:
    assert any(d["created_at"] > d["updated_at"] for d in _docs(s, e))


def p_live_accounts_default_balances_mismatch(s: Stores, e: str) -> None:
    org, led = e.split("/")
    accounts = s.o("SELECT count(*) FROM account WHERE organization_id = %s AND ledger_id = %s AND deleted_at IS NULL",
                   org, led)[0][0]
    deleted = [r[0] for r in s.o("SELECT id FROM account WHERE deleted_at IS NOT NULL")]
    exclude = "" if s.r2 else "AND NOT (account_id = ANY(%s))"
    params: tuple[Any, ...] = (org, led) if s.r2 else (org, led, deleted)
    balances = s.t(f"SELECT count(*) FROM balance WHERE organization_id = %s AND ledger_id = %s AND key = 'default' "
                   f"AND deleted_at IS NULL {exclude}", *params)[0][0]
    assert accounts != balances


def p_metadata_exceeds_rows(s: Stores, e: str) -> None:
    db, coll = e.split(".", 1)
    table, which = TABLES[coll]
    rows = (s.t if which == "t" else s.o)(f"SELECT count(*) FROM {table}")[0][0]
    assert s.mongo[db][coll].count_documents({}) > rows


PROBES: dict[str, Callable[[Stores, str], None]] = {
    name[2:]: fn for name, fn in globals().items() if name.startswith("p_") and callable(fn)
}


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", params=["r1", "r2"])
def faulted(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[tuple[Stores, Manifest]]:
    env = local_stack.new_env(request.param)
    now = _now()
    generate(env, operations=OPS, seed=21, now=now)
    manifest = inject(env, faults="all", seed=5, now=now)
    stores = Stores(env, manifest, now)
    yield stores, manifest
    stores.close()
    local_stack.drop_env(env)


# ---------------------------------------------------------------------------------------------- tests
def test_every_fault_injected(faulted: tuple[Stores, Manifest]) -> None:
    stores, manifest = faulted
    expected = available_faults(stores.env.revision)
    skipped = {n: d for n, d in manifest.faults.items() if not d.get("injected")}
    assert skipped == {}
    assert set(manifest.faults) == set(expected)
    assert set(CATALOGUE_8_4) - {"redis_ahead_expiring"} <= set(expected)
    for name in expected:
        assert manifest.by_fault(name), f"{name} yields no finding"


def test_every_catalogue_kind_covered(faulted: tuple[Stores, Manifest]) -> None:
    """One fault per catalog.py kind that corrupting data can produce (row_count_decreased needs a previous run;
    revision-specific kinds at their revision)."""
    stores, manifest = faulted
    kinds = {e.kind for e in manifest.entries}
    not_here = {"row_count_decreased"} | ({"redis_ahead_expiring"} if stores.r2 else {
        "version_gap", "quarantined_transaction", "account_type_unknown"})  # R1: opt-in (needs an env setting)
    assert REPORTED_KINDS - not_here - kinds == set()
    assert set(PROBES) >= REPORTED_KINDS - {"row_count_decreased"}


def test_entries_well_formed(faulted: tuple[Stores, Manifest]) -> None:
    stores, manifest = faulted
    mongo_dbs = {stores.env.mongo_onboarding_db, stores.env.mongo_transaction_db}
    for e in manifest.entries:
        spec = BY_KIND[e.kind]
        assert spec.check == e.check
        if e.kind in ("balance_account_deleted", "metadata_duplicate"):
            assert e.severity == ("error" if stores.r2 else "warning")
        else:
            assert e.severity == spec.severity
        assert e.severity in ("error", "warning")
        # faults model past corruption: older than the soft grace (ageing hold: older than the SLA)
        assert e.at_datetime < stores.now - timedelta(minutes=15), e
        fmt = spec.entity
        if fmt in ("balance_id", "operation_id", "transaction_id", "account_id", "entity_id"):
            assert UUID_RE.match(e.entity), e
        elif fmt == "redis_key":
            assert e.entity.startswith(REDIS_BALANCE_PREFIX), e
        elif fmt == "<backup-queue hash field>":
            assert e.entity.startswith("transaction:{transactions}:"), e
        elif fmt.startswith("<db>.<collection>/"):
            assert e.entity.split(".", 1)[0] in mongo_dbs, e
        elif fmt == "<db>.<collection>":
            assert e.entity.split(".", 1)[0] in mongo_dbs, e
        elif fmt == "<table>/<id>":
            assert UUID_RE.match(e.entity.split("/", 1)[1]), e
        else:  # composite "<org>/<ledger>/..."
            parts = e.entity.split("/")
            assert UUID_RE.match(parts[0]) and UUID_RE.match(parts[1]), e


@pytest.mark.parametrize("kind", sorted(REPORTED_KINDS - {"row_count_decreased"}))
def test_entries_visible_in_the_stores(faulted: tuple[Stores, Manifest], kind: str) -> None:
    """Each manifest entry's anomaly is there, on exactly the entity named."""
    stores, manifest = faulted
    entries = [e for e in manifest.entries if e.kind == kind]
    for e in entries:
        PROBES[kind](stores, e.entity)


def test_faults_pick_disjoint_entities(faulted: tuple[Stores, Manifest]) -> None:
    _, manifest = faulted
    owner: dict[str, str] = {}
    for e in manifest.entries:
        if e.kind in AGGREGATE_KINDS:
            continue
        assert owner.setdefault(e.entity, e.fault) == e.fault, (e.entity, owner[e.entity], e.fault)
    touched = [d for d in manifest.faults.values() if d.get("injected")]
    ids = [v for d in touched for v in d.values() if isinstance(v, str) and UUID_RE.match(v)]
    assert len(ids) == len(set(ids))


def test_manifest_round_trip_and_windows(faulted: tuple[Stores, Manifest], tmp_path: Any) -> None:
    stores, manifest = faulted
    path = manifest.save(tmp_path / "m.json")
    again = Manifest.load(path)
    assert sorted(again.entries) == sorted(manifest.entries) and again.faults == manifest.faults
    assert again.keys() == manifest.keys()
    day_start = (stores.now - timedelta(days=1)).replace(hour=0, minute=0, second=0)
    window = (day_start, day_start + timedelta(days=1))
    inside = manifest.expected(window=window)
    assert all(window[0] <= e.at_datetime < window[1] for e in inside)
    assert len(manifest.expected(check="balances")) == sum(1 for e in manifest.entries if e.check == "balances")


def _normalised(manifest: Manifest, env: MidazEnv) -> set[tuple[str, str, str, str, str]]:
    out = set()
    for e in manifest.entries:
        ent = e.entity.replace(env.mongo_onboarding_db + ".", "ONB.").replace(env.mongo_transaction_db + ".", "TXN.")
        out.add((e.check, e.kind, ent, e.at, e.fault))
    return out


def test_deterministic_and_on_day(local_stack: LocalStack) -> None:
    """Same ledger + same seed => same manifest; on_day puts faults on entities written that day."""
    now = _now()
    envs = [local_stack.new_env("r1") for _ in range(2)]
    try:
        for env in envs:
            generate(env, operations=3000, seed=8, now=now)
        day = (now - timedelta(days=1)).date()
        picks = ["balance_behind_last_operation", "persisted_created_status", "version_fork", "metadata_orphan",
                 "transaction_without_operations", "redis_version_behind", "account_without_default_balance"]
        on_day = {n: day for n in picks if n != "redis_version_behind"}
        m1 = inject(envs[0], faults=picks, seed=3, now=now, on_day=on_day)
        m2 = inject(envs[1], faults=picks, seed=3, now=now, on_day=on_day)
        assert _normalised(m1, envs[0]) == _normalised(m2, envs[1])
        assert all(d.get("injected") for d in m1.faults.values()), m1.faults
        for e in m1.entries:
            if e.fault in on_day and e.kind not in AGGREGATE_KINDS:
                assert e.at_datetime.date() == day, e
    finally:
        for env in envs:
            local_stack.drop_env(env)


def test_registry_documents_every_fault() -> None:
    for name, fault in FAULTS.items():
        assert fault.doc, name
        assert set(fault.revisions) <= {"r1", "r2"}
