"""Pytest fixtures for throwaway servers (DESIGN §5); the launchers live in reconciliation.demo.servers.

Session-scoped servers start lazily (a test that needs only Redis does not start PostgreSQL) and stop at
session end, also on failure or Ctrl-C (pytest finalizers, then atexit, then the servers' parent-death
signal). Point them at existing servers with RECON_TEST_PG_URL, RECON_TEST_REDIS_URL and
RECON_TEST_MONGO_URL / MONGO_TEST_URI. A server that cannot start makes the test error, never skip.
Set RECON_TEST_KEEP_DATA=1 to keep each test's databases for inspection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from reconciliation.demo.servers import (
    LocalStack,
    MidazEnv,
    MongoWireServer,
    PostgresServer,
    RedisServer,
    SlackSink,
    SmtpSink,
)

STACKS: list[LocalStack] = []  # for the start-up timing line in the terminal summary


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """PostgreSQL + Redis + MongoDB-wire for the whole session, each started on first use."""
    stack = LocalStack()
    STACKS.append(stack)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def pg_server(local_stack: LocalStack) -> PostgresServer:
    """.host .port .admin_conninfo .conninfo(dbname)"""
    return local_stack.pg


@pytest.fixture(scope="session")
def redis_server(local_stack: LocalStack) -> RedisServer:
    """.host .port .url (.url_for_db(n), .client(n))"""
    return local_stack.redis


@pytest.fixture(scope="session")
def mongo_server(local_stack: LocalStack) -> MongoWireServer:
    """.host .port .uri (.client(), .external is True for a real MongoDB)"""
    return local_stack.mongo


@pytest.fixture(scope="session")
def _smtp_session() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def smtp_server(_smtp_session: SmtpSink) -> SmtpSink:
    """A real SMTP server (aiosmtpd): .host .port .messages (EmailMessage list, emptied per test) .wait_for(n)."""
    _smtp_session.clear()
    return _smtp_session


@pytest.fixture(scope="session")
def _slack_session() -> Iterator[SlackSink]:
    with SlackSink() as sink:
        yield sink


@pytest.fixture
def slack_server(_slack_session: SlackSink) -> SlackSink:
    """A Slack-webhook stand-in: .url .requests (path, json, body, headers; emptied per test) .status_code."""
    _slack_session.clear()
    _slack_session.status_code = 200
    return _slack_session


@pytest.fixture
def midaz_env(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., MidazEnv]]:
    """Factory: ``midaz_env(revision="r1")`` -> a fresh MidazEnv whose Airflow connection env vars are set."""
    created: list[MidazEnv] = []

    def factory(revision: str = "r1", **kwargs: object) -> MidazEnv:
        env = local_stack.new_env(revision, **kwargs)  # type: ignore[arg-type]
        created.append(env)
        for key, value in env.airflow_conn_env().items():
            monkeypatch.setenv(key, value)
        return env

    yield factory
    if not os.environ.get("RECON_TEST_KEEP_DATA"):
        for env in created:
            local_stack.drop_env(env)


def startup_summary() -> str:
    """One line: how long each throwaway server took to start (empty when none started)."""
    parts = [f"{name} {secs:.2f}s" for stack in STACKS for name, secs in stack.startup_times().items()]
    return "throwaway servers started: " + ", ".join(parts) if parts else ""
