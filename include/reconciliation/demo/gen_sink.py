"""Bulk writers for the generator: PostgreSQL COPY (text format) and Mongo insert_many, run on a background
thread so that simulating the next chunk overlaps with loading the previous one (2 cores: Python + server).
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import psycopg
from pymongo import MongoClient

Chunk = tuple[str, list[str], list[tuple[str, str, list[dict[str, Any]]]]]


def copy_lines(conn: psycopg.Connection, table: str, columns: tuple[str, ...], lines: list[str]) -> None:
    """COPY pre-encoded text lines into `table` (one round of the COPY protocol, large writes)."""
    if not lines:
        return
    cols = ", ".join(f'"{c}"' if c in ("from", "to") else c for c in columns)
    name = '"transaction"' if table == "transaction" else table
    with conn.cursor() as cur, cur.copy(f"COPY {name} ({cols}) FROM STDIN") as cp:
        step = 20000
        for i in range(0, len(lines), step):
            cp.write("".join(lines[i:i + step]))


def try_skip_fk_triggers(conn: psycopg.Connection) -> bool:
    """Bulk-load speed-up: skip FK trigger checks for this session when we are superuser (data is FK-clean by
    construction). Returns whether it took effect; without privilege the load simply checks FKs."""
    try:
        conn.execute("SET session_replication_role = replica")
        return True
    except psycopg.Error:
        conn.rollback()
        return False


class BackgroundLoader:
    """Consumes chunks of (table, columns, lines) and Mongo batches on one thread, in order. The generator runs
    one loader for PostgreSQL and one for Mongo, so that both servers work while Python simulates."""

    def __init__(self, conninfo: str | None, mongo_uri: str | None, mongo_db: str | None, skip_fk: bool = True) -> None:
        self.conninfo = conninfo
        self.mongo_uri = mongo_uri
        self.mongo_db = mongo_db
        self.skip_fk = skip_fk
        self.q: queue.Queue[Any] = queue.Queue(maxsize=3)
        self.error: BaseException | None = None
        self.fk_skipped = False
        self.thread = threading.Thread(target=self._run, name="midaz-demo-loader", daemon=True)
        self.thread.start()

    def put(self, pg: list[tuple[str, tuple[str, ...], list[str]]], mongo: list[tuple[str, list[dict[str, Any]]]]) -> None:
        if self.error:
            raise RuntimeError("demo loader failed") from self.error
        self.q.put((pg, mongo))

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error:
            raise RuntimeError("demo loader failed") from self.error

    def _run(self) -> None:
        conn = None
        client = None
        try:
            if self.conninfo:
                conn = psycopg.connect(self.conninfo)
                if self.skip_fk:
                    self.fk_skipped = try_skip_fk_triggers(conn)
            client = MongoClient(self.mongo_uri) if self.mongo_uri else None
            while True:
                item = self.q.get()
                if item is None:
                    break
                if self.error:
                    continue
                pg, mongo = item
                if conn is not None:
                    for table, columns, lines in pg:
                        copy_lines(conn, table, columns, lines)
                    conn.commit()
                if client is not None and self.mongo_db:
                    db = client[self.mongo_db]
                    for coll, docs in mongo:
                        for i in range(0, len(docs), 5000):
                            db[coll].insert_many(docs[i:i + 5000], ordered=False)
        except BaseException as exc:  # surfaced to the producer on the next put/close
            self.error = exc
            while True:  # drain so the producer never blocks
                try:
                    if self.q.get(timeout=0.1) is None:
                        break
                except queue.Empty:
                    continue
        finally:
            if conn is not None:
                conn.close()
            if client is not None:
                client.close()
