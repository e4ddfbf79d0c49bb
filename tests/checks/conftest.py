"""Helpers shared by the check tests: run one check against a MidazEnv and compare with a manifest."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from reconciliation.checks import run_check
from reconciliation.checks.base import CheckContext
from reconciliation.config import Params
from reconciliation.result import CheckResult
from reconciliation.window import Window


def make_context(
    revision: str,
    now: datetime,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    grace_minutes: int = 15,
    hard_grace_minutes: int | None = None,
    max_samples: int = 100_000,
) -> CheckContext:
    """Full scope unless a window is given; `now` must be the generator's `now` (in-flight slice)."""
    params = Params(grace_minutes=grace_minutes, hard_grace_minutes=hard_grace_minutes, max_samples=max_samples)
    kw = dict(now=now, grace=params.grace, hard_grace=params.hard_grace(revision))
    window = Window(start=start, end=end, scope="window", **kw) if start is not None else Window.full(**kw)
    params.scope = window.scope
    return CheckContext(window=window, revision=revision, params=params)


def check_once(name: str, revision: str, now: datetime, **kw) -> CheckResult:
    """Run a check the way its DAG task does (the env's AIRFLOW_CONN_* vars must be set)."""
    return run_check(name, make_context(revision, now, **kw))


def reported(result: CheckResult, severities: tuple[str, ...] = ("error", "warning")) -> set[tuple[str, str, str]]:
    """(check, kind, entity) of every reported finding; the result must not be truncated."""
    assert not result.truncated, "raise max_samples: a truncated result cannot be compared exactly"
    return {(v.check, v.kind, v.entity) for v in result.samples if v.severity in severities}


def day_window(day_start: datetime) -> tuple[datetime, datetime]:
    return day_start, day_start + timedelta(days=1)


@pytest.fixture
def run_named_check():
    return check_once
