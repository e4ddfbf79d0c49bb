"""The demo DDL reproduces Midaz's migrated schema exactly (reference §2.3), for both revisions.

Why: the checks' SQL and the revision detection are only trustworthy if the test databases have the
same columns (order, types, nullability, defaults), indexes and constraints as a migrated Midaz.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from reconciliation.demo.schema import MIGRATION_VERSIONS, apply_schema, create_databases, ddl, schema_listing

EXPECTED_DIR = Path(__file__).resolve().parents[1] / "expected_schema"
PAIRS = sorted(MIGRATION_VERSIONS)

# Ordinal positions left empty by dropped columns (reference §2.3), identical in both revisions.
ORDINAL_GAPS = {"transaction": {4, 8}, "operation": {7, 10, 13}, "balance": {9}}

# Partial indexes (reference §2.1/§2.2): name -> a fragment its WHERE clause must contain.
PARTIAL_INDEXES = {
    ("r1", "onboarding"): {
        "idx_account_type_key_value": "deleted_at IS NULL",
        "idx_account_type_unique_key_value": "deleted_at IS NULL",
    },
    ("r1", "transaction"): {
        "idx_operation_account_id": "deleted_at IS NULL",
        "idx_unique_balance_alias_key": "deleted_at IS NULL",
        "idx_operation_route_type": "deleted_at IS NULL",
        "idx_operation_transaction_route_unique": "deleted_at IS NULL",
        "idx_operation_transaction_route_operation_route_id": "deleted_at IS NULL",
        "idx_operation_transaction_route_transaction_route_id": "deleted_at IS NULL",
    },
}
PARTIAL_INDEXES[("r2", "onboarding")] = {
    **PARTIAL_INDEXES[("r1", "onboarding")],
    "idx_organization_legal_document": "deleted_at IS NULL",
    **{
        f"idx_account_{n}": "deleted_at IS NULL"
        for n in ("segment", "portfolio", "entity_id", "parent", "name_lower", "alias_lower", "holder")
    },
    "idx_account_blocked": "blocked = true",
}
PARTIAL_INDEXES[("r2", "transaction")] = {
    **PARTIAL_INDEXES[("r1", "transaction")],
    "idx_operation_account_balance_pit": "deleted_at IS NULL",
    "idx_transaction_route_id": "route_id IS NOT NULL",
    "idx_transaction_route_status": "deleted_at IS NULL",
    "idx_transaction_date_range": "deleted_at IS NULL",
    "idx_operation_org_ledger_route_code": "route_code IS NOT NULL",
    "idx_unique_balance_account_key": "deleted_at IS NULL",
}


@pytest.fixture(scope="module")
def schema_dbs(pg_server) -> Iterator[dict[tuple[str, str], str]]:
    """Both revisions applied to fresh databases; maps (revision, database) -> conninfo."""
    token = os.getpid()
    conninfos: dict[tuple[str, str], str] = {}
    for rev in ("r1", "r2"):
        names = {db: f"schema_test_{rev}_{db}_{token}" for db in ("onboarding", "transaction")}
        create_databases(pg_server.admin_conninfo, names["onboarding"], names["transaction"], drop=True)
        apply_schema(pg_server.conninfo(names["onboarding"]), pg_server.conninfo(names["transaction"]), rev)
        for db, name in names.items():
            conninfos[(rev, db)] = pg_server.conninfo(name)
    yield conninfos
    with psycopg.connect(pg_server.admin_conninfo, autocommit=True) as conn:
        for conninfo in conninfos.values():
            name = sql.Identifier(str(conninfo_to_dict(conninfo)["dbname"]))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@pytest.mark.parametrize(("revision", "database"), PAIRS)
def test_schema_matches_reference_listing(schema_dbs, revision: str, database: str) -> None:
    expected = (EXPECTED_DIR / f"{revision}_{database}.txt").read_text().splitlines()
    actual = schema_listing(schema_dbs[(revision, database)])
    diff = "\n".join(difflib.unified_diff(expected, actual, "reference §2.3", "created", lineterm="", n=1))
    assert actual == expected, f"{revision} {database} schema differs from the reference:\n{diff}"


@pytest.mark.parametrize(("revision", "database"), PAIRS)
def test_schema_migrations_row(schema_dbs, revision: str, database: str) -> None:
    with psycopg.connect(schema_dbs[(revision, database)]) as conn:
        rows = conn.execute("SELECT version, dirty FROM schema_migrations").fetchall()
    assert rows == [(MIGRATION_VERSIONS[(revision, database)], False)]


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_dropped_columns_leave_ordinal_gaps(schema_dbs, revision: str) -> None:
    with psycopg.connect(schema_dbs[(revision, "transaction")]) as conn:
        for table, gaps in ORDINAL_GAPS.items():
            positions = [
                r[0]
                for r in conn.execute(
                    "SELECT ordinal_position FROM information_schema.columns"
                    " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                )
            ]
            missing = set(range(1, max(positions) + 1)) - set(positions)
            assert missing == gaps, table


@pytest.mark.parametrize(("revision", "database"), PAIRS)
def test_partial_indexes(schema_dbs, revision: str, database: str) -> None:
    with psycopg.connect(schema_dbs[(revision, database)]) as conn:
        rows = conn.execute(
            "SELECT i.relname, pg_get_expr(x.indpred, x.indrelid) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indpred IS NOT NULL"
        ).fetchall()
    predicates = dict(rows)
    expected = PARTIAL_INDEXES[(revision, database)]
    assert set(predicates) == set(expected)
    for name, fragment in expected.items():
        assert fragment in predicates[name], (name, predicates[name])


def test_check_constraints(schema_dbs) -> None:
    def checks(rev: str) -> dict[str, str]:
        with psycopg.connect(schema_dbs[(rev, "transaction")]) as conn:
            rows = conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'")
            return dict(rows.fetchall())

    r1, r2 = checks("r1"), checks("r2")
    assert "bidirectional" not in r1["operation_route_operation_type_check"]
    assert "bidirectional" in r2["operation_route_operation_type_check"]
    assert "'credit'" in r2["balance_direction_check"] and "'debit'" in r2["balance_direction_check"]
    assert ">= (0)" in r2["balance_overdraft_used_check"] or ">= 0" in r2["balance_overdraft_used_check"]


def test_ddl_rejects_unknown_revision() -> None:
    with pytest.raises(ValueError):
        ddl("r3", "onboarding")
    assert "CREATE TABLE" in ddl("R1", "onboarding")
