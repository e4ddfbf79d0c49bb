"""DAG integrity: imports cleanly with no connections, cheap to parse, right shape, params form, retries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
CHECK_TASKS = {
    "check_balances", "check_double_entry", "check_orphans", "check_referential",
    "check_redis_sync", "check_settlement", "check_metadata", "check_counts",
}

PARSE_PROBE = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
t0 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - t0
heavy = sorted(m for m in ("great_expectations", "pandas", "psycopg", "redis", "pymongo")
               if m in sys.modules)
stats = [{"file": s.file, "duration": s.duration.total_seconds() if hasattr(s.duration, "total_seconds") else float(s.duration)}
         for s in bag.dagbag_stats]
print("RESULT" + json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                              "dags": sorted(bag.dag_ids), "elapsed": elapsed, "heavy": heavy, "stats": stats}))
"""


def _parse_in_clean_process() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(DAGS)], env=env, capture_output=True, text=True, timeout=120
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")), None)
    assert line, f"parse probe failed: {out.stderr[-3000:]}"
    return json.loads(line[len("RESULT"):])


@pytest.fixture(scope="module")
def parsed() -> dict:
    return _parse_in_clean_process()


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_parses_without_connections_or_heavy_imports(parsed: dict) -> None:
    assert parsed["errors"] == {}
    assert parsed["dags"] == ["midaz_reconciliation", "midaz_reconciliation_full"]
    # Parsing must not pay for GE, pandas or store drivers (they load inside tasks).
    assert parsed["heavy"] == []


def test_parse_time_is_bounded(parsed: dict) -> None:
    durations = [s["duration"] for s in parsed["stats"]]
    assert durations, "DagBag recorded no file statistics"
    assert max(durations) < 2.0, f"DAG file took {max(durations):.2f}s to parse"


@pytest.mark.parametrize("dag_id,scope", [("midaz_reconciliation", "window"), ("midaz_reconciliation_full", "full")])
def test_dag_shape(bag, dag_id: str, scope: str) -> None:
    dag = bag.dags.get(dag_id)
    assert dag is not None
    ids = {t.task_id for t in dag.tasks}
    assert ids == {"preflight", "compile_report"} | CHECK_TASKS
    for tid in CHECK_TASKS:
        task = dag.get_task(tid)
        assert task.upstream_task_ids == {"preflight"}
        assert task.downstream_task_ids == {"compile_report"}
    report = dag.get_task("compile_report")
    assert report.trigger_rule == "all_done"
    assert report.upstream_task_ids == CHECK_TASKS | {"preflight"}
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert {"midaz", "reconciliation", scope} <= set(dag.tags)
    assert dag.doc_md and "double_entry" in dag.doc_md
    assert dag.params["scope"] == scope


def test_retries_and_backoff(bag) -> None:
    for dag in bag.dags.values():
        for task in dag.tasks:
            if task.task_id == "compile_report":
                assert task.retries == 0  # it must not send a second digest
                continue
            assert task.retries >= 2, task.task_id
            assert task.retry_exponential_backoff


def test_params_form_refuses_bad_values(bag) -> None:
    from airflow.sdk.definitions.param import ParamsDict

    dag = bag.dags["midaz_reconciliation"]
    good = ParamsDict(dict(dag.params.items()))
    good.validate()
    schema = {k: dag.params.get_param(k).schema for k in dag.params}
    assert schema["scope"]["enum"] == ["window", "full"]
    assert schema["schema"]["enum"] == ["auto", "r1", "r2"]
    for key, bad in [("scope", "everything"), ("grace_minutes", -1), ("checks", ["nonsense"]),
                     ("max_samples", 0), ("schema", "r3")]:
        p = dag.params.get_param(key)
        with pytest.raises(Exception) as info:
            p.resolve(bad)
        assert key in str(info.value) or "valid" in str(info.value).lower()


def test_param_validation_messages() -> None:
    from reconciliation.config import ParamError, parse_params

    assert parse_params({}).checks[0] == "balances"
    assert parse_params({"checks": "orphans,balances"}).checks == ["balances", "orphans"]
    for raw, text in [({"scope": "x"}, "scope"), ({"grace_minutes": "abc"}, "grace_minutes"),
                      ({"grace_minutes": 30, "hard_grace_minutes": 10}, "hard_grace_minutes"),
                      ({"checks": ["nope"]}, "unknown checks"), ({"max_samples": 0}, "max_samples")]:
        with pytest.raises(ParamError, match=text):
            parse_params(raw)
