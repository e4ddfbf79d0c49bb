"""The check registry: one module per check, each exposing `run(ctx: CheckContext) -> CheckResult`.

Adding a check = one module here, its SQL under sql/, its suite, its tests, one line below."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from reconciliation.catalog import CHECKS

if TYPE_CHECKING:
    from reconciliation.checks.base import CheckContext
    from reconciliation.result import CheckResult

REGISTRY: dict[str, str] = {
    "balances": "reconciliation.checks.balances",
    "double_entry": "reconciliation.checks.double_entry",
    "orphans": "reconciliation.checks.orphans",
    "referential": "reconciliation.checks.referential",
    "redis_sync": "reconciliation.checks.redis_sync",
    "settlement": "reconciliation.checks.settlement",
    "metadata": "reconciliation.checks.metadata",
    "counts": "reconciliation.checks.counts",
}
assert tuple(REGISTRY) == CHECKS


def run_check(name: str, ctx: CheckContext) -> CheckResult:
    """Run one check by name (the module is imported only now: DAG parsing never pays for it)."""
    module = importlib.import_module(REGISTRY[name])
    return module.run(ctx)
