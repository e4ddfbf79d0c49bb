"""Launcher for the nx-27017 MongoDB wire server with SQLite-keyword collection names made safe.

nx-27017 (over neosqlite) uses a collection's name as its SQLite table name, unquoted, so Midaz's own
``transaction`` collection fails with ``near "transaction": syntax error``. This module patches the
name mapping inside the server process: a collection whose name is an SQLite keyword lives in the
table ``nxkw__<name>``, while clients keep seeing (and using) the real name. Run it as

    python -m reconciliation.demo.mongo_wire --port 27017 [--host 127.0.0.1] [--data-dir memory]
        [--port-file FILE] [--log-file FILE]

``--port 0`` binds a free port; the bound port is written to ``--port-file`` (and printed as
``NX27017_READY <host> <port>``) once the server accepts connections. SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import pkgutil
import signal
import sys
from typing import Any

INTERNAL_PREFIX = "nxkw__"

# SQLite's keywords (https://www.sqlite.org/lang_keywords.html); some would parse as bare identifiers,
# but mapping all of them is simpler than tracking SQLite's fallback rules.
SQLITE_KEYWORDS = frozenset(
    """
    ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN BETWEEN BY
    CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE
    CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED DELETE DESC DETACH DISTINCT DO DROP
    EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM
    FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT
    INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING
    NOTNULL NULL NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY
    RAISE RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK
    ROW ROWS SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION
    UNIQUE UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT
    """.split()
)


def to_internal(name: Any) -> Any:
    """Collection name as the client sees it -> SQLite table name."""
    if isinstance(name, str) and name.upper() in SQLITE_KEYWORDS:
        return INTERNAL_PREFIX + name
    return name


def to_client(name: Any) -> Any:
    """SQLite table name -> collection name as the client sees it."""
    if isinstance(name, str) and name.startswith(INTERNAL_PREFIX):
        real = name[len(INTERNAL_PREFIX) :]
        if real.upper() in SQLITE_KEYWORDS:
            return real
    return name


_PATCHED = False


def install_keyword_mapping() -> None:
    """Patch neosqlite so keyword collection names map to safe tables (idempotent, in this process only)."""
    global _PATCHED
    if _PATCHED:
        return
    import neosqlite
    from neosqlite import connection as nconn
    from neosqlite import sql_utils

    # Import every neosqlite module first: several bind quote_table_name at import time.
    for info in pkgutil.walk_packages(neosqlite.__path__, "neosqlite."):
        try:
            importlib.import_module(info.name)
        except Exception:
            continue

    original_quote = sql_utils.quote_table_name

    def quote_table_name(name: str) -> str:
        return original_quote(to_internal(name))

    for mod_name, mod in list(sys.modules.items()):
        if (mod_name == "neosqlite" or mod_name.startswith("neosqlite.")) and (
            getattr(mod, "quote_table_name", None) is original_quote
        ):
            mod.quote_table_name = quote_table_name  # type: ignore[attr-defined]

    from neosqlite.collection import Collection

    orig_coll_rename = Collection.rename

    def coll_rename(self, new_name, *args, **kwargs):
        return orig_coll_rename(self, to_internal(new_name), *args, **kwargs)

    Collection.rename = coll_rename

    conn_cls = nconn.Connection
    orig_getitem = conn_cls.__getitem__
    orig_get = conn_cls.get_collection
    orig_create = conn_cls.create_collection
    orig_drop = conn_cls.drop_collection
    orig_rename = conn_cls.rename_collection
    orig_list_names = conn_cls.list_collection_names
    orig_list = conn_cls.list_collections

    def __getitem__(self, name):
        return orig_getitem(self, to_internal(name))

    def get_collection(self, name, **kwargs):
        return orig_get(self, to_internal(name), **kwargs)

    def create_collection(self, name, **kwargs):
        return orig_create(self, to_internal(name), **kwargs)

    def drop_collection(self, name):
        return orig_drop(self, to_internal(name))

    def rename_collection(self, old_name, new_name):
        return orig_rename(self, to_internal(old_name), to_internal(new_name))

    def list_collection_names(self):
        return [to_client(n) for n in orig_list_names(self)]

    def list_collections(self):
        return [{**c, "name": to_client(c.get("name"))} for c in orig_list(self)]

    conn_cls.__getitem__ = __getitem__
    conn_cls.get_collection = get_collection
    conn_cls.create_collection = create_collection
    conn_cls.drop_collection = drop_collection
    conn_cls.rename_collection = rename_collection
    conn_cls.list_collection_names = list_collection_names
    conn_cls.list_collections = list_collections
    _PATCHED = True


async def serve(host: str, port: int, data_dir: str, port_file: str | None) -> None:
    """Serve the wire protocol until cancelled; announce the bound port once listening."""
    from nx_27017.handler import NeoSQLiteHandler
    from nx_27017.server import handle_client

    handler = NeoSQLiteHandler(":memory:", data_dir=data_dir)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle_client(reader, writer, handler)

    server = await asyncio.start_server(on_client, host, port)
    bound = server.sockets[0].getsockname()[1]
    if port_file:
        tmp = f"{port_file}.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{bound}\n")
        os.replace(tmp, port_file)  # atomic: readers never see a half-written file
    print(f"NX27017_READY {host} {bound}", flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    try:
        handler.close_all()
    except Exception:
        pass


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m reconciliation.demo.mongo_wire")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--data-dir", default="memory", help="'memory' or a directory (one .db file per database)")
    parser.add_argument("--port-file", default=None)
    parser.add_argument("--log-file", default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        filename=args.log_file,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    install_keyword_mapping()
    asyncio.run(serve(args.host, args.port, args.data_dir, args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
