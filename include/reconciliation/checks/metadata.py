"""Check 6.7: MongoDB metadata consistency — orphans, duplicates and document shape (reference §3, §6.7).

Midaz keeps only the optional, flat `metadata` of its entities in MongoDB, one collection per entity type in
the `onboarding` and `transaction` databases (stores/mongo.py COLLECTIONS). For every collection:

1. **Orphans.** Every document's `entity_id` must be a UUID (else `metadata_invalid_entity_id`) naming a row
   of the matching PostgreSQL table (else `metadata_orphan`): PostgreSQL is always written before Mongo
   (§3.3). The rows are looked up in batches of ~5,000 ids (one primary-key probe per id) inside ONE read-only
   REPEATABLE READ snapshot per PostgreSQL database. A soft-deleted row is informational
   (`metadata_entity_soft_deleted`, not counted: Midaz keeps metadata on soft delete). A document younger
   than the soft grace (created_at or updated_at >= now - grace) whose row is missing is *in flight* (the
   moment between the two writes, or replica lag): counted in `in_flight`, never reported.
2. **Duplicates.** More than one document per `entity_id` (a `$group`/`$match` aggregation, spilled to disk
   on a real MongoDB): a warning at R1, where InsertOne plus a redelivered message writes them (§3.3), an
   error at R2, whose writes are idempotent upserts.
3. **Shape.** `entity_name` is the collection's Go type name (a document without `entity_name` or without
   `created_at` was created by an Update upsert: `metadata_upsert_created`, informational, not counted);
   `metadata` is an object with only scalar values, keys of at most 100 characters and string values of at
   most 2,000 characters; `created_at <= updated_at`. Shape findings do not depend on age: a malformed
   document never becomes well-formed.

Unknown collections are not judged; they are listed in the metrics (`unknown_collections`), as are the empty,
wrongly named collections Midaz's EnsureIndexes creates (`account_type`, `operation_route`,
`transaction_route`, §3.4), which are ignored.

**Window.** Mongo ids are ObjectIds, not UUIDv7, so the window is the documents' own write times: window
scope judges the documents whose `created_at` or `updated_at` lies in [start, end) (a document updated in
the window is judged again); full scope judges every document. Neither field is indexed on any Midaz
metadata collection — Midaz indexes only `entity_id`, and not even that on `accounttype`, `operationroute`
and `transactionroute` (EnsureIndexes uses wrong names, §3.4) or `assetrate` (not in its list) — so the
server evaluates the window predicate with a collection scan; only the matching documents travel. Duplicates in window scope: entities with at least one document in the window, all of
their documents counted (the grouping scans the whole collection on the server). A document without
either timestamp is only judged by a full-scope run.

**Judging.** Python computes per-document facts (uuid ok, row live/soft-deleted/missing/in flight, shape
flags); the GE suite of expectations/metadata.py decides, and its unexpected indices map back to documents.

**Cost.** Batch cursors (5,000 documents) with a projection of the five judged fields; one PostgreSQL
lookup per batch; the GE suite runs once per frame of 50,000 documents; memory is bounded by one frame,
whatever the collection size. Counts are per document (two orphan copies of one entity count twice),
duplicates per entity.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql
from pymongo.errors import PyMongoError

from reconciliation import config
from reconciliation.catalog import BY_KIND
from reconciliation.checks.base import CheckContext, make_violation
from reconciliation.expectations import metadata as spec
from reconciliation.result import CheckResult, Violation
from reconciliation.sanitize import describe_error
from reconciliation.stores.mongo import COLLECTIONS, IGNORED_COLLECTIONS, MetadataCollection, hook_client
from reconciliation.stores.postgres import columns, read_only

CHECK = "metadata"
MONGO_BATCH = 5_000  # documents per cursor batch (getMore)
LOOKUP_BATCH = 5_000  # entity ids per PostgreSQL lookup
FRAME_ROWS = 50_000  # documents per GE validation (mostly a fixed ~0.5 s, so frames are large)
INFO_SAMPLES = 100  # informational samples kept per run (they never displace counted findings)
MAX_KEY_CHARS = 100  # reference §3.2: keymax=100
MAX_VALUE_CHARS = 2_000  # reference §3.2: valuemax=2000
EVIDENCE_ITEMS = 5  # offending keys listed per finding

PROJECTION = {"entity_id": 1, "entity_name": 1, "metadata": 1, "created_at": 1, "updated_at": 1}
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class MetadataStoreError(RuntimeError):
    """MongoDB or PostgreSQL failed (down, timeout, refused): retried by Airflow; the message is sanitised."""


# ------------------------------------------------------------------------------------------ per-document facts


def parse_entity_id(value: Any) -> str | None:
    """The canonical (lower-case, hyphenated) UUID text of a stored entity_id, or None when it is not one.

    Midaz stores `uuid.String()` text; anything else (another type, braces, no hyphens, junk) names no row
    the way Midaz looks it up, so only the 8-4-4-4-12 hex text is accepted (upper-case hex is still a UUID)."""
    if isinstance(value, str) and UUID_TEXT.fullmatch(value):
        return value if value.islower() or value.isdigit() else value.lower()
    return None


def entity_text(value: Any) -> str:
    """entity_id as stored, as text for the entity string ("" when missing or null)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return str(value)


def as_utc(value: Any) -> datetime | None:
    """A BSON date as an aware UTC datetime (pymongo returns naive UTC by default); None for anything else."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def naive_utc(value: Any) -> datetime | None:
    """A BSON date as a naive UTC datetime (the cheap form for comparisons); None for anything else."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


@dataclass(slots=True)
class DocFacts:
    """What the suite judges about one document, plus what a finding needs to name and explain it."""

    entity: str
    stored_id: str
    document_id: str
    uuid: str | None
    young: bool
    entity_id_valid: bool
    row: str
    entity_name: str
    origin: str
    metadata_type: str
    nested_value: bool
    key_too_long: bool
    value_too_long: bool
    timestamps_inverted: bool
    evidence: dict[str, dict[str, Any]] | None


def shape_facts(doc: dict[str, Any], expected_name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Shape facts of one document (reference §3.2, §3.3) and the evidence of each broken rule.

    Hot path (a million documents): no allocation beyond the facts unless a rule is broken."""
    evidence: dict[str, dict[str, Any]] = {}
    name = doc.get("entity_name")
    if name is None:
        name_fact = spec.NAME_MISSING
    elif name == expected_name:
        name_fact = spec.NAME_EXPECTED
    else:
        name_fact = spec.NAME_OTHER
        evidence["metadata_entity_name_mismatch"] = {"expected": expected_name, "actual": entity_text(name)[:200]}
    created_raw = doc.get("created_at")
    upsert = name is None or created_raw is None
    if upsert:
        evidence["metadata_upsert_created"] = {
            "missing_fields": [f for f, v in (("entity_name", name), ("created_at", created_raw)) if v is None]
        }

    meta = doc.get("metadata")
    nested: list[str] | None = None
    long_keys: list[str] | None = None
    long_values: list[dict[str, Any]] | None = None
    if isinstance(meta, dict):
        metadata_type = spec.METADATA_OBJECT
        for key, value in meta.items():
            if isinstance(value, (dict, list)):
                (nested := nested or []).append(str(key)[:MAX_KEY_CHARS])
            elif isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
                (long_values := long_values or []).append({"key": str(key)[:MAX_KEY_CHARS], "chars": len(value)})
            if len(key) > MAX_KEY_CHARS:
                (long_keys := long_keys or []).append(str(key))
    else:
        metadata_type = spec.METADATA_OTHER
        evidence["metadata_not_object"] = {"metadata_type": "missing" if meta is None else type(meta).__name__}
    if nested:
        evidence["metadata_nested_value"] = {"keys": nested[:EVIDENCE_ITEMS], "count": len(nested)}
    if long_keys:
        evidence["metadata_key_too_long"] = {
            "keys": [k[:MAX_KEY_CHARS] + "..." for k in long_keys[:EVIDENCE_ITEMS]],
            "key_chars": [len(k) for k in long_keys[:EVIDENCE_ITEMS]],
            "count": len(long_keys),
            "max_chars": MAX_KEY_CHARS,
        }
    if long_values:
        evidence["metadata_value_too_long"] = {
            "values": long_values[:EVIDENCE_ITEMS], "count": len(long_values), "max_chars": MAX_VALUE_CHARS,
        }

    created, updated = naive_utc(created_raw), naive_utc(doc.get("updated_at"))
    inverted = created is not None and updated is not None and created > updated
    if inverted:
        evidence["metadata_timestamps_inverted"] = {"created_at": as_utc(created), "updated_at": as_utc(updated)}
    facts = {
        "entity_name": name_fact,
        "origin": spec.ORIGIN_UPSERT if upsert else spec.ORIGIN_CREATE,
        "metadata_type": metadata_type,
        "nested_value": nested is not None,
        "key_too_long": long_keys is not None,
        "value_too_long": long_values is not None,
        "timestamps_inverted": inverted,
    }
    return facts, evidence


def classify(doc: dict[str, Any], coll: MetadataCollection, coll_key: str, settled_before: datetime) -> DocFacts:
    """Facts of one streamed document; `row` is filled in by the PostgreSQL lookup of its batch.

    `settled_before` may be aware or naive UTC (the scan passes it naive: cheaper on the hot path)."""
    raw_id = doc.get("entity_id")
    stored = entity_text(raw_id)
    parsed = parse_entity_id(raw_id)
    facts, evidence = shape_facts(doc, coll.entity_name)
    if parsed is None:
        evidence["metadata_invalid_entity_id"] = {
            "entity_id_type": "missing" if raw_id is None else type(raw_id).__name__
        }
    settled = naive_utc(settled_before)
    created, updated = naive_utc(doc.get("created_at")), naive_utc(doc.get("updated_at"))
    young = (created is not None and created >= settled) or (updated is not None and updated >= settled)
    return DocFacts(
        f"{coll_key}/{stored}",
        stored,
        str(doc.get("_id")),
        parsed,
        young,
        parsed is not None,
        spec.ROW_NOT_LOOKED_UP,
        facts["entity_name"],
        facts["origin"],
        facts["metadata_type"],
        facts["nested_value"],
        facts["key_too_long"],
        facts["value_too_long"],
        facts["timestamps_inverted"],
        evidence or None,
    )


# ---------------------------------------------------------------------------------------------- the scan


def window_filter(ctx: CheckContext) -> dict[str, Any]:
    """Mongo filter of the documents in scope: everything, or those written (created/updated) in the window."""
    if ctx.window.is_full:
        return {}
    rng = {"$gte": ctx.window.start, "$lt": ctx.window.end}
    return {"$or": [{"created_at": rng}, {"updated_at": rng}]}


def duplicate_pipeline(ctx: CheckContext) -> list[dict[str, Any]]:
    """entity_ids with more than one document (window scope: and at least one document in the window)."""
    group: dict[str, Any] = {"_id": "$entity_id", "n": {"$sum": 1}}
    match: dict[str, Any] = {"n": {"$gt": 1}}
    if not ctx.window.is_full:
        start, end = ctx.window.start, ctx.window.end

        def inside(field: str) -> dict[str, Any]:
            return {"$and": [{"$gte": [field, start]}, {"$lt": [field, end]}]}

        group["w"] = {"$sum": {"$cond": [{"$or": [inside("$created_at"), inside("$updated_at")]}, 1, 0]}}
        match["w"] = {"$gt": 0}
    return [{"$group": group}, {"$match": match}]


class _MetadataRun:
    """One run of the check: streams every collection, feeds the GE suites, collects findings."""

    def __init__(self, ctx: CheckContext, result: CheckResult) -> None:
        self.ctx = ctx
        self.result = result
        self.settled_before = naive_utc(ctx.window.settled_before)
        self.filter = window_filter(ctx)
        self.duplicate_severity = "error" if ctx.revision == "r2" else "warning"
        self.doc_suite = spec.build_document_suite()
        self.dup_suite = spec.build_duplicate_suite()
        self.info_samples: list[Violation] = []
        self.info_counts: Counter[str] = Counter()
        self.collections: dict[str, dict[str, Any]] = {}
        self.existing: set[tuple[str, str]] = set()  # (real database, collection) that exist

    # ---- findings ----
    def emit(self, kind: str, entity: str, *, severity: str | None = None, **fields: Any) -> None:
        severity = severity or BY_KIND[kind].severity
        if severity == "info":  # never counted; kept only while there is room (see finish)
            self.info_counts[kind] += 1
            if len(self.info_samples) < INFO_SAMPLES:
                self.info_samples.append(make_violation(CHECK, kind, entity, severity=severity, **fields))
            return
        if len(self.result.samples) < self.result.max_samples:
            self.result.add(make_violation(CHECK, kind, entity, severity=severity, **fields))
            return
        # samples are full: count exactly without building evidence (a million orphans stay cheap)
        if severity == "error":
            self.result.violations += 1
        else:
            self.result.warnings += 1
        self.result.truncated = True

    def finish(self) -> None:
        room = max(0, self.result.max_samples - len(self.result.samples))
        self.result.samples.extend(self.info_samples[:room])
        self.result.metrics["info"] = dict(self.info_counts)
        self.result.metrics["collections"] = self.collections

    # ---- stores ----
    def scan(self) -> None:
        names = config.mongo_databases()
        client = hook_client(self.ctx.mongo_conn_id)
        try:
            self.census(client, names)
            by_db: dict[str, list[MetadataCollection]] = defaultdict(list)
            for coll in COLLECTIONS:
                by_db[coll.database].append(coll)
            for logical, colls in by_db.items():
                mdb = client[names[logical]]
                with read_only(self.ctx.conn_id(logical)) as conn:  # one snapshot per PostgreSQL database
                    table_columns = columns(conn)
                    for coll in colls:
                        self.scan_collection(mdb, names[logical], coll, conn, table_columns)
        finally:
            client.close()

    def census(self, client: Any, names: dict[str, str]) -> None:
        """List unknown collections (not judged) and the ignored wrongly named ones, with their sizes."""
        known = {(names[c.database], c.collection) for c in COLLECTIONS}
        ignored = {(names[db], coll) for db, coll in IGNORED_COLLECTIONS}
        unknown: dict[str, int] = {}
        ignored_seen: dict[str, int] = {}
        for real in sorted(set(names.values())):
            for coll in sorted(client[real].list_collection_names()):
                if coll.startswith("system."):
                    continue
                self.existing.add((real, coll))
                key = f"{real}.{coll}"
                if (real, coll) in ignored:
                    ignored_seen[key] = client[real][coll].estimated_document_count()
                elif (real, coll) not in known:
                    unknown[key] = client[real][coll].estimated_document_count()
        self.result.metrics["unknown_collections"] = unknown
        self.result.metrics["ignored_collections"] = ignored_seen

    def scan_collection(self, mdb: Any, real_db: str, coll: MetadataCollection, conn: Any, cols: set[str]) -> None:
        t0 = time.monotonic()
        key = f"{real_db}.{coll.collection}"
        if (real_db, coll.collection) not in self.existing:  # never written: nothing to judge (and no probing)
            self.collections[key] = {"documents": 0, "exists": False}
            return
        if f"{coll.table}.id" not in cols:
            raise RuntimeError(f"PostgreSQL table {coll.table!r} of {key} does not exist (schema revision?)")
        lookup_sql = self.lookup_sql(coll.table, f"{coll.table}.deleted_at" in cols)
        mcoll = mdb[coll.collection]
        stats: dict[str, Any] = {"documents": 0, "rows_found": 0, "in_flight": 0, "lookups": 0,
                                 "entity_id_index": self.has_entity_id_index(mcoll)}
        batch: list[DocFacts] = []
        frame: list[DocFacts] = []
        cursor = mcoll.find(self.filter, PROJECTION, batch_size=MONGO_BATCH)
        try:
            for doc in cursor:
                batch.append(classify(doc, coll, key, self.settled_before))
                if len(batch) >= LOOKUP_BATCH:
                    self.lookup(conn, lookup_sql, batch, stats)
                    frame.extend(batch)
                    batch = []
                    if len(frame) >= FRAME_ROWS:
                        self.judge(frame, key, coll, stats)
                        frame = []
        finally:
            cursor.close()
        if batch:
            self.lookup(conn, lookup_sql, batch, stats)
            frame.extend(batch)
        if frame:
            self.judge(frame, key, coll, stats)
        stats["duplicated_entities"] = self.duplicates(mcoll, key)
        stats["seconds"] = round(time.monotonic() - t0, 3)
        self.collections[key] = stats

    @staticmethod
    def has_entity_id_index(mcoll: Any) -> bool:
        """Whether an index leads with entity_id (the wrongly named collections have none, §3.4)."""
        for index in mcoll.list_indexes():
            keys = list((index.get("key") or {}).keys())
            if keys and keys[0] == "entity_id":
                return True
        return False

    @staticmethod
    def lookup_sql(table: str, has_deleted_at: bool) -> sql.Composed:
        """Which of a batch of ids have a row, and is it soft-deleted (asset_rate has no deleted_at).

        The reference's `WHERE id = ANY(%s::uuid[])`, written as a join with the unnested batch: with 5,000
        ids PostgreSQL 15 may plan `= ANY` as a (parallel) scan of the whole table per batch (measured on 1M
        rows: 190 ms), while the join is a primary-key probe per id, whatever the table size."""
        deleted = sql.SQL("t.deleted_at IS NOT NULL") if has_deleted_at else sql.SQL("FALSE")
        return sql.SQL(
            "SELECT t.id::text, {} FROM unnest(%s::uuid[]) AS u(id) JOIN {} AS t ON t.id = u.id"
        ).format(deleted, sql.Identifier(table))

    def lookup(self, conn: Any, query: Any, batch: list[DocFacts], stats: dict[str, Any]) -> None:
        """One round trip per batch: which entity ids have a row, and is it soft-deleted."""
        ids = sorted({f.uuid for f in batch if f.uuid is not None})
        rows: dict[str, bool] = {}
        if ids:
            with conn.cursor() as cur:
                cur.execute(query, (ids,))
                rows = {str(r[0]): bool(r[1]) for r in cur.fetchall()}
            stats["lookups"] += 1
        for f in batch:
            if f.uuid is None:
                continue
            deleted = rows.get(f.uuid)
            if deleted is None:
                f.row = spec.ROW_IN_FLIGHT if f.young else spec.ROW_MISSING
            else:
                f.row = spec.ROW_SOFT_DELETED if deleted else spec.ROW_LIVE
                stats["rows_found"] += 1

    def judge(self, frame: list[DocFacts], key: str, coll: MetadataCollection, stats: dict[str, Any]) -> None:
        """Validate one frame of facts with the document suite; unexpected rows become findings."""
        df = pd.DataFrame({c: [getattr(f, c) for f in frame] for c in spec.DOCUMENT_COLUMNS})
        unexpected = self.doc_suite.validate(df)
        in_flight = sum(1 for f in frame if f.row == spec.ROW_IN_FLIGHT)
        stats["documents"] += len(frame)
        stats["in_flight"] += in_flight
        self.result.in_flight += in_flight
        for inv in spec.DOCUMENT_INVARIANTS:
            for idx in unexpected.get(inv.kind, []):
                f = frame[int(idx)]
                details: dict[str, Any] = dict((f.evidence or {}).get(inv.kind, {}))
                if inv.kind in ("metadata_orphan", "metadata_entity_soft_deleted"):
                    details["table"] = coll.table
                self.emit(inv.kind, f.entity, collection=key, entity_id=f.stored_id, document_id=f.document_id,
                          **details)

    def duplicates(self, mcoll: Any, key: str) -> int:
        """Stream the duplicated entity ids (bounded batches) through the duplicate suite."""
        found = 0
        groups: list[tuple[str, int, int | None]] = []
        cursor = mcoll.aggregate(duplicate_pipeline(self.ctx), allowDiskUse=True, batchSize=MONGO_BATCH)
        try:
            for group in cursor:
                if group.get("_id") is None:  # no entity_id at all: reported as invalid ids, no entity to name
                    continue
                groups.append((entity_text(group["_id"]), int(group["n"]), group.get("w")))
                if len(groups) >= FRAME_ROWS:
                    found += self.judge_duplicates(groups, key)
                    groups = []
        finally:
            cursor.close()
        if groups:
            found += self.judge_duplicates(groups, key)
        return found

    def judge_duplicates(self, groups: list[tuple[str, int, int | None]], key: str) -> int:
        df = pd.DataFrame({spec.DUPLICATE_COLUMN: [n for _, n, _ in groups]})
        unexpected = self.dup_suite.validate(df).get(spec.DUPLICATE_KIND, [])
        for idx in unexpected:
            stored, n, in_window = groups[int(idx)]
            extra = {} if in_window is None else {"documents_in_window": int(in_window)}
            self.emit(spec.DUPLICATE_KIND, f"{key}/{stored}", severity=self.duplicate_severity, collection=key,
                      entity_id=stored, documents=n, **extra)
        return len(unexpected)


def run(ctx: CheckContext) -> CheckResult:
    """Judge every metadata collection of both Mongo databases against PostgreSQL (see the module docstring)."""
    result = ctx.new_result(CHECK)
    t0 = time.monotonic()
    scan = _MetadataRun(ctx, result)
    try:
        scan.scan()
    except (PyMongoError, psycopg.Error) as exc:
        raise MetadataStoreError(describe_error(exc)) from None
    scan.finish()
    result.metrics["seconds"] = round(time.monotonic() - t0, 3)
    return result.finish()
