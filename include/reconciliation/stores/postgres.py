"""Read-only PostgreSQL access through Airflow's PostgresHook (DESIGN §4: READ ONLY, statement_timeout,
REPEATABLE READ when several queries must agree; nothing is ever written to a Midaz store)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reconciliation.config import statement_timeout_seconds

if TYPE_CHECKING:
    import psycopg

SQL_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)\b")


def hook(conn_id: str) -> Any:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=conn_id)


@contextmanager
def read_only(conn_id: str, *, repeatable: bool = True) -> Iterator[psycopg.Connection]:
    """One READ ONLY (REPEATABLE READ) transaction on a fresh connection; always rolled back."""
    import psycopg

    conn = hook(conn_id).get_conn()
    try:
        conn.autocommit = False
        conn.read_only = True
        conn.isolation_level = (
            psycopg.IsolationLevel.REPEATABLE_READ if repeatable else psycopg.IsolationLevel.READ_COMMITTED
        )
        with conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = '{int(statement_timeout_seconds())}s'")
        yield conn
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


def read_only_uri(conn_id: str) -> str:
    """SQLAlchemy URI for Great Expectations whose sessions are read-only and time-limited."""
    uri = hook(conn_id).get_uri()
    opts = f"-c default_transaction_read_only=on -c statement_timeout={int(statement_timeout_seconds())}s"
    sep = "&" if "?" in uri else "?"
    return f"{uri}{sep}options={quote(opts)}"


def literal(value: Any) -> str:
    """Render a trusted parameter (window bounds, ids we built, ints) as an SQL literal.

    Great Expectations' query expectations take no bind parameters, so values are inlined; only the
    types below are accepted, and strings are quoted with doubled single quotes."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:f}::numeric"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, timedelta):
        return f"'{value.total_seconds()} seconds'::interval"
    if isinstance(value, (list, tuple)):
        return "ARRAY[" + ",".join(literal(v) for v in value) + "]"
    text = str(value).replace("'", "''")
    return f"'{text}'"


def render(sql: str, params: dict[str, Any]) -> str:
    """Replace `:name` placeholders (never `::casts`) with literals; unknown names are an error."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in params:
            raise KeyError(f"SQL parameter :{name} has no value")
        return literal(params[name])

    return SQL_PARAM.sub(sub, sql)


def scalar(conn: psycopg.Connection, sql: str, params: dict[str, Any] | None = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(render(sql, params or {}))
        row = cur.fetchone()
    return row[0] if row else None


def stream(
    conn: psycopg.Connection, sql: str, params: dict[str, Any] | None = None, *, batch: int = 10_000
) -> Iterator[list[tuple]]:
    """Rows in chunks through a server-side cursor: bounded memory for big extracts."""
    with conn.cursor(name="recon_stream") as cur:
        cur.itersize = batch
        cur.execute(render(sql, params or {}))
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                break
            yield rows


def columns(conn: psycopg.Connection) -> set[str]:
    """Every `table.column` of the public schema: lets checks adapt to the columns a revision has."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'public'"
        )
        return {r[0] for r in cur.fetchall()}
