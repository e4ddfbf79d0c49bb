"""What every check shares: its context (window, revision, params, stores) and the SQL-file convention.

SQL invariants live in `include/reconciliation/sql/{common,r1,r2}/<check>/<db>__<kind>[__<variant>].sql`.
A file under the revision folder replaces the common file of the same name for that revision (an empty
file there disables it). Each file is a SELECT returning the violating rows, readable on its own (header
comment: the invariant and its reference section), with:
- a column `entity` (the entity string of catalog.py), optionally `severity` (a revision rule),
- id columns named like Violation fields (organization_id, ledger_id, transaction_id, operation_id,
  balance_id, account_id, redis_key, collection, entity_id): copied onto the violation,
- any other columns: the evidence, copied into `details` (amounts as exact strings).
Files named `<db>__metrics__<name>.sql` return one row of metrics instead (a column `in_flight` adds to
the in-flight count). Placeholders are `:name` (see `CheckContext.sql_params`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from reconciliation import config
from reconciliation.catalog import BY_KIND
from reconciliation.config import Params
from reconciliation.result import ENTITY_FIELDS, CheckResult, Violation, jsonable
from reconciliation.window import Window

SQL_ROOT = Path(__file__).resolve().parent.parent / "sql"
DATABASES = ("onboarding", "transaction")


@dataclass
class CheckContext:
    """Everything a check needs; built by the DAG task (or a test) from the run's params and preflight."""

    window: Window
    revision: str = "r1"
    params: Params = field(default_factory=Params)
    onboarding_conn_id: str = config.CONN_ONBOARDING
    transaction_conn_id: str = config.CONN_TRANSACTION
    redis_conn_id: str = config.CONN_REDIS
    mongo_conn_id: str = config.CONN_MONGO
    extra: dict[str, Any] = field(default_factory=dict)

    def conn_id(self, db: str) -> str:
        return {"onboarding": self.onboarding_conn_id, "transaction": self.transaction_conn_id}[db]

    def sql_params(self) -> dict[str, Any]:
        gap_fix = datetime.combine(config.version_gap_fix_date(), dtime(0), tzinfo=UTC)
        return {
            **self.window.sql_params(),
            "revision": self.revision,
            "is_r2": self.revision == "r2",
            "grace": self.window.grace,
            "hard_grace": self.window.hard_grace,
            "pending_max_age": self.params.pending_max_age,
            "gap_fix_at": gap_fix,
            "max_samples": self.params.max_samples,
        }

    def new_result(self, name: str) -> CheckResult:
        return CheckResult(name=name, window=self.window.to_dict(), max_samples=self.params.max_samples)

    # ---- SQL files ----
    def sql_files(self, check: str, db: str) -> dict[str, Path]:
        """name -> file for this revision, revision files overriding common ones."""
        files: dict[str, Path] = {}
        for folder in ("common", self.revision):
            base = SQL_ROOT / folder / check
            if base.is_dir():
                for f in sorted(base.glob(f"{db}__*.sql")):
                    files[f.stem] = f
        return {k: v for k, v in files.items() if v.read_text().strip()}

    def load_sql(self, check: str, name: str) -> str:
        for folder in (self.revision, "common"):
            f = SQL_ROOT / folder / check / f"{name}.sql"
            if f.exists():
                return f.read_text()
        raise FileNotFoundError(f"no SQL file {name}.sql for check {check} at {self.revision}")

    def run_sql_invariants(self, check: str, result: CheckResult, dbs: tuple[str, ...] = DATABASES) -> None:
        """Run every invariant file of the check as one GE suite per database; add the violations."""
        from reconciliation.checks.ge import SqlInvariant, SqlSuite
        from reconciliation.stores.postgres import read_only_uri, render

        params = self.sql_params()
        for db in dbs:
            files = self.sql_files(check, db)
            invariants, metric_files = [], []
            for stem, path in files.items():
                parts = stem.split("__")
                if len(parts) >= 2 and parts[1] == "metrics":
                    metric_files.append(path)
                    continue
                kind = parts[1]
                if kind not in BY_KIND:
                    raise ValueError(f"{path.name}: kind {kind!r} is not in catalog.py")
                invariants.append(SqlInvariant(kind=stem, sql=render(path.read_text(), params)))
            if invariants:
                t0 = time.monotonic()
                docs = self.extra.get("gx_docs_dir")
                suite = SqlSuite(
                    f"{check}_{db}", read_only_uri(self.conn_id(db)), invariants, self.params.max_samples,
                    docs_dir=str(Path(docs) / check / db) if docs else None,
                )
                outcomes = suite.run()
                if docs:
                    result.metrics.setdefault("gx_docs", {})[db] = str(Path(docs) / check / db / "index.html")
                result.metrics[f"{db}_sql_seconds"] = round(time.monotonic() - t0, 3)
                for stem, outcome in outcomes.items():
                    if outcome.exception:
                        raise RuntimeError(f"{check}: {stem} could not be evaluated: {outcome.exception}")
                    kind = stem.split("__")[1]
                    add_rows(result, check, kind, outcome.rows, outcome.total)
            for path in metric_files:
                self.run_metrics(db, path.read_text(), params, result)

    def run_metrics(self, db: str, sql: str, params: dict[str, Any], result: CheckResult) -> None:
        from reconciliation.stores.postgres import read_only, render

        with read_only(self.conn_id(db)) as conn, conn.cursor() as cur:
            cur.execute(render(sql, params))
            row = cur.fetchone()
            names = [d.name for d in cur.description or []]
        for name, value in zip(names, row or (), strict=False):
            if name == "in_flight":
                result.in_flight += int(value or 0)
            else:
                result.metrics[name] = jsonable(value)


def make_violation(check: str, kind: str, entity: str, *, severity: str | None = None, **fields: Any) -> Violation:
    """A violation with the catalogue's severity and hint; id fields go on the violation, the rest to details."""
    meta = BY_KIND[kind]
    if meta.check != check:
        raise ValueError(f"kind {kind} belongs to check {meta.check}, not {check}")
    ids = {k: (str(v) if v is not None else None) for k, v in fields.items() if k in ENTITY_FIELDS}
    details = {k: jsonable(v) for k, v in fields.items() if k not in ENTITY_FIELDS and v is not None}
    if "details" in fields and isinstance(fields["details"], dict):
        details.pop("details", None)
        details.update(jsonable(fields["details"]))
    return Violation(
        check=check,
        kind=kind,
        severity=severity or meta.severity,
        entity=str(entity),
        hint=meta.hint,
        details=details,
        **ids,
    )


def add_rows(result: CheckResult, check: str, kind: str, rows: list[dict[str, Any]], total: int) -> None:
    """Turn an invariant's sampled rows into violations; the exact total counts beyond the samples.

    Rows may carry their own severity (revision rules); the remainder beyond the samples is counted
    at the severity of the sampled rows (or the catalogue's when none were sampled)."""
    counted = 0
    last_severity = BY_KIND[kind].severity
    for row in rows:
        row = dict(row)
        entity = row.pop("entity", None)
        if entity is None:
            raise ValueError(f"{check}/{kind}: SQL row has no 'entity' column")
        severity = row.pop("severity", None) or BY_KIND[kind].severity
        last_severity = severity
        if severity == "info":
            row_v = make_violation(check, kind, entity, severity=severity, **row)
            if len(result.samples) < result.max_samples:
                result.samples.append(row_v)
            counted += 1
            continue
        result.add(make_violation(check, kind, entity, severity=severity, **row))
        counted += 1
    remainder = max(0, total - counted)
    if remainder:
        result.truncated = True
        if last_severity == "error":
            result.violations += remainder
        elif last_severity == "warning":
            result.warnings += remainder


def sql_check(name: str, dbs: tuple[str, ...] = DATABASES) -> Callable[[CheckContext], CheckResult]:
    """A check that is nothing but its SQL invariants (the dbt-style case)."""

    def run(ctx: CheckContext) -> CheckResult:
        result = ctx.new_result(name)
        t0 = time.monotonic()
        ctx.run_sql_invariants(name, result, dbs)
        result.metrics["seconds"] = round(time.monotonic() - t0, 3)
        return result.finish()

    run.__name__ = f"run_{name}"
    return run
