"""Check 6.7 (MongoDB metadata) against real servers: a generated ledger, hand-planted faults of every kind,
window scope, both revisions, chunk boundaries, bounded samples, and the parsing/shape edge cases.

Why hand-planted faults as well as the injector's manifest: each kind of §6.7 (and its boundaries — a key of
exactly 100 characters, a value of exactly 2,000, a document straddling the window) must be proven, not only
the faults the injector happens to plant. The scenario builders are reused by test_metadata_real_mongo.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pymongo import MongoClient

from reconciliation.checks import metadata as meta_check
from reconciliation.checks import run_check
from reconciliation.checks.metadata import (
    MetadataStoreError,
    as_utc,
    classify,
    duplicate_pipeline,
    entity_text,
    parse_entity_id,
    shape_facts,
    window_filter,
)
from reconciliation.demo.faults import available_faults, inject
from reconciliation.demo.gen_model import uuid7
from reconciliation.demo.generator import generate
from reconciliation.demo.manifest import Manifest
from reconciliation.demo.servers import LocalStack, MidazEnv
from reconciliation.expectations import metadata as spec
from reconciliation.stores.mongo import COLLECTIONS
from tests.checks.conftest import check_once, make_context, reported

CHECK = "metadata"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
OPS = 2000
WIN_START = datetime(2026, 2, 28, tzinfo=UTC)  # the planted "in window" day
WIN_END = WIN_START + timedelta(days=1)
IN = WIN_START + timedelta(hours=10)
OUT = WIN_END + timedelta(hours=10)  # the day after: settled, outside the window
YOUNG = NOW - timedelta(minutes=2)  # younger than the 15-minute soft grace


# ------------------------------------------------------------------------------------------ scenario builders


def _doc(entity_id: Any, name: str | None, metadata: Any, created: datetime | None, updated: datetime | None,
         **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"entity_id": entity_id, "metadata": metadata, **extra}
    if name is not None:
        doc["entity_name"] = name
    if created is not None:
        doc["created_at"] = created
    if updated is not None:
        doc["updated_at"] = updated
    return doc


def _free_rows(conninfo: str, table: str, coll: Any, n: int) -> list[str]:
    """Live rows of `table` that have no metadata document yet (so a planted document is the only one)."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            sql.SQL("SELECT id::text FROM {} ORDER BY id LIMIT 5000").format(sql.Identifier(table))
        ).fetchall()
    taken = {d["entity_id"] for d in coll.find({}, {"entity_id": 1})}
    free = [r[0] for r in rows if r[0] not in taken]
    assert len(free) >= n, f"need {n} {table} rows without metadata, have {len(free)}"
    return free[:n]


@dataclass
class Scenario:
    """A generated ledger with planted metadata faults and what the check must report for them."""

    env: MidazEnv
    revision: str
    full: set[tuple[str, str, str]] = field(default_factory=set)  # (check, kind, entity) reported in full scope
    window: set[tuple[str, str, str]] = field(default_factory=set)  # ... in scope [WIN_START, WIN_END)
    info_full: set[tuple[str, str, str]] = field(default_factory=set)
    info_window: set[tuple[str, str, str]] = field(default_factory=set)
    in_flight_full: int = 0
    in_flight_window: int = 0
    straddling_duplicate: str = ""  # one copy in the window, one after it

    def add(self, kind: str, entity: str, *, in_window: bool) -> None:
        item = (CHECK, kind, entity)
        info = spec_severity(kind, self.revision) == "info"
        (self.info_full if info else self.full).add(item)
        if in_window:
            (self.info_window if info else self.window).add(item)


def spec_severity(kind: str, revision: str) -> str:
    from reconciliation.catalog import BY_KIND

    if kind == "metadata_duplicate":
        return "error" if revision == "r2" else "warning"
    return BY_KIND[kind].severity


def plant_faults(env: MidazEnv, revision: str, seed: int = 5) -> Scenario:
    """Write one document (or pair) per fault into the env's Mongo databases; soft-delete one account."""
    rng = random.Random(seed)
    sc = Scenario(env, revision)
    odb, tdb = env.mongo_onboarding_db, env.mongo_transaction_db
    client: MongoClient[dict[str, Any]] = MongoClient(env.mongo_uri)
    try:
        onb, txn = client[odb], client[tdb]

        def new_id(at: datetime) -> str:
            return uuid7(int(at.timestamp() * 1000), rng)

        free_tx = _free_rows(env.transaction_conninfo, "transaction", txn["transaction"], 12)
        free_op = _free_rows(env.transaction_conninfo, "operation", txn["operation"], 4)
        free_acc = _free_rows(env.onboarding_conninfo, "account", onb["account"], 4)
        meta = {"channel": "pix"}

        def put(db: Any, coll: str, doc: dict[str, Any]) -> None:
            db[coll].insert_one(doc)

        # -- in the window (and so in full scope) --
        orphan_tx = new_id(IN)
        put(txn, "transaction", _doc(orphan_tx, "Transaction", meta, IN, IN))
        sc.add("metadata_orphan", f"{tdb}.transaction/{orphan_tx}", in_window=True)
        orphan_acc = new_id(IN)
        put(onb, "account", _doc(orphan_acc, "Account", meta, IN, IN))
        sc.add("metadata_orphan", f"{odb}.account/{orphan_acc}", in_window=True)
        orphan_route = new_id(IN)  # a collection without an entity_id index (§3.4)
        put(txn, "operationroute", _doc(orphan_route, "OperationRoute", meta, IN, IN))
        sc.add("metadata_orphan", f"{tdb}.operationroute/{orphan_route}", in_window=True)
        orphan_nested = new_id(IN)  # two findings on one document
        put(onb, "portfolio", _doc(orphan_nested, "Portfolio", {"a": {"b": 1}}, IN, IN))
        sc.add("metadata_orphan", f"{odb}.portfolio/{orphan_nested}", in_window=True)
        sc.add("metadata_nested_value", f"{odb}.portfolio/{orphan_nested}", in_window=True)

        put(txn, "operation", _doc("not-a-uuid", "Operation", meta, IN, IN))
        sc.add("metadata_invalid_entity_id", f"{tdb}.operation/not-a-uuid", in_window=True)
        put(onb, "ledger", _doc(42, "Ledger", meta, IN, IN))
        sc.add("metadata_invalid_entity_id", f"{odb}.ledger/42", in_window=True)
        braced = "{" + free_tx[11] + "}"  # a real row, but not the text Midaz stores
        put(onb, "segment", _doc(braced, "Segment", meta, IN, IN))
        sc.add("metadata_invalid_entity_id", f"{odb}.segment/{braced}", in_window=True)

        put(txn, "transaction", _doc(free_tx[0], "Transaction", meta, IN, IN))
        put(txn, "transaction", _doc(free_tx[0], "Transaction", meta, IN + timedelta(seconds=2),
                                     IN + timedelta(seconds=2)))
        sc.add("metadata_duplicate", f"{tdb}.transaction/{free_tx[0]}", in_window=True)
        put(txn, "transaction", _doc(free_tx[1], "Transaction", meta, IN, IN))  # one copy in, one out
        put(txn, "transaction", _doc(free_tx[1], "Transaction", meta, OUT, OUT))
        sc.add("metadata_duplicate", f"{tdb}.transaction/{free_tx[1]}", in_window=True)
        sc.straddling_duplicate = f"{tdb}.transaction/{free_tx[1]}"
        rate = txn["assetrate"].find_one({}, {"_id": 0})
        assert rate is not None, "the generator writes asset-rate metadata"
        rate.update(created_at=IN, updated_at=IN)  # a duplicate in a collection without an entity_id index
        put(txn, "assetrate", rate)
        sc.add("metadata_duplicate", f"{tdb}.assetrate/{rate['entity_id']}", in_window=True)

        put(onb, "account", _doc(free_acc[0], "Transaction", meta, IN, IN))
        sc.add("metadata_entity_name_mismatch", f"{odb}.account/{free_acc[0]}", in_window=True)
        put(txn, "transaction", _doc(free_tx[2], "Transaction", "plain text", IN, IN))
        sc.add("metadata_not_object", f"{tdb}.transaction/{free_tx[2]}", in_window=True)
        put(txn, "transaction", {"entity_id": free_tx[3], "entity_name": "Transaction", "created_at": IN,
                                 "updated_at": IN})  # no metadata at all
        sc.add("metadata_not_object", f"{tdb}.transaction/{free_tx[3]}", in_window=True)
        put(txn, "operation", _doc(free_op[0], "Operation", {"a": {"b": 1}}, IN, IN))
        sc.add("metadata_nested_value", f"{tdb}.operation/{free_op[0]}", in_window=True)
        put(txn, "operation", _doc(free_op[1], "Operation", {"tags": ["x", "y"]}, IN, IN))
        sc.add("metadata_nested_value", f"{tdb}.operation/{free_op[1]}", in_window=True)
        put(txn, "transaction", _doc(free_tx[4], "Transaction", {"k" * 101: "v"}, IN, IN))
        sc.add("metadata_key_too_long", f"{tdb}.transaction/{free_tx[4]}", in_window=True)
        put(txn, "transaction", _doc(free_tx[5], "Transaction", {"k" * 100: "v" * 2000, "n": 7, "b": True,
                                                                 "z": None}, IN, IN))  # the limits: clean
        put(txn, "transaction", _doc(free_tx[6], "Transaction", {"note": "v" * 2001}, IN, IN))
        sc.add("metadata_value_too_long", f"{tdb}.transaction/{free_tx[6]}", in_window=True)
        put(onb, "account", _doc(free_acc[1], "Account", meta, IN + timedelta(hours=1), IN))
        sc.add("metadata_timestamps_inverted", f"{odb}.account/{free_acc[1]}", in_window=True)

        put(txn, "transaction", _doc(free_tx[7], None, meta, None, IN))  # Update upsert: informational
        sc.add("metadata_upsert_created", f"{tdb}.transaction/{free_tx[7]}", in_window=True)
        put(onb, "account", _doc(free_acc[2], "Account", meta, IN, IN))  # its row is soft-deleted below
        sc.add("metadata_entity_soft_deleted", f"{odb}.account/{free_acc[2]}", in_window=True)
        with psycopg.connect(env.onboarding_conninfo) as conn:
            conn.execute("UPDATE account SET deleted_at = %s WHERE id = %s", (IN, free_acc[2]))

        # -- young documents (after the window): a missing row is in flight, bad shape is still bad --
        put(txn, "transaction", _doc(new_id(YOUNG), "Transaction", meta, YOUNG, YOUNG))
        sc.in_flight_full += 1
        put(txn, "transaction", _doc(free_tx[8], "Transaction", {"deep": {"x": 1}}, YOUNG, YOUNG))
        sc.add("metadata_nested_value", f"{tdb}.transaction/{free_tx[8]}", in_window=False)

        # -- outside the window: full scope only --
        orphan_out = new_id(OUT)
        put(txn, "transaction", _doc(orphan_out, "Transaction", meta, OUT, OUT))
        sc.add("metadata_orphan", f"{tdb}.transaction/{orphan_out}", in_window=False)
        put(txn, "operation", _doc(free_op[2], "Operation", {"list": [1]}, OUT, OUT))
        sc.add("metadata_nested_value", f"{tdb}.operation/{free_op[2]}", in_window=False)
        put(txn, "transaction", _doc("bad-id-out", "Transaction", meta, OUT, OUT))
        sc.add("metadata_invalid_entity_id", f"{tdb}.transaction/bad-id-out", in_window=False)
        put(txn, "transactionroute", {"metadata": meta})  # no entity_id, no timestamps: full scope only
        sc.add("metadata_invalid_entity_id", f"{tdb}.transactionroute/", in_window=False)
        sc.add("metadata_upsert_created", f"{tdb}.transactionroute/", in_window=False)
        # created before the window, updated in it: judged in the window
        put(onb, "account", _doc(free_acc[3], "Account", {"x": ["y"]}, WIN_START - timedelta(days=1), IN))
        sc.add("metadata_nested_value", f"{odb}.account/{free_acc[3]}", in_window=True)

        # -- not judged: an unknown collection and a non-empty ignored (wrongly named) one --
        put(txn, "balance", _doc("junk", "Balance", {"a": [1]}, IN, IN))
        put(onb, "account_type", _doc("junk", "AccountType", {"a": [1]}, IN, IN))
    finally:
        client.close()
    return sc


def build_scenario(stack: LocalStack, revision: str, seed: int = 11) -> Scenario:
    env = stack.new_env(revision)
    generate(env, operations=OPS, seed=seed, now=NOW)
    return plant_faults(env, revision)


def build_clean(stack: LocalStack, revision: str, seed: int = 12) -> MidazEnv:
    """A generated ledger with its in-flight slice, plus the metadata in-flight case the slice lacks: a
    document written seconds ago whose row the (replica) snapshot does not show yet (§3.3)."""
    env = stack.new_env(revision)
    generate(env, operations=OPS, seed=seed, now=NOW)
    client: MongoClient[dict[str, Any]] = MongoClient(env.mongo_uri)
    try:
        eid = uuid7(int(YOUNG.timestamp() * 1000), random.Random(seed))
        client[env.mongo_transaction_db]["transaction"].insert_one(
            _doc(eid, "Transaction", {"channel": "pix"}, YOUNG, YOUNG)
        )
    finally:
        client.close()
    return env


def use_env(env: MidazEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.airflow_conn_env().items():
        monkeypatch.setenv(key, value)


def info_reported(result: Any) -> set[tuple[str, str, str]]:
    return {(v.check, v.kind, v.entity) for v in result.samples if v.severity == "info"}


def assert_scenario(result: Any, sc: Scenario, *, window: bool) -> None:
    """The findings equal the planted faults both ways; counts and severities follow the revision."""
    expected = sc.window if window else sc.full
    got = reported(result)
    assert got - expected == set(), "reported but not planted"
    assert expected - got == set(), "planted but not reported"
    assert info_reported(result) == (sc.info_window if window else sc.info_full)
    for v in result.samples:
        assert v.severity == spec_severity(v.kind, sc.revision), v
        assert v.collection and v.entity.startswith(v.collection + "/"), v
    errors = sum(1 for _, k, _ in expected if spec_severity(k, sc.revision) == "error")
    assert result.violations == errors
    assert result.warnings == len(expected) - errors
    assert result.in_flight == (sc.in_flight_window if window else sc.in_flight_full)
    assert result.status == "failed"


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module", params=["r1", "r2"])
def scenario(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Scenario]:
    sc = build_scenario(local_stack, request.param)
    yield sc
    local_stack.drop_env(sc.env)


@pytest.fixture(scope="module", params=["r1", "r2"])
def clean(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[tuple[str, MidazEnv]]:
    env = build_clean(local_stack, request.param)
    yield request.param, env
    local_stack.drop_env(env)


@dataclass
class Injected:
    env: MidazEnv
    revision: str
    manifest: Manifest


# The metadata faults of the injector, planted on DAY_A (the rest of the catalogue lands where it likes).
DAY_A = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module", params=["r1", "r2"])
def injected(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Injected]:
    env = local_stack.new_env(request.param)
    generate(env, operations=OPS, seed=21, now=NOW)
    on_day = {name: DAY_A.date() for name in available_faults(request.param) if name.startswith("metadata_")}
    manifest = inject(env, faults="all", seed=7, now=NOW, on_day=on_day)
    yield Injected(env, request.param, manifest)
    local_stack.drop_env(env)


def _use_injected(inj: Injected, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(inj.env, monkeypatch)
    for key, value in inj.manifest.settings.items():
        monkeypatch.setenv(key, value)


def _doc_in_window(env: MidazEnv, entity: str, start: datetime, end: datetime) -> bool:
    """Whether some document of `entity` ("<db>.<collection>/<entity_id>") was created or updated in [start, end)."""
    db_coll, entity_id = entity.split("/", 1)
    db, coll = db_coll.split(".", 1)
    client: MongoClient[dict[str, Any]] = MongoClient(env.mongo_uri)
    try:
        rng = {"$gte": start, "$lt": end}
        query = {"entity_id": entity_id, "$or": [{"created_at": rng}, {"updated_at": rng}]}
        return client[db][coll].count_documents(query) > 0
    finally:
        client.close()


# --------------------------------------------------------------------------------------------- store tests


def test_manifest_full_scope(injected: Injected, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every metadata finding of the injected catalogue, nothing else, at the manifest's severity."""
    _use_injected(injected, monkeypatch)
    result = check_once(CHECK, injected.revision, NOW)
    expected = injected.manifest.expected(check=CHECK)
    assert {e.kind for e in expected} >= {
        "metadata_orphan", "metadata_duplicate", "metadata_invalid_entity_id", "metadata_nested_value",
    }, "the injector planted the §8.4 metadata faults"
    got = reported(result)
    want = {e.key for e in expected}
    assert got - want == set(), "reported but not in the manifest"
    assert want - got == set(), "in the manifest but not reported"
    severities = {(v.kind, v.entity): v.severity for v in result.samples if v.severity != "info"}
    assert {(e.kind, e.entity): e.severity for e in expected} == severities
    assert result.violations == sum(1 for e in expected if e.severity == "error")
    assert result.warnings == sum(1 for e in expected if e.severity == "warning")


def test_manifest_window_scope(injected: Injected, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metadata faults' day as a window: all of its findings, and only documents written in it.

    The manifest dates a finding by its entity's UUIDv7 time; the check's window is the document's own
    created_at/updated_at (Mongo has no UUIDv7 id), so a finding may also show in the window where its
    document was updated. Extras are allowed only for such documents, checked against Mongo itself."""
    _use_injected(injected, monkeypatch)
    start, end = DAY_A, DAY_A + timedelta(days=1)
    result = check_once(CHECK, injected.revision, NOW, start=start, end=end)
    got = reported(result)
    in_day = injected.manifest.keys(check=CHECK, window=(start, end))
    assert len(in_day) >= 5
    assert in_day - got == set(), "a finding of the window was missed"
    assert got - injected.manifest.keys(check=CHECK) == set(), "reported but not in the manifest"
    for _, _, entity in got - in_day:
        assert _doc_in_window(injected.env, entity, start, end), entity
    # the day before: only findings whose documents were written then (none of the day's faults otherwise)
    prev = (start - timedelta(days=1), start)
    before = reported(check_once(CHECK, injected.revision, NOW, start=prev[0], end=prev[1]))
    assert before - injected.manifest.keys(check=CHECK) == set()
    for _, _, entity in before:
        assert _doc_in_window(injected.env, entity, *prev), entity


def test_planted_faults_full_scope(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(scenario.env, monkeypatch)
    result = check_once(CHECK, scenario.revision, NOW)
    assert_scenario(result, scenario, window=False)
    m = result.metrics
    tdb, odb = scenario.env.mongo_transaction_db, scenario.env.mongo_onboarding_db
    assert set(m["unknown_collections"]) == {f"{tdb}.balance"}
    assert m["ignored_collections"][f"{odb}.account_type"] == 1
    assert m["collections"][f"{tdb}.transaction"]["entity_id_index"] is True
    assert m["collections"][f"{tdb}.operationroute"]["entity_id_index"] is False
    assert m["info"] == {"metadata_upsert_created": 2, "metadata_entity_soft_deleted": 1}


def test_planted_faults_window_scope(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(scenario.env, monkeypatch)
    result = check_once(CHECK, scenario.revision, NOW, start=WIN_START, end=WIN_END)
    assert_scenario(result, scenario, window=True)
    dup = next(v for v in result.samples if v.entity == scenario.straddling_duplicate)
    assert (dup.details["documents"], dup.details["documents_in_window"]) == (2, 1)


def test_window_without_documents_reports_nothing(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(scenario.env, monkeypatch)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    result = check_once(CHECK, scenario.revision, NOW, start=start, end=start + timedelta(days=1))
    assert (result.violations, result.warnings, result.in_flight, result.samples) == (0, 0, 0, [])
    assert sum(c["documents"] for c in result.metrics["collections"].values()) == 0


def test_chunk_boundaries_do_not_change_findings(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny cursor batches, lookups and GE frames: every index maps back to the right document."""
    use_env(scenario.env, monkeypatch)
    monkeypatch.setattr(meta_check, "MONGO_BATCH", 3)
    monkeypatch.setattr(meta_check, "LOOKUP_BATCH", 4)
    monkeypatch.setattr(meta_check, "FRAME_ROWS", 41)
    result = check_once(CHECK, scenario.revision, NOW)
    assert_scenario(result, scenario, window=False)
    tx = result.metrics["collections"][f"{scenario.env.mongo_transaction_db}.transaction"]
    assert tx["lookups"] >= tx["documents"] // 4  # really chunked


def test_samples_are_capped_but_counts_exact(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(scenario.env, monkeypatch)
    result = check_once(CHECK, scenario.revision, NOW, max_samples=3)
    full = check_once(CHECK, scenario.revision, NOW)
    assert len(result.samples) == 3 and result.truncated
    assert all(v.severity in ("error", "warning") for v in result.samples)  # info never displaces findings
    assert (result.violations, result.warnings) == (full.violations, full.warnings)


def test_clean_ledger_with_in_flight_slice(clean: tuple[str, MidazEnv], monkeypatch: pytest.MonkeyPatch) -> None:
    revision, env = clean
    use_env(env, monkeypatch)
    result = check_once(CHECK, revision, NOW)
    assert (result.violations, result.warnings, result.status) == (0, 0, "passed"), result.samples[:5]
    assert reported(result) == set()
    assert result.in_flight == 1
    docs = sum(c["documents"] for c in result.metrics["collections"].values())
    found = sum(c.get("rows_found", 0) for c in result.metrics["collections"].values())
    assert docs > 300 and found == docs - 1
    # the young document is reported once it is older than the grace
    later = check_once(CHECK, revision, NOW + timedelta(minutes=20))
    assert {k for _, k, _ in reported(later)} == {"metadata_orphan"} and later.in_flight == 0
    # and the generator's settled days, judged as windows, are clean too
    for day in range(3):
        start = datetime(2026, 2, 27, tzinfo=UTC) + timedelta(days=day)
        win = check_once(CHECK, revision, NOW, start=start, end=start + timedelta(days=1))
        assert (win.violations, win.warnings) == (0, 0)


def test_empty_stores_pass_and_stay_untouched(midaz_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No metadata at all is normal (a document exists only when a request carried metadata, §3.3), and the
    check creates nothing while looking (read-only, even on a server that creates collections on probing)."""
    env = midaz_env(revision="r2")
    result = check_once(CHECK, "r2", NOW)
    assert (result.status, result.violations, result.warnings, result.in_flight) == ("passed", 0, 0, 0)
    assert all(c == {"documents": 0, "exists": False} for c in result.metrics["collections"].values())
    client: MongoClient[dict[str, Any]] = MongoClient(env.mongo_uri)
    try:
        for db in (env.mongo_onboarding_db, env.mongo_transaction_db):
            assert client[db].list_collection_names() == []
    finally:
        client.close()


def test_store_down_raises_sanitised(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(scenario.env, monkeypatch)
    monkeypatch.setenv("AIRFLOW_CONN_MIDAZ_MONGO", "mongo://reader:s3cr3t-pw@127.0.0.1:9/?serverSelectionTimeoutMS=300")
    with pytest.raises(MetadataStoreError) as info:
        run_check(CHECK, make_context(scenario.revision, NOW))
    assert "s3cr3t-pw" not in str(info.value)


# ---------------------------------------------------------------------------------------------- unit tests


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0190b6e5-7a8c-7d3e-9f00-1a2b3c4d5e6f", "0190b6e5-7a8c-7d3e-9f00-1a2b3c4d5e6f"),
        ("0190B6E5-7A8C-7D3E-9F00-1A2B3C4D5E6F", "0190b6e5-7a8c-7d3e-9f00-1a2b3c4d5e6f"),
        ("0190b6e57a8c7d3e9f001a2b3c4d5e6f", None),  # Midaz stores hyphenated text
        ("{0190b6e5-7a8c-7d3e-9f00-1a2b3c4d5e6f}", None),
        ("urn:uuid:0190b6e5-7a8c-7d3e-9f00-1a2b3c4d5e6f", None),
        (" 0190b6e5-7a8c-7d3e-9f00-1a2b3c4d5e6f", None),
        ("0190b6e5-7a8c-7d3e-9f00-1a2b3c4d5e6f\n", None),
        ("0190b6e5-7a8c-7d3e-9f00-1a2b3c4d5e6g", None),
        ("", None),
        (None, None),
        (42, None),
        (b"\x01" * 16, None),
    ],
)
def test_parse_entity_id(value: Any, expected: str | None) -> None:
    assert parse_entity_id(value) == expected


def test_entity_text() -> None:
    assert entity_text(None) == ""
    assert entity_text("abc") == "abc"
    assert entity_text(42) == "42"
    assert entity_text(b"\x01\xff") == "01ff"


def test_as_utc() -> None:
    naive = datetime(2026, 1, 1, 12)
    assert as_utc(naive) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    aware = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert as_utc(aware) is aware
    assert as_utc("2026-01-01T00:00:00Z") is None
    assert as_utc(None) is None


def _shape(doc: dict[str, Any], name: str = "Transaction") -> dict[str, Any]:
    return shape_facts(doc, name)[0]


def test_shape_clean_document() -> None:
    ts = datetime(2026, 1, 1)
    facts = _shape(_doc("x", "Transaction", {"a": 1, "b": "s", "c": True, "d": None, "e": 1.5}, ts, ts))
    assert facts == {
        "entity_name": spec.NAME_EXPECTED, "origin": spec.ORIGIN_CREATE, "metadata_type": spec.METADATA_OBJECT,
        "nested_value": False, "key_too_long": False, "value_too_long": False, "timestamps_inverted": False,
    }
    assert _shape(_doc("x", "Transaction", {}, ts, ts))["metadata_type"] == spec.METADATA_OBJECT  # nil -> {}


def test_shape_entity_name_and_origin() -> None:
    ts = datetime(2026, 1, 1)
    assert _shape(_doc("x", "transaction", {}, ts, ts))["entity_name"] == spec.NAME_OTHER  # case matters
    assert _shape(_doc("x", "Account", {}, ts, ts))["entity_name"] == spec.NAME_OTHER
    upsert = _shape(_doc("x", None, {}, None, ts))
    assert (upsert["entity_name"], upsert["origin"]) == (spec.NAME_MISSING, spec.ORIGIN_UPSERT)
    no_created = _shape(_doc("x", "Transaction", {}, None, ts))
    assert (no_created["entity_name"], no_created["origin"]) == (spec.NAME_EXPECTED, spec.ORIGIN_UPSERT)
    null_name = _shape({"entity_id": "x", "entity_name": None, "metadata": {}, "created_at": ts})
    assert null_name["entity_name"] == spec.NAME_MISSING


def test_shape_metadata_rules_and_boundaries() -> None:
    ts = datetime(2026, 1, 1)
    assert _shape(_doc("x", "Transaction", "text", ts, ts))["metadata_type"] == spec.METADATA_OTHER
    assert _shape(_doc("x", "Transaction", ["a"], ts, ts))["metadata_type"] == spec.METADATA_OTHER
    assert _shape({"entity_id": "x", "entity_name": "Transaction", "created_at": ts})["metadata_type"] == (
        spec.METADATA_OTHER
    )
    assert _shape(_doc("x", "Transaction", {"a": []}, ts, ts))["nested_value"] is True
    assert _shape(_doc("x", "Transaction", {"a": {}}, ts, ts))["nested_value"] is True
    assert _shape(_doc("x", "Transaction", {"k" * 100: "v" * 2000}, ts, ts)) == _shape(
        _doc("x", "Transaction", {"a": 1}, ts, ts)
    )
    assert _shape(_doc("x", "Transaction", {"é" * 100: "ü" * 2000}, ts, ts))["key_too_long"] is False  # chars
    assert _shape(_doc("x", "Transaction", {"k" * 101: 1}, ts, ts))["key_too_long"] is True
    assert _shape(_doc("x", "Transaction", {"a": "v" * 2001}, ts, ts))["value_too_long"] is True
    assert _shape(_doc("x", "Transaction", {"a": 10**30}, ts, ts))["value_too_long"] is False  # strings only
    facts, evidence = shape_facts(_doc("x", "Transaction", {"k" * 300: "v" * 5000, "n": {"a": 1}}, ts, ts),
                                  "Transaction")
    assert facts["nested_value"] and facts["key_too_long"] and facts["value_too_long"]
    assert evidence["metadata_key_too_long"]["key_chars"] == [300]
    assert len(evidence["metadata_key_too_long"]["keys"][0]) < 120  # evidence never carries the whole key
    assert evidence["metadata_value_too_long"]["values"] == [{"key": "k" * 100, "chars": 5000}]


def test_shape_timestamps() -> None:
    t = datetime(2026, 1, 1)
    assert _shape(_doc("x", "Transaction", {}, t, t))["timestamps_inverted"] is False
    assert _shape(_doc("x", "Transaction", {}, t + timedelta(milliseconds=1), t))["timestamps_inverted"] is True
    aware = t.replace(tzinfo=UTC)
    assert _shape(_doc("x", "Transaction", {}, aware + timedelta(hours=1), t))["timestamps_inverted"] is True
    assert _shape(_doc("x", "Transaction", {}, "2027-01-01", t))["timestamps_inverted"] is False  # not a date


def test_classify_age_and_identity() -> None:
    coll = next(c for c in COLLECTIONS if c.collection == "transaction")
    settled_before = NOW - timedelta(minutes=15)
    eid = "0190B6E5-7A8C-7D3E-9F00-1A2B3C4D5E6F"
    young = classify({"_id": "o1", **_doc(eid, "Transaction", {}, NOW - timedelta(days=9), YOUNG.replace(tzinfo=None))},
                     coll, "t.transaction", settled_before)
    assert young.young and young.uuid == eid.lower() and young.entity == f"t.transaction/{eid}"
    assert young.document_id == "o1" and young.row == spec.ROW_NOT_LOOKED_UP
    old = classify(_doc(eid, "Transaction", {}, NOW - timedelta(days=9), NOW - timedelta(hours=1)), coll, "t.x",
                   settled_before)
    assert not old.young
    undated = classify({"entity_id": 7}, coll, "t.x", settled_before)
    assert not undated.young and not undated.entity_id_valid and undated.entity == "t.x/7"
    assert undated.evidence["metadata_invalid_entity_id"] == {"entity_id_type": "int"}


def test_window_filter_and_pipeline() -> None:
    full = make_context("r1", NOW)
    assert window_filter(full) == {}
    assert duplicate_pipeline(full) == [
        {"$group": {"_id": "$entity_id", "n": {"$sum": 1}}}, {"$match": {"n": {"$gt": 1}}}
    ]
    win = make_context("r2", NOW, start=WIN_START, end=WIN_END)
    rng = {"$gte": WIN_START, "$lt": WIN_END}
    assert window_filter(win) == {"$or": [{"created_at": rng}, {"updated_at": rng}]}
    group, match = duplicate_pipeline(win)
    assert "w" in group["$group"] and match["$match"] == {"n": {"$gt": 1}, "w": {"$gt": 0}}


def test_expectations_cover_every_metadata_kind() -> None:
    from reconciliation.catalog import KINDS

    kinds = {k.kind for k in KINDS if k.check == CHECK}
    covered = {inv.kind for inv in spec.DOCUMENT_INVARIANTS} | {spec.DUPLICATE_KIND}
    assert covered == kinds
    assert set(spec.DOCUMENT_COLUMNS) == {inv.column for inv in spec.DOCUMENT_INVARIANTS}
    for inv in spec.DOCUMENT_INVARIANTS:  # every row class is either allowed or the finding of some kind
        if inv.column == "row":
            assert set(inv.allowed) < set(spec.ROW_VALUES)
