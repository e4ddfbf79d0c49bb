"""The metadata check's scenarios against a real MongoDB (DESIGN §5: the code must be correct there, not only on
nx-27017): aggregation spilling (allowDiskUse), `$push`/`$cond` semantics, BSON dates and missing fields
behave as MongoDB defines them, which the wire stand-in only approximates.

Runs only with MONGO_TEST_URI=mongodb://... pointing at a real MongoDB (the session's servers then use it).
Without it, selecting this module FAILS with a message instead of passing silently: CI deselects it with
``-m 'not mongo_real'``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest

from reconciliation.demo.servers import LocalStack, MidazEnv
from tests.checks.conftest import check_once, reported
from tests.checks.test_metadata import (
    CHECK,
    NOW,
    WIN_END,
    WIN_START,
    Scenario,
    assert_scenario,
    build_clean,
    build_scenario,
    use_env,
)

pytestmark = pytest.mark.mongo_real

NEEDS = (
    "tests/checks/test_metadata_real_mongo.py needs MONGO_TEST_URI=mongodb://... pointing at a real MongoDB "
    "(e.g. the compose stack's mongo); deselect it with -m 'not mongo_real'"
)


@pytest.fixture(scope="module")
def real_mongo(local_stack: LocalStack) -> str:
    """The real MongoDB of this session, or a clear failure (never a skip, never a silent pass)."""
    uri = os.environ.get("MONGO_TEST_URI")
    if not uri:
        pytest.fail(f"MONGO_TEST_URI is not set: {NEEDS}", pytrace=False)
    server = local_stack.mongo
    if not server.external or server.uri != uri:
        pytest.fail(f"the session's MongoDB is {server.uri!r}, not MONGO_TEST_URI (is RECON_TEST_MONGO_URL set?)",
                    pytrace=False)
    with server.client() as client:
        info = client.admin.command("buildInfo")
    version = str(info.get("version", ""))
    # nx-27017 answers buildInfo with a fixed "7.0.0" and process "nx_27017", but no gitVersion/storage engines.
    if info.get("process") == "nx_27017" or "gitVersion" not in info:
        pytest.fail(f"MONGO_TEST_URI points at a MongoDB stand-in, not a real MongoDB ({NEEDS})", pytrace=False)
    return version


@pytest.fixture(scope="module", params=["r1", "r2"])
def real_scenario(request: pytest.FixtureRequest, real_mongo: str, local_stack: LocalStack) -> Iterator[Scenario]:
    sc = build_scenario(local_stack, request.param)
    yield sc
    local_stack.drop_env(sc.env)
    with local_stack.mongo.client() as client:
        client.drop_database(sc.env.mongo_onboarding_db)
        client.drop_database(sc.env.mongo_transaction_db)


@pytest.fixture(scope="module", params=["r1", "r2"])
def real_clean(request: pytest.FixtureRequest, real_mongo: str, local_stack: LocalStack) -> Iterator[tuple[str, MidazEnv]]:
    env = build_clean(local_stack, request.param)
    yield request.param, env
    local_stack.drop_env(env)
    with local_stack.mongo.client() as client:
        client.drop_database(env.mongo_onboarding_db)
        client.drop_database(env.mongo_transaction_db)


def test_real_mongo_full_scope(real_scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(real_scenario.env, monkeypatch)
    assert_scenario(check_once(CHECK, real_scenario.revision, NOW), real_scenario, window=False)


def test_real_mongo_window_scope(real_scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(real_scenario.env, monkeypatch)
    result = check_once(CHECK, real_scenario.revision, NOW, start=WIN_START, end=WIN_END)
    assert_scenario(result, real_scenario, window=True)
    dup = next(v for v in result.samples if v.entity == real_scenario.straddling_duplicate)
    assert (dup.details["documents"], dup.details["documents_in_window"]) == (2, 1)


def test_real_mongo_clean_ledger(real_clean: tuple[str, MidazEnv], monkeypatch: pytest.MonkeyPatch) -> None:
    revision, env = real_clean
    use_env(env, monkeypatch)
    result = check_once(CHECK, revision, NOW)
    assert (result.violations, result.warnings, reported(result), result.in_flight) == (0, 0, set(), 1)
    later = check_once(CHECK, revision, NOW + timedelta(minutes=20))
    assert {k for _, k, _ in reported(later)} == {"metadata_orphan"}
