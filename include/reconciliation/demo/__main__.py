"""Command line of the synthetic Midaz ledger: seed a ledger (and inject faults) into existing stores.

    python -m reconciliation.demo seed --revision r1 --operations 100000 --faults all --seed 7 \\
        [--days 3] [--manifest manifest.json] [--apply-schema] [--no-inflight] \\
        [--conninfo-onboarding ... --conninfo-transaction ... --redis-url ... --mongo-uri ... \\
         --mongo-onboarding-db ... --mongo-transaction-db ...]
    python -m reconciliation.demo inject --revision r1 --faults redis_version_behind,metadata_orphan --seed 7
    python -m reconciliation.demo faults            # the fault registry

Why a CLI: operators and the compose stack seed a demo Midaz without writing Python. Store locations default to
the same environment the checks read: AIRFLOW_CONN_MIDAZ_ONBOARDING_DB, AIRFLOW_CONN_MIDAZ_TRANSACTION_DB,
AIRFLOW_CONN_MIDAZ_REDIS, AIRFLOW_CONN_MIDAZ_MONGO (JSON or URI form) and MIDAZ_MONGO_{ONBOARDING,TRANSACTION}_DB.
Connection strings are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from reconciliation import config


@dataclass
class CliEnv:
    """A MidazEnv-like bundle of store locations (what generate() and inject() need)."""

    revision: str
    onboarding_conninfo: str
    transaction_conninfo: str
    redis_url: str
    mongo_uri: str
    mongo_onboarding_db: str
    mongo_transaction_db: str


def _airflow_conn(conn_id: str) -> dict[str, Any] | None:
    """Parse AIRFLOW_CONN_<ID> (JSON or URI) into Airflow's connection fields."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not raw:
        return None
    raw = raw.strip()
    if raw.startswith("{"):
        data = json.loads(raw)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra.strip() else {}
        data["extra"] = extra
        return data
    parts = urlsplit(raw)
    extra: dict[str, Any] = {}
    for item in filter(None, parts.query.split("&")):
        key, _, value = item.partition("=")
        extra[unquote(key)] = unquote(value)
    if "__extra__" in extra:
        extra = json.loads(extra["__extra__"])
    return {"conn_type": parts.scheme.replace("-", "_"), "host": unquote(parts.hostname or ""), "port": parts.port,
            "login": unquote(parts.username or ""), "password": unquote(parts.password or ""),
            "schema": unquote(parts.path.lstrip("/")), "extra": extra}


def _pg_conninfo(conn: dict[str, Any]) -> str:
    from psycopg.conninfo import make_conninfo

    kw = {"host": conn.get("host") or "localhost", "port": str(conn.get("port") or 5432),
          "user": conn.get("login") or None, "password": conn.get("password") or None,
          "dbname": conn.get("schema") or None}
    sslmode = (conn.get("extra") or {}).get("sslmode")
    if sslmode:
        kw["sslmode"] = sslmode
    return make_conninfo(**{k: v for k, v in kw.items() if v})


def _redis_url(conn: dict[str, Any]) -> str:
    extra = conn.get("extra") or {}
    auth = f":{quote(conn['password'], safe='')}@" if conn.get("password") else ""
    scheme = "rediss" if str(extra.get("ssl", "")).lower() in ("true", "1") else "redis"
    db = extra.get("db", conn.get("schema") or 0) or 0
    return f"{scheme}://{auth}{conn.get('host') or 'localhost'}:{conn.get('port') or 6379}/{db}"


def _mongo_uri(conn: dict[str, Any]) -> str:
    extra = conn.get("extra") or {}
    auth = ""
    if conn.get("login"):
        auth = f"{quote(conn['login'], safe='')}:{quote(conn.get('password') or '', safe='')}@"
    host = conn.get("host") or "localhost"
    if str(extra.get("srv", "")).lower() in ("true", "1"):
        return f"mongodb+srv://{auth}{host}/"
    return f"mongodb://{auth}{host}:{conn.get('port') or 27017}/"


def resolve_env(args: argparse.Namespace) -> CliEnv:
    """Flags first, then the AIRFLOW_CONN_* / MIDAZ_MONGO_* environment the checks use."""
    def pick(flag: str | None, conn_id: str, build: Any, what: str) -> str:
        if flag:
            return flag
        conn = _airflow_conn(conn_id)
        if conn is None:
            raise SystemExit(f"no {what}: pass --{what} or set AIRFLOW_CONN_{conn_id.upper()}")
        return str(build(conn))

    dbs = config.mongo_databases()
    return CliEnv(
        revision=args.revision,
        onboarding_conninfo=pick(args.conninfo_onboarding, config.CONN_ONBOARDING, _pg_conninfo, "conninfo-onboarding"),
        transaction_conninfo=pick(args.conninfo_transaction, config.CONN_TRANSACTION, _pg_conninfo,
                                  "conninfo-transaction"),
        redis_url=pick(args.redis_url, config.CONN_REDIS, _redis_url, "redis-url"),
        mongo_uri=pick(args.mongo_uri, config.CONN_MONGO, _mongo_uri, "mongo-uri"),
        mongo_onboarding_db=(args.mongo_onboarding_db or dbs["onboarding"]).lower(),
        mongo_transaction_db=(args.mongo_transaction_db or dbs["transaction"]).lower(),
    )


def _store_flags(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--revision", choices=["r1", "r2"], required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--now", help="ISO time the history ends at (default: now)")
    ap.add_argument("--faults", default="none", help="'all', 'none' or comma-separated fault names")
    ap.add_argument("--manifest", default="manifest.json", help="where to write the fault manifest (JSON)")
    ap.add_argument("--conninfo-onboarding")
    ap.add_argument("--conninfo-transaction")
    ap.add_argument("--redis-url")
    ap.add_argument("--mongo-uri")
    ap.add_argument("--mongo-onboarding-db")
    ap.add_argument("--mongo-transaction-db")


def _faults(spec: str) -> list[str] | str | None:
    spec = spec.strip()
    if spec in ("", "none"):
        return None
    if spec == "all":
        return "all"
    return [f.strip() for f in spec.split(",") if f.strip()]


def _inject(env: CliEnv, args: argparse.Namespace, now: datetime) -> dict[str, Any] | None:
    from reconciliation.demo.faults import inject

    faults = _faults(args.faults)
    if faults is None:
        return None
    manifest = inject(env, faults=faults, seed=args.seed, now=now)
    path = manifest.save(args.manifest).resolve()
    skipped = {n: d["skipped"] for n, d in manifest.faults.items() if not d.get("injected")}
    return {"manifest": str(path), "entries": len(manifest.entries), "per_check": manifest.summary(),
            "skipped": skipped, "settings": manifest.settings}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reconciliation.demo", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    seed = sub.add_parser("seed", help="generate a ledger (then inject --faults) into empty Midaz stores")
    _store_flags(seed)
    seed.add_argument("--operations", type=int, default=100_000)
    seed.add_argument("--days", type=int, default=3)
    seed.add_argument("--no-inflight", action="store_true", help="leave out the legitimate in-flight slice")
    seed.add_argument("--apply-schema", action="store_true",
                      help="create the Midaz tables of --revision in the two (empty) databases first")
    inj = sub.add_parser("inject", help="inject --faults into an already generated ledger")
    _store_flags(inj)
    sub.add_parser("faults", help="list the fault registry")
    args = ap.parse_args(argv)

    if args.cmd == "faults":
        from reconciliation.demo.faults import FAULTS

        for name, fault in FAULTS.items():
            in_all = [r for r in fault.revisions if r in fault.in_all]
            flags = ",".join(fault.revisions) + ("" if in_all == list(fault.revisions) else
                                                 f" (in 'all': {','.join(in_all) or 'opt-in'})")
            print(f"{name:38s} {flags:28s} {fault.doc}")
        return 0

    env = resolve_env(args)
    now = datetime.fromisoformat(args.now).astimezone(UTC) if args.now else datetime.now(UTC)
    out: dict[str, Any] = {}
    if args.cmd == "seed":
        from reconciliation.demo.generator import generate

        if args.apply_schema:
            from reconciliation.demo.schema import apply_schema

            apply_schema(env.onboarding_conninfo, env.transaction_conninfo, env.revision)
        out["ledger"] = generate(env, operations=args.operations, seed=args.seed, days=args.days, now=now,
                                 inflight=not args.no_inflight)
    faults = _inject(env, args, now)
    if faults:
        out["faults"] = faults
    json.dump(out, sys.stdout, indent=2, default=str)
    print()
    if faults:
        print(f"manifest: {faults['manifest']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
