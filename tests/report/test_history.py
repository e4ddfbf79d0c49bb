"""History store on SQLite (a file) and PostgreSQL (a throwaway database on the session's server)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from reconciliation.report.history import (
    HistoryStore,
    alert_scope_key,
    check_results_t,
    fingerprints_t,
    occurrences_t,
    resolve_store_url,
    runs_t,
    url_from_connection,
)
from tests.report.factories import (
    DAG,
    DAY0,
    all_passing,
    bad_balance,
    result,
    run,
    unbalanced,
)


def _pg_url(conninfo: str) -> sa.URL:
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(conninfo)
    return sa.URL.create("postgresql+psycopg", username=p.get("user"), password=p.get("password"),
                         host=p.get("host"), port=int(p["port"]) if p.get("port") else None, database=p.get("dbname"))


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> Iterator[sa.URL]:
    """A fresh database for the store on the session's PostgreSQL server (dropped afterwards)."""
    import psycopg

    server = request.getfixturevalue("pg_server")
    name = f"recon_history_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.admin_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _pg_url(server.conninfo(name))
    try:
        yield url
    finally:
        with psycopg.connect(server.admin_conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[HistoryStore]:
    if request.param == "sqlite":
        s = HistoryStore(f"sqlite:///{tmp_path / 'hist' / 'history.db'}")
    else:
        s = HistoryStore(request.getfixturevalue("pg_database"))
    try:
        yield s
    finally:
        s.dispose()


def _count(store: HistoryStore, table: sa.Table, **where: object) -> int:
    q = sa.select(sa.func.count()).select_from(table)
    for col, value in where.items():
        q = q.where(table.c[col] == value)
    with store.engine.connect() as conn:
        return int(conn.execute(q).scalar() or 0)


def test_new_persisting_resolved_and_unverified(store: HistoryStore, tmp_path) -> None:
    a, b = bad_balance("bal-a"), bad_balance("bal-b")
    c = unbalanced("txn-c")
    out = tmp_path / "reports"

    r1 = run(store, out, 0, all_passing(balances=result("balances", a, b)))
    assert r1["fingerprints"] == {a.fingerprint: "new", b.fingerprint: "new"}
    assert r1["previous_run"] is None

    r2 = run(store, out, 1, all_passing(balances=result("balances", b), double_entry=result("double_entry", c)))
    assert r2["fingerprints"] == {b.fingerprint: "persisting", c.fingerprint: "new", a.fingerprint: "resolved"}
    assert r2["previous_run"]["run_id"] == r1["run_id"]
    assert [f["entity"] for f in r2["resolved"]] == ["bal-a"]

    # balances could not run: b may still be there -> unverified (stays open); c's check passed -> resolved
    r3 = run(store, out, 2, all_passing(balances=None, double_entry=result("double_entry")),
             errors={"balances": "ConnectionError: timeout"})
    assert r3["fingerprints"] == {b.fingerprint: "unverified", c.fingerprint: "resolved"}

    # the open set survives the errored run: b is judged again and now resolves
    r4 = run(store, out, 3, all_passing())
    assert r4["fingerprints"] == {b.fingerprint: "resolved"}

    fps = {f["entity"]: f for f in store.fingerprints(dag_id=DAG, scope="window")}
    assert fps["bal-a"]["resolved_run"] == r2["run_id"]
    assert fps["bal-b"]["first_seen_run"] == r1["run_id"] and fps["bal-b"]["last_seen_run"] == r2["run_id"]
    assert fps["bal-b"]["resolved_run"] == r4["run_id"]
    assert fps["txn-c"]["resolved_run"] == r3["run_id"]
    assert store.fingerprints(dag_id=DAG, open_only=True) == []
    states = {o["entity"]: o["state"] for o in store.occurrences(r3["run_id"])}
    assert states == {"bal-b": "unverified", "txn-c": "resolved"}


def test_truncated_check_does_not_resolve_unsampled_findings(store: HistoryStore, tmp_path) -> None:
    a, b = bad_balance("bal-a"), bad_balance("bal-b")
    run(store, tmp_path, 0, all_passing(balances=result("balances", a, b)))
    # a flood: only b is in the samples; a may well be among the unsampled rest
    r2 = run(store, tmp_path, 1, all_passing(balances=result("balances", b, extra=5000)))
    assert r2["fingerprints"] == {b.fingerprint: "persisting", a.fingerprint: "unsampled"}
    assert r2["resolved"] == [] and [u["state"] for u in r2["unverified"]] == ["unsampled"]
    # seen again in a later sample: it was never gone, so it persists
    r3 = run(store, tmp_path, 2, all_passing(balances=result("balances", a, extra=5000)))
    assert r3["fingerprints"] == {a.fingerprint: "persisting", b.fingerprint: "unsampled"}
    assert {f["entity"]: f["state"] for f in store.fingerprints()} == {"bal-a": "persisting", "bal-b": "unsampled"}
    assert [f["entity"] for f in store.fingerprints(open_only=True)] == ["bal-a"]


def test_a_lasting_flood_does_not_grow_the_open_set(store: HistoryStore, tmp_path) -> None:
    for day in range(4):  # each run samples 50 other entities of a flood
        flood = result("balances", *[bad_balance(f"d{day}-{i}") for i in range(50)], extra=10**6)
        report = run(store, tmp_path, day, all_passing(balances=flood))
        assert len(report["unverified"]) == (50 if day else 0)
        assert _count(store, occurrences_t, run_id=report["run_id"]) == (100 if day else 50)


def test_rerunning_a_window_replaces_its_rows(store: HistoryStore, tmp_path) -> None:
    a, b = bad_balance("bal-a"), bad_balance("bal-b")
    first = run(store, tmp_path, 0, all_passing(balances=result("balances", a, b)), run_id="scheduled__day0")
    run(store, tmp_path, 1, all_passing(balances=result("balances", a)))
    # a manual re-run of day 1 (another run id) after the data was fixed
    rerun = run(store, tmp_path, 1, all_passing(), run_id="manual__rerun_day1",
                generated_at=DAY0 + timedelta(days=5))
    assert rerun["previous_run"]["run_id"] == first["run_id"]
    assert rerun["fingerprints"] == {a.fingerprint: "resolved", b.fingerprint: "resolved"}
    assert _count(store, runs_t) == 2
    assert _count(store, check_results_t) == 16
    assert _count(store, occurrences_t, run_id="manual__rerun_day1") == 2
    assert [r["run_id"] for r in store.runs(dag_id=DAG)] == ["manual__rerun_day1", "scheduled__day0"]
    # the same run id again (a retried report task) replaces too
    run(store, tmp_path, 1, all_passing(), run_id="manual__rerun_day1")
    assert _count(store, runs_t) == 2 and _count(store, check_results_t) == 16
    assert _count(store, fingerprints_t) == 2
    fps = {f["entity"]: f for f in store.fingerprints()}
    assert fps["bal-a"]["last_seen_run"] == "scheduled__day0"  # the replaced day-1 sighting is gone
    assert fps["bal-a"]["resolved_run"] == "manual__rerun_day1"


def test_previous_is_by_window_not_by_insertion(store: HistoryStore, tmp_path) -> None:
    a = bad_balance("bal-a")
    late = run(store, tmp_path, 5, all_passing(balances=result("balances", a)))
    early = run(store, tmp_path, 1, all_passing(balances=result("balances", a)))  # a backfill
    assert early["previous_run"] is None and early["fingerprints"] == {a.fingerprint: "new"}
    fp = store.fingerprints()[0]
    assert fp["first_seen_run"] == early["run_id"] and fp["last_seen_run"] == late["run_id"]
    mid = run(store, tmp_path, 3, all_passing(balances=result("balances", a)))
    assert mid["previous_run"]["run_id"] == early["run_id"]
    assert mid["fingerprints"] == {a.fingerprint: "persisting"}


def test_scopes_and_dags_are_separate(store: HistoryStore, tmp_path) -> None:
    a = bad_balance("bal-a")
    run(store, tmp_path, 0, all_passing(balances=result("balances", a)))
    full = run(store, tmp_path / "f", 0, all_passing(balances=result("balances", a)), scope="full",
               dag_id="midaz_reconciliation_full")
    assert full["previous_run"] is None and full["fingerprints"] == {a.fingerprint: "new"}
    assert len(store.fingerprints()) == 2


def test_queries_for_the_api(store: HistoryStore, tmp_path) -> None:
    for day in range(4):
        counts = {"onboarding.account": 100 + day}
        res = all_passing(balances=result("balances", *[bad_balance(f"b{i}") for i in range(day)]),
                          counts=result("counts", metrics={"seconds": 0.1, "counts": counts}))
        run(store, tmp_path, day, res)
    trend = store.trend("balances", limit=3, dag_id=DAG, scope="window")
    assert [t["violations"] for t in trend] == [1, 2, 3]  # oldest first
    assert [t["status"] for t in trend] == ["failed"] * 3
    assert store.previous_counts(DAG, "window") == {"onboarding.account": 103}
    assert store.previous_counts(DAG, "window", before=DAY0 + timedelta(days=3)) == {"onboarding.account": 101}
    assert store.previous_counts(DAG, "full") is None
    day2 = store.runs(window_start=DAY0 + timedelta(days=2))
    assert len(day2) == 1 and day2[0]["status"] == "failed" and day2[0]["counts"] == {"onboarding.account": 102}
    assert len(store.runs(check="balances", status="passed")) == 1
    assert len(store.runs(since=DAY0 + timedelta(days=2), until=DAY0 + timedelta(days=3))) == 2
    detail = store.run(day2[0]["run_id"])
    assert {c["check"] for c in detail["checks"]} >= {"balances", "counts"}
    assert detail["findings"] == {"persisting": 1, "new": 1}
    rows = store.check_results(check="balances", limit=10)
    assert [r["violations"] for r in rows] == [3, 2, 1, 0]
    assert rows[0]["duration"] == 1.25
    json.dumps(store.runs())  # the API can serve these as they are


def test_alert_state_round_trip_and_cleared_by_a_pass(store: HistoryStore, tmp_path) -> None:
    key = alert_scope_key(DAG, "window")
    failed = run(store, tmp_path, 0, all_passing(balances=result("balances", bad_balance("b"))))
    assert store.alert_state(key) is None
    store.record_alert(key, failed)
    state = store.alert_state(key)
    assert state["last_alert_run"] == failed["run_id"] and len(state["last_signature"]) == 64
    store.record_alert(key, failed)  # upsert, not a second row
    assert store.alert_state(key)["last_alert_run"] == failed["run_id"]
    run(store, tmp_path, -1, all_passing())  # an older passing window (backfill) keeps the episode open
    assert store.alert_state(key) is not None
    run(store, tmp_path, 1, all_passing())
    assert store.alert_state(key) is None


def test_sqlite_fallback_when_the_connection_is_not_defined(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AIRFLOW_CONN_RECONCILIATION_STORE", raising=False)
    url = resolve_store_url()
    assert url.get_backend_name() == "sqlite"
    assert url.database == str(tmp_path / "home" / "reconciliation" / "history.db")
    store = HistoryStore.from_airflow()
    store.dispose()
    assert (tmp_path / "home" / "reconciliation" / "history.db").exists()


def test_sqlite_connection(tmp_path, monkeypatch) -> None:
    path = tmp_path / "store" / "h.db"
    monkeypatch.setenv("AIRFLOW_CONN_RECONCILIATION_STORE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    store = HistoryStore.from_airflow()
    run(store, tmp_path / "r", 0, all_passing())
    store.dispose()
    assert path.exists()


def test_postgres_connection_and_no_password_in_repr(pg_server, pg_database, monkeypatch, tmp_path) -> None:
    conn = {"conn_type": "postgres", "host": pg_database.host, "port": pg_database.port,
            "login": pg_database.username, "schema": pg_database.database, "extra": {"cursor": "dictcursor"}}
    monkeypatch.setenv("AIRFLOW_CONN_RECONCILIATION_STORE", json.dumps(conn))
    store = HistoryStore.from_airflow()
    assert store.engine.dialect.name == "postgresql"
    assert run(store, tmp_path, 0, all_passing())["status"] == "passed"
    store.dispose()
    fake = SimpleNamespace(conn_type="postgres", host="db", port=5432, login="recon", password="hunter2-secret",
                           schema="history", extra_dejson={"sslmode": "require", "cursor": "x"})
    url = url_from_connection(fake)
    assert "hunter2-secret" not in str(url) and "hunter2-secret" not in repr(url)
    assert url.query == {"sslmode": "require", "connect_timeout": "10"}
    # trust auth ignores the password: a real store whose URL carries one must never show it
    with_pw = HistoryStore(pg_database.set(password="hunter2-secret"))
    assert "hunter2-secret" not in repr(with_pw)
    with_pw.dispose()
