"""Midaz Redis: key and value formats (reference §4.1-§4.2), SCAN + pipelines through RedisHook.

Keys: `[tenant:<id>:]balance:{transactions}:<org uuid>:<ledger uuid>:<alias>#<key>`; aliases may contain
`:` and `/` but never `#`, so the remainder splits on the first `#`. Values: Lua-written PascalCase JSON
read case-insensitively (as Go does), amounts as exact decimal strings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

BALANCE_PREFIX = "balance:{transactions}:"
SCHEDULE_R1 = "schedule:{transactions}:balance-sync"
SCHEDULE_R2 = "schedule:{transactions}:balance-sync-v2"
SYNC_LOCK_PREFIX = "lock:{transactions}:balance-sync:"
BACKUP_QUEUE = "backup_queue:{transactions}"
BACKUP_FIELD_PREFIX = "transaction:{transactions}:"
PENDING_LOCK_PREFIX = "pending_transaction:{transaction}:"

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_KEY_RE = re.compile(
    rf"^(?P<tenant>tenant:[^:]+:)?balance:\{{transactions\}}:(?P<org>{_UUID}):(?P<ledger>{_UUID}):(?P<rest>.+)$"
)
_FIELD_RE = re.compile(rf"^transaction:\{{transactions\}}:(?P<org>{_UUID}):(?P<ledger>{_UUID}):(?P<tx>{_UUID})$")


def hook_client(conn_id: str) -> Any:
    from airflow.providers.redis.hooks.redis import RedisHook

    return RedisHook(redis_conn_id=conn_id).get_conn()


@dataclass(frozen=True)
class BalanceKey:
    raw: str
    tenant: str  # "" or "tenant:<id>:"
    organization_id: str
    ledger_id: str
    alias: str
    key: str


def parse_balance_key(raw: str) -> BalanceKey | None:
    """Parse a balance key; None when it does not follow the Midaz format."""
    m = _KEY_RE.match(raw)
    if not m:
        return None
    rest = m.group("rest")
    alias, sep, key = rest.partition("#")
    if not sep or not alias or not key:
        return None
    return BalanceKey(raw, m.group("tenant") or "", m.group("org").lower(), m.group("ledger").lower(), alias, key)


def parse_backup_field(raw: str) -> tuple[str, str, str] | None:
    """(org, ledger, transaction id) of a backup-queue hash field, tenant prefix allowed."""
    text = raw.split("transaction:{transactions}:", 1)
    if len(text) != 2:
        return None
    m = _FIELD_RE.match("transaction:{transactions}:" + text[1])
    if not m:
        return None
    return m.group("org").lower(), m.group("ledger").lower(), m.group("tx").lower()


class ValueError_(ValueError):
    """A Redis value that is not a Midaz balance."""


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError_(f"{name} is {value!r}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError_(f"{name} is not a decimal: {value!r}") from None
    if not d.is_finite():
        raise ValueError_(f"{name} is not finite: {value!r}")
    return d


@dataclass
class BalanceValue:
    id: str
    available: Decimal
    on_hold: Decimal
    version: int
    account_id: str | None
    asset_code: str | None
    account_type: str | None
    key: str | None
    direction: str | None
    overdraft_used: Decimal | None
    raw: dict[str, Any]


def parse_balance_value(data: bytes | str) -> BalanceValue:
    """Parse a balance value exactly; raise ValueError_ with a reason when it is not one."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError_(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError_("not a JSON object")
    low = {str(k).lower(): v for k, v in obj.items()}
    if any(isinstance(low.get(k), float) for k in ("available", "onhold", "overdraftused")):
        # A numeric amount: re-read with exact decimals rather than trust a binary float.
        obj = json.loads(data, parse_float=Decimal)
        low = {str(k).lower(): v for k, v in obj.items()}
    if "id" not in low or "available" not in low or "version" not in low:
        raise ValueError_("missing ID, Available or Version")
    version = low.get("version")
    if isinstance(version, bool) or not isinstance(version, (int, Decimal, str)):
        raise ValueError_(f"Version is {version!r}")
    try:
        version_int = int(Decimal(str(version)))
    except InvalidOperation:
        raise ValueError_(f"Version is not a number: {version!r}") from None
    od = low.get("overdraftused")
    return BalanceValue(
        id=str(low["id"]).lower(),
        available=_decimal(low["available"], "Available"),
        on_hold=_decimal(low.get("onhold", "0"), "OnHold"),
        version=version_int,
        account_id=(str(low["accountid"]).lower() if low.get("accountid") else None),
        asset_code=low.get("assetcode"),
        account_type=low.get("accounttype"),
        key=low.get("key"),
        direction=(str(low["direction"]).lower() if low.get("direction") else None),
        overdraft_used=_decimal(od, "OverdraftUsed") if od not in (None, "") else None,
        raw=obj,
    )


def scan_keys(client: Any, pattern: str, count: int = 1000) -> Iterator[list[str]]:
    """SCAN in batches (never KEYS): bounded memory on a million keys."""
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=count)
        if keys:
            yield [k.decode(errors="backslashreplace") if isinstance(k, bytes) else k for k in keys]
        if int(cursor) == 0:
            break


def balance_key_patterns(tenants: str | None) -> list[str]:
    """Key patterns to scan: the plain form plus tenant-prefixed forms (R2 multi-tenant)."""
    patterns = [BALANCE_PREFIX + "*"]
    if tenants:
        if tenants.strip() == "*":
            patterns.append("tenant:*:" + BALANCE_PREFIX + "*")
        else:
            patterns += [f"tenant:{t.strip()}:{BALANCE_PREFIX}*" for t in tenants.split(",") if t.strip()]
    return patterns
