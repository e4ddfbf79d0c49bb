"""Midaz PostgreSQL schemas (R1 = Midaz v3, R2 = Midaz v4) for the demo and the tests.

The DDL in ``ddl/<revision>/<database>.sql`` reproduces the public schema that Midaz's migrations leave
behind (reference §2.3), so that the checks run against the same columns, indexes and constraints as
in production, including the ``schema_migrations`` row that revision detection reads.
"""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REVISIONS = ("r1", "r2")
DATABASES = ("onboarding", "transaction")
# schema_migrations.version after all migrations of each revision (reference §2.0).
MIGRATION_VERSIONS = {
    ("r1", "onboarding"): 7,
    ("r1", "transaction"): 15,
    ("r2", "onboarding"): 19,
    ("r2", "transaction"): 35,
}


def ddl(revision: str, database: str) -> str:
    """The DDL of one Midaz database at one revision ('r1'|'r2', 'onboarding'|'transaction')."""
    revision = revision.lower()
    if revision not in REVISIONS:
        raise ValueError(f"revision must be one of {REVISIONS}, not {revision!r}")
    if database not in DATABASES:
        raise ValueError(f"database must be one of {DATABASES}, not {database!r}")
    return resources.files("reconciliation.demo").joinpath("ddl", revision, f"{database}.sql").read_text("utf-8")


def _apply(conninfo: str, revision: str, database: str) -> None:
    with psycopg.connect(conninfo, autocommit=False) as conn:
        existing = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        if existing and existing[0]:
            dbname = conn.info.dbname
            raise RuntimeError(f"database {dbname!r} already has {existing[0]} public tables; use a fresh database")
        conn.execute(ddl(revision, database).encode())  # several statements, one transaction


def apply_schema(onboarding_conninfo: str, transaction_conninfo: str, revision: str) -> None:
    """Create the Midaz tables of `revision` in two existing, empty databases (each in one transaction)."""
    _apply(onboarding_conninfo, revision, "onboarding")
    _apply(transaction_conninfo, revision, "transaction")


def conninfo_for(admin_conninfo: str, dbname: str) -> str:
    """The admin conninfo pointed at another database (same host, port, user, password)."""
    return make_conninfo(admin_conninfo, dbname=dbname)


def create_databases(admin_conninfo: str, onboarding_db: str, transaction_db: str, drop: bool = True) -> None:
    """Create the two (empty) Midaz databases through an admin connection; drop them first when asked."""
    params = conninfo_to_dict(admin_conninfo)
    if params.get("dbname") in (onboarding_db, transaction_db):
        params["dbname"] = "postgres"
    with psycopg.connect(make_conninfo(**params), autocommit=True) as conn:
        for name in (onboarding_db, transaction_db):
            ident = sql.Identifier(name)
            if drop:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def schema_listing(conninfo: str) -> list[str]:
    """The public schema in the line format of reference §2.3 (columns, then indexes, then constraints).

    Lets tests (and operators checking a real replica) diff a database against the reference listing.
    """
    with psycopg.connect(conninfo) as conn:
        cols = conn.execute(
            """
            SELECT c.table_name, c.column_name, c.udt_name, c.character_maximum_length, c.is_nullable,
                   c.column_default
            FROM information_schema.columns c
            JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
            ORDER BY c.table_name COLLATE "C", c.ordinal_position
            """
        ).fetchall()
        idx = conn.execute(
            """
            SELECT t.relname, i.relname, x.indisunique
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public'
            ORDER BY t.relname COLLATE "C", i.relname COLLATE "C"
            """
        ).fetchall()
        cons = conn.execute(
            """
            SELECT t.relname, c.conname, c.contype
            FROM pg_constraint c
            JOIN pg_class t ON t.oid = c.conrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public'
            ORDER BY t.relname COLLATE "C", c.conname COLLATE "C"
            """
        ).fetchall()
    lines = []
    for table, column, udt, maxlen, nullable, default in cols:
        typ = f"{udt}({maxlen})" if maxlen is not None else udt
        lines.append(f"{table}.{column} {typ} {nullable} {default if default is not None else '-'}")
    for kind, rows in (("index", [(t, n + (" UNIQUE" if u else "")) for t, n, u in idx]),
                       ("constraint", [(t, f"{n} {ct}") for t, n, ct in cons])):  # fmt: skip
        grouped: dict[str, list[str]] = {}
        for table, item in rows:
            grouped.setdefault(table, []).append(item)
        lines += [f"{kind} {table}: {', '.join(items)}" for table, items in sorted(grouped.items())]
    return lines
