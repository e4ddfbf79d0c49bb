"""Preflight: which Midaz revision is this, are the stores reachable, how far behind is the replica.

The revision decides the rule set (R1 = Midaz v3, R2 = v4). golang-migrate leaves `schema_migrations`
(version, dirty): R1 is onboarding 7 / transaction 15, R2 is 19 / 35. A dirty migration, or versions we
do not know, stop the run with a clear message rather than judge a half-migrated schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciliation import config
from reconciliation.sanitize import describe_error

KNOWN = {("onboarding", 7): "r1", ("transaction", 15): "r1", ("onboarding", 19): "r2", ("transaction", 35): "r2"}


class PreflightError(RuntimeError):
    """The ledger cannot be judged as it stands (message is operator-facing and sanitised)."""


@dataclass
class Preflight:
    revision: str
    versions: dict[str, int]
    replica_lag_seconds: float | None
    stores: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "versions": self.versions,
            "replica_lag_seconds": self.replica_lag_seconds,
            "stores": self.stores,
            "notes": self.notes,
        }


def revision_from_versions(onboarding: int, transaction: int) -> str:
    """R2 once the transaction schema has R2's migrations (000016+), else R1; both must agree roughly."""
    if transaction >= 16 or onboarding >= 8:
        return "r2"
    return "r1"


def run_preflight(schema: str = "auto") -> Preflight:
    from reconciliation.stores.postgres import read_only

    versions: dict[str, int] = {}
    lag: float | None = None
    stores: dict[str, str] = {}
    notes: list[str] = []
    for db, conn_id in (("onboarding", config.CONN_ONBOARDING), ("transaction", config.CONN_TRANSACTION)):
        try:
            with read_only(conn_id, repeatable=False) as conn, conn.cursor() as cur:
                cur.execute("SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1")
                row = cur.fetchone()
                if row is None:
                    raise PreflightError(f"{db}: schema_migrations is empty — is this a Midaz {db} database?")
                if row[1]:
                    raise PreflightError(
                        f"{db}: migration {row[0]} is dirty (half-applied); fix the migration before reconciling"
                    )
                versions[db] = int(row[0])
                cur.execute(
                    "SELECT CASE WHEN pg_is_in_recovery() THEN "
                    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
                )
                r = cur.fetchone()
                if r and r[0] is not None:
                    lag = max(lag or 0.0, float(r[0]))
            stores[db] = "ok"
        except PreflightError:
            raise
        except Exception as exc:  # store down: retried by Airflow, then reported as error
            raise ConnectionError(f"{db} PostgreSQL ({conn_id}) unreachable: {describe_error(exc)}") from None
    detected = revision_from_versions(versions["onboarding"], versions["transaction"])
    for db, v in versions.items():
        if (db, v) not in KNOWN:
            notes.append(f"{db} schema version {v} is not one we verified; applying {detected} rules")
    if schema != "auto" and schema != detected:
        notes.append(f"schema forced to {schema} (detected {detected})")
        detected = schema
    return Preflight(detected, versions, lag, stores, notes)


def check_redis_mongo(stores: dict[str, str]) -> None:
    """Reachability of Redis and Mongo (clear, sanitised messages)."""
    from reconciliation.stores import mongo, redis

    try:
        redis.hook_client(config.CONN_REDIS).ping()
        stores["redis"] = "ok"
    except Exception as exc:
        raise ConnectionError(f"Redis ({config.CONN_REDIS}) unreachable: {describe_error(exc)}") from None
    try:
        mongo.hook_client(config.CONN_MONGO).admin.command("ping")
        stores["mongo"] = "ok"
    except Exception as exc:
        raise ConnectionError(f"MongoDB ({config.CONN_MONGO}) unreachable: {describe_error(exc)}") from None
