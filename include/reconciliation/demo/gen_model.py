"""Building blocks of the synthetic Midaz ledger: UUIDv7 ids from simulated write times, exact decimal
text, COPY text encoding and the in-memory entity model the generator simulates (reference §2, §4, §5).

Kept free of any store client so the fault injector and tests can reuse the helpers.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson

# Midaz v4 gives new @external balances direction 'debit' from this day on (reference §5.1, commit bdda14745).
DEBIT_EXTERNAL_SINCE = date(2026, 7, 13)
REDIS_BALANCE_PREFIX = "balance:{transactions}:"
SCHEDULE_R1 = "schedule:{transactions}:balance-sync"
SCHEDULE_R2 = "schedule:{transactions}:balance-sync-v2"
BACKUP_QUEUE = "backup_queue:{transactions}"
BALANCE_TTL_S = 3600
R1_SYNC_DUE_S = 3000  # add_sub.lua: ZADD score = now + 3600 - 600

ZERO = Decimal(0)


class MidazEnvLike(Protocol):
    """What the generator and the injector need from a Midaz environment (demo/servers.py MidazEnv)."""

    onboarding_conninfo: str
    transaction_conninfo: str
    redis_url: str
    mongo_uri: str
    mongo_onboarding_db: str
    mongo_transaction_db: str
    revision: str


def uuid7(ts_ms: int, rng: random.Random) -> str:
    """A UUIDv7 whose 48-bit prefix is the simulated write time, with seeded random bits (deterministic)."""
    value = (ts_ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_ms(value: str) -> int:
    """Write time (ms) carried by a UUIDv7."""
    return uuid.UUID(value).int >> 80


def dec(value: Decimal) -> str:
    """Exact decimal text without exponent (Redis and JSON want plain digits, e.g. '0.00000012')."""
    s = str(value)
    if "E" in s or "e" in s:
        s = format(value, "f")
    return s


def ts_text(ms: int) -> str:
    """TIMESTAMPTZ text for COPY from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def ms_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def dt_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def go_time(ms: int) -> str:
    """Go's time.Time JSON form (RFC 3339, UTC), as Midaz writes `ttl` and `transaction_date`."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: Any) -> str:
    """One field in PostgreSQL COPY text format (None -> \\N; bool -> t/f; dict -> JSON)."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, Decimal):
        return dec(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode().translate(_COPY_ESCAPES)
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


def copy_line(values: list[Any] | tuple[Any, ...]) -> str:
    return "\t".join(copy_text(v) for v in values) + "\n"


@dataclass
class Org:
    id: str
    name: str
    created_ms: int
    ledgers: list[Ledger] = field(default_factory=list)


@dataclass
class Ledger:
    id: str
    org_id: str
    name: str
    created_ms: int
    routes: bool = False  # transactions carry route ids; at R2 settings.accounting.validateRoutes = true
    assets: list[Asset] = field(default_factory=list)
    transaction_route_id: str | None = None
    source_route: tuple[str, str, str] | None = None  # (operation_route id, code, description)
    dest_route: tuple[str, str, str] | None = None
    segment_id: str | None = None
    portfolio_id: str | None = None


@dataclass
class Asset:
    id: str
    org_id: str
    ledger_id: str
    code: str
    name: str
    type: str
    decimals: int
    created_ms: int
    external: Balance | None = None
    balances: list[Balance] = field(default_factory=list)  # user balances (all keys)
    defaults: list[Balance] = field(default_factory=list)  # user default balances


@dataclass
class Account:
    id: str
    org_id: str
    ledger_id: str
    asset_code: str
    alias: str
    type: str
    name: str
    status: str
    created_ms: int
    portfolio_id: str | None = None
    segment_id: str | None = None
    entity_id: str | None = None
    default: Balance | None = None


class Balance:
    """One balance: the Redis/Lua state (available, on_hold, version) plus what PostgreSQL holds."""

    __slots__ = (
        "id", "org_id", "ledger_id", "account_id", "alias", "key", "asset_code", "account_type", "direction",
        "sign", "external", "available", "on_hold", "version", "pg_version", "pg_available", "pg_on_hold",
        "pg_updated_ms", "touch_ms", "alias_idx", "created_ms", "redis_only", "in_flight", "until_ms",
    )

    def __init__(self, id: str, acc: Account, key: str, created_ms: int, direction: str) -> None:
        self.id = id
        self.org_id = acc.org_id
        self.ledger_id = acc.ledger_id
        self.account_id = acc.id
        self.alias = acc.alias
        self.key = key
        self.asset_code = acc.asset_code
        self.account_type = acc.type
        self.direction = direction
        self.sign = -1 if direction == "debit" else 1  # debit-direction: DEBIT increases available (R2)
        self.external = acc.type == "external"
        self.available = ZERO
        self.on_hold = ZERO
        self.version = 0
        self.pg_version = 0
        self.pg_available = ZERO
        self.pg_on_hold = ZERO
        self.pg_updated_ms = created_ms
        self.touch_ms = 0  # last Lua write (0 = never touched by a transaction)
        self.alias_idx = 0
        self.created_ms = created_ms
        self.redis_only = False  # R1: a version bump not yet in PostgreSQL (cancel destination)
        self.in_flight = False
        self.until_ms = 1 << 62  # dormant accounts stop transacting after this (simulated) time

    @property
    def redis_key(self) -> str:
        return f"{REDIS_BALANCE_PREFIX}{self.org_id}:{self.ledger_id}:{self.alias}#{self.key}"

    def redis_value(self, revision: str, available: Decimal | None = None, on_hold: Decimal | None = None,
                    version: int | None = None, idx: int | None = None) -> dict[str, Any]:
        """The PascalCase JSON add_sub.lua / balance_atomic_operation.lua writes (reference §4.2)."""
        value: dict[str, Any] = {
            "ID": self.id,
            "Available": dec(self.available if available is None else available),
            "OnHold": dec(self.on_hold if on_hold is None else on_hold),
            "Version": self.version if version is None else version,
            "AccountType": self.account_type,
            "AllowSending": 1,
            "AllowReceiving": 1,
            "AssetCode": self.asset_code,
            "AccountID": self.account_id,
            "Key": self.key,
            "Alias": f"{self.alias_idx if idx is None else idx}#{self.alias}#{self.key}",
        }
        if revision == "r2":
            value.update({
                "Direction": self.direction,
                "OverdraftUsed": "0",
                "AllowOverdraft": 0,
                "OverdraftLimitEnabled": 0,
                "OverdraftLimit": "0",
                "BalanceScope": "transactional",
            })
        return value


def metadata_doc(entity_id: str, entity_name: str, metadata: dict[str, Any], ms: int,
                 updated_ms: int | None = None) -> dict[str, Any]:
    """A Mongo metadata document exactly as Midaz stores it (reference §3.2)."""
    return {
        "entity_id": entity_id,
        "entity_name": entity_name,
        "metadata": metadata,
        "created_at": ms_dt(ms),
        "updated_at": ms_dt(updated_ms if updated_ms is not None else ms),
    }


# Mongo: collection per entity type (reference §3.1) and the wrongly named ones EnsureIndexes creates (§3.4).
MONGO_ONBOARDING_COLLECTIONS = {
    "organization": "Organization", "ledger": "Ledger", "asset": "Asset", "segment": "Segment",
    "portfolio": "Portfolio", "account": "Account", "accounttype": "AccountType",
}
MONGO_TRANSACTION_COLLECTIONS = {
    "transaction": "Transaction", "operation": "Operation", "assetrate": "AssetRate",
    "operationroute": "OperationRoute", "transactionroute": "TransactionRoute",
}
ENSURE_INDEX_ONBOARDING = ("organization", "ledger", "segment", "account", "portfolio", "asset", "account_type")
ENSURE_INDEX_TRANSACTION = ("operation", "transaction", "operation_route", "transaction_route")
