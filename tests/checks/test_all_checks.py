"""Issue-level acceptance: on a generated ledger of 100k operations with the whole fault catalogue injected,
the union of every check's findings equals the fault manifest exactly (nothing missed, nothing extra), for
R1 and R2; and a clean ledger with in-flight writes gives zero violations and zero warnings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciliation.catalog import CHECKS
from reconciliation.demo.faults import inject
from reconciliation.demo.generator import generate
from tests.checks.conftest import check_once, reported
from tests.e2e.helpers import diff_message, manifest_set

OPERATIONS = 100_000
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_union_of_checks_equals_manifest(midaz_env, revision: str) -> None:
    env = midaz_env(revision=revision)
    now = datetime.now(UTC)
    generate(env, operations=OPERATIONS, seed=101, now=now)
    manifest = inject(env, faults="all", seed=101, now=now)
    found: set[tuple[str, str, str]] = set()
    for name in CHECKS:
        result = check_once(name, revision, now)
        assert result.status != "error", result.error
        found |= reported(result)
    expected = manifest_set(manifest)
    assert found == expected, diff_message(expected, found)


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_clean_ledger_with_inflight_writes_has_no_findings(midaz_env, revision: str) -> None:
    env = midaz_env(revision=revision)
    now = datetime.now(UTC)
    generate(env, operations=OPERATIONS, seed=202, now=now, inflight=True)
    in_flight = 0
    for name in CHECKS:
        result = check_once(name, revision, now)
        assert result.status == "passed", (name, [s.to_dict() for s in result.samples[:5]])
        assert (result.violations, result.warnings) == (0, 0)
        in_flight += result.in_flight
    assert in_flight > 0, "the in-flight slice was not seen by any check"
