"""The history store (DESIGN §3 Report): runs, check results, violation fingerprints and alert state.

It lives on the Airflow connection `reconciliation_store` (PostgreSQL or SQLite) and falls back to a SQLite
file under AIRFLOW_HOME. Every write of one run happens in one transaction, and re-running a window (same
dag_id + scope + window_start + window_end) replaces that window's rows instead of adding a second copy.

New / persisting / resolved is judged against the *previous* run of the same dag_id + scope: the latest
other run whose window ends at or before this one's. A finding is only called resolved when its check ran
to completion this time and listed every finding: a store that is down must never make the open findings
look fixed. An open finding whose check could not run (error, skipped, missing) is `unverified`: it stays
open and is carried to the next run. One whose check ran but kept only a sample (truncated: a flood) is
`unsampled`: it is neither resolved nor carried, so a lasting flood cannot grow the open set run after run
(the open set of a run is bounded by its samples plus what it carried).

Tables (SQLAlchemy Core, created with `create_all`; prefixed `recon_` so a shared database stays tidy):
  recon_runs            (dag_id, run_id) PK, scope, window_start, window_end, revision, status,
                        generated_at, report_path, counts JSON
  recon_check_results   (dag_id, run_id, check) PK, status, violations, warnings, in_flight, duration,
                        error, truncated, samples
  recon_fingerprints    (dag_id, scope, fingerprint) PK, check, kind, entity, severity, first_seen_run,
                        first_seen_at, last_seen_run, last_seen_at, resolved_at, resolved_run,
                        state + state_run (its state in the latest run, by window, that mentions it)
  recon_occurrences     (dag_id, run_id, fingerprint) PK, check, kind, severity,
                        state new|persisting|unverified|unsampled|resolved
  recon_alerts          scope (the alert scope key, "<dag_id>:<scope>") PK, last_signature, last_alert_run,
                        last_alert_at
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from reconciliation.config import CONN_STORE
from reconciliation.sanitize import sanitize

OPEN_STATES = ("new", "persisting", "unverified")  # carried to the next run
KNOWN_STATES = (*OPEN_STATES, "unsampled")  # a finding seen here again is persisting, not new
SEEN_STATES = ("new", "persisting")
COMPLETED_STATUSES = ("passed", "failed", "warning")
TRACKED_SEVERITIES = ("error", "warning")
_CHUNK = 400  # IN-list size: well under SQLite's bound-parameter limit

# libpq parameters an Airflow postgres connection's extra may carry; anything else (e.g. "cursor") is
# Airflow-specific and would make psycopg refuse the URL.
_LIBPQ_EXTRA = {
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout", "application_name",
    "options", "target_session_attrs", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "gssencmode", "sslnegotiation",
}

metadata = sa.MetaData()

runs_t = sa.Table(
    "recon_runs", metadata,
    sa.Column("dag_id", sa.String(250), primary_key=True),
    sa.Column("run_id", sa.String(250), primary_key=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revision", sa.String(16), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("report_path", sa.Text, nullable=True),
    sa.Column("counts", sa.JSON, nullable=True),
    sa.Index("ix_recon_runs_scope_end", "dag_id", "scope", "window_end"),
)

check_results_t = sa.Table(
    "recon_check_results", metadata,
    sa.Column("dag_id", sa.String(250), primary_key=True),
    sa.Column("run_id", sa.String(250), primary_key=True),
    sa.Column("check", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("violations", sa.BigInteger, nullable=False, default=0),
    sa.Column("warnings", sa.BigInteger, nullable=False, default=0),
    sa.Column("in_flight", sa.BigInteger, nullable=False, default=0),
    sa.Column("duration", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("truncated", sa.Boolean, nullable=False, default=False),
    sa.Column("samples", sa.Integer, nullable=False, default=0),
    sa.Index("ix_recon_check_results_check", "check"),
)

fingerprints_t = sa.Table(
    "recon_fingerprints", metadata,
    sa.Column("dag_id", sa.String(250), primary_key=True),
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("check", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(128), nullable=False),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("first_seen_run", sa.String(250), nullable=True),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_seen_run", sa.String(250), nullable=True),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_run", sa.String(250), nullable=True),
    sa.Column("state", sa.String(16), nullable=True),
    sa.Column("state_run", sa.String(250), nullable=True),
    sa.Index("ix_recon_fingerprints_check", "check"),
)

occurrences_t = sa.Table(
    "recon_occurrences", metadata,
    sa.Column("dag_id", sa.String(250), primary_key=True),
    sa.Column("run_id", sa.String(250), primary_key=True),
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("check", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(128), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Index("ix_recon_occurrences_fp", "dag_id", "fingerprint"),
)

alerts_t = sa.Table(
    "recon_alerts", metadata,
    sa.Column("scope", sa.String(300), primary_key=True),
    sa.Column("last_signature", sa.String(128), nullable=True),
    sa.Column("last_alert_run", sa.String(250), nullable=True),
    sa.Column("last_alert_at", sa.DateTime(timezone=True), nullable=True),
)


# ---------------------------------------------------------------------------------------------- helpers
def alert_scope_key(dag_id: str, scope: str) -> str:
    """The alert-state key of a DAG + scope (notify.py builds the same string)."""
    return f"{dag_id}:{scope}"


def _utc(value: Any) -> datetime | None:
    """ISO text or datetime -> aware UTC datetime (SQLite hands back naive UTC)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _iso(value: Any) -> str | None:
    dt = _utc(value)
    return dt.isoformat() if dt else None


def _chunks(items: Iterable[str], size: int = _CHUNK) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _row(row: Any) -> dict[str, Any]:
    """A result row as a JSON-ready dict (datetimes as ISO text)."""
    out = {}
    for key, value in row._mapping.items():
        out[key] = _iso(value) if isinstance(value, datetime) else value
    return out


def default_sqlite_path() -> Path:
    """$AIRFLOW_HOME/reconciliation/history.db: the store when no connection is configured."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return Path(home) / "reconciliation" / "history.db"


def url_from_connection(conn: Any) -> URL:
    """An Airflow Connection -> SQLAlchemy URL object (built field by field: the password never sits in a string)."""
    conn_type = (conn.conn_type or "").lower()
    if conn_type in ("postgres", "postgresql"):
        extra = {}
        try:
            extra = dict(conn.extra_dejson or {})
        except Exception:  # malformed extra: connect without it
            extra = {}
        query = {k: str(v) for k, v in extra.items() if k in _LIBPQ_EXTRA and v not in (None, "")}
        query.setdefault("connect_timeout", "10")
        return URL.create(
            "postgresql+psycopg",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=int(conn.port) if conn.port else None,
            database=conn.schema or None,
            query=query,
        )
    if conn_type == "sqlite":
        path = conn.host or conn.schema or str(default_sqlite_path())
        return URL.create("sqlite", database=path)
    raise ValueError(f"connection {CONN_STORE!r} has type {conn_type!r}; use postgres or sqlite")


def resolve_store_url(conn_id: str = CONN_STORE) -> URL:
    """The store's URL from the Airflow connection, or the default SQLite file when it is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        path = default_sqlite_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return URL.create("sqlite", database=str(path))
    return url_from_connection(conn)


def _absence_means(check: dict[str, Any] | None) -> str:
    """What it means that an open finding is missing from this run's samples of its check."""
    if check is None or check.get("status") not in COMPLETED_STATUSES:
        return "unverified"  # the check could not look: keep the finding open
    if check.get("truncated"):
        return "unsampled"  # the check looked but kept only a sample
    return "resolved"  # the check listed every finding: it is gone


def _tracked_samples(check: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for sample in check.get("samples") or ():
        if sample.get("severity") in TRACKED_SEVERITIES and sample.get("fingerprint"):
            yield sample


# ------------------------------------------------------------------------------------------------ store
class HistoryStore:
    """Read/write access to the history tables; cheap to construct, safe to share within a process."""

    def __init__(self, url: str | URL, *, engine: Engine | None = None) -> None:
        if engine is None:
            url_obj = sa.make_url(url) if isinstance(url, str) else url
            kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True}
            if url_obj.get_backend_name() == "sqlite":
                if url_obj.database and url_obj.database != ":memory:":
                    Path(url_obj.database).parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"timeout": 30}
                kwargs.pop("pool_pre_ping")
            engine = sa.create_engine(url_obj, **kwargs)
        self.engine = engine
        metadata.create_all(self.engine, checkfirst=True)

    @classmethod
    def from_airflow(cls, conn_id: str = CONN_STORE) -> HistoryStore:
        """The store of the Airflow connection `reconciliation_store` (or the SQLite fallback)."""
        return cls(resolve_store_url(conn_id))

    def __repr__(self) -> str:
        return f"HistoryStore({self.engine.url.render_as_string(hide_password=True)})"

    def dispose(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------------------------------- writing
    def record(self, report: dict[str, Any]) -> dict[str, Any]:
        """Store one run and judge its findings against the previous run of the same dag_id + scope.

        Returns {"fingerprints": {fp: new|persisting|resolved|unverified|unsampled}, "resolved": [...],
        "unverified": [...] (unverified and unsampled, each with its `state`), "previous_run": {...} | None,
        "replaced_runs": [...]}."""
        dag_id = str(report["dag_id"])
        run_id = str(report["run_id"])
        window = report.get("window") or {}
        scope = str(report.get("scope") or window.get("scope") or "window")
        generated_at = _utc(report.get("generated_at")) or datetime.now(UTC)
        w_start = _utc(window.get("start"))
        w_end = _utc(window.get("end")) or _utc(window.get("now")) or generated_at
        checks: list[dict[str, Any]] = list(report.get("checks") or [])

        with self.engine.begin() as conn:
            # 1. replace: earlier rows of this window (any run_id) and of this run_id (a retried report task)
            same_window = sa.and_(
                runs_t.c.dag_id == dag_id, runs_t.c.scope == scope, runs_t.c.window_end == w_end,
                runs_t.c.window_start.is_(None) if w_start is None else runs_t.c.window_start == w_start,
            )
            old = conn.execute(
                sa.select(runs_t.c.run_id).where(
                    sa.or_(same_window, sa.and_(runs_t.c.dag_id == dag_id, runs_t.c.run_id == run_id))
                )
            ).scalars().all()
            touched: set[str] = set()
            for old_run in old:
                touched.update(
                    conn.execute(
                        sa.select(occurrences_t.c.fingerprint).where(
                            occurrences_t.c.dag_id == dag_id, occurrences_t.c.run_id == old_run
                        )
                    ).scalars()
                )
                for table in (occurrences_t, check_results_t, runs_t):
                    conn.execute(sa.delete(table).where(table.c.dag_id == dag_id, table.c.run_id == old_run))

            # 2. the previous run and what it left open
            previous = self._previous_run(conn, dag_id, scope, w_end)
            prev_open: dict[str, dict[str, Any]] = {}
            prev_known: set[str] = set()
            if previous is not None:
                for row in conn.execute(
                    sa.select(occurrences_t).where(
                        occurrences_t.c.dag_id == dag_id,
                        occurrences_t.c.run_id == previous["run_id"],
                        occurrences_t.c.state.in_(KNOWN_STATES),
                    )
                ):
                    prev_known.add(row.fingerprint)
                    if row.state in OPEN_STATES:
                        prev_open[row.fingerprint] = dict(row._mapping)

            # 3. judge
            statuses: dict[str, str] = {}
            occ_rows: list[dict[str, Any]] = []
            info: dict[str, dict[str, Any]] = {}  # fingerprint -> check/kind/entity/severity of this run
            by_name = {c["name"]: c for c in checks}
            for check in checks:
                for sample in _tracked_samples(check):
                    fp = sample["fingerprint"]
                    if fp in statuses:
                        continue
                    state = "persisting" if fp in prev_known else "new"
                    statuses[fp] = state
                    info[fp] = {"check": check["name"], "kind": sample["kind"], "entity": str(sample.get("entity", "")),
                                "severity": sample["severity"]}
                    occ_rows.append({"dag_id": dag_id, "run_id": run_id, "fingerprint": fp, "check": check["name"],
                                     "kind": sample["kind"], "severity": sample["severity"], "state": state})
            resolved_fps: list[str] = []
            unverified_fps: list[str] = []
            for fp, prev in prev_open.items():
                if fp in statuses:
                    continue
                state = _absence_means(by_name.get(prev["check"]))
                statuses[fp] = state
                (resolved_fps if state == "resolved" else unverified_fps).append(fp)
                occ_rows.append({"dag_id": dag_id, "run_id": run_id, "fingerprint": fp, "check": prev["check"],
                                 "kind": prev["kind"], "severity": prev["severity"], "state": state})

            # 4. write the run
            conn.execute(sa.insert(runs_t).values(
                dag_id=dag_id, run_id=run_id, scope=scope, window_start=w_start, window_end=w_end,
                revision=report.get("revision"), status=str(report.get("status") or "error"),
                generated_at=generated_at, report_path=(report.get("paths") or {}).get("json"),
                counts=report.get("counts") or {},
            ))
            cr_rows = [{
                "dag_id": dag_id, "run_id": run_id, "check": c["name"], "status": c.get("status") or "error",
                "violations": int(c.get("violations") or 0), "warnings": int(c.get("warnings") or 0),
                "in_flight": int(c.get("in_flight") or 0), "duration": c.get("duration"),
                "error": sanitize(c["error"]) if c.get("error") else None, "truncated": bool(c.get("truncated")),
                "samples": len(c.get("samples") or ()),
            } for c in checks]
            if cr_rows:
                conn.execute(sa.insert(check_results_t), cr_rows)
            if occ_rows:
                conn.execute(sa.insert(occurrences_t), occ_rows)

            # 5. fingerprint summaries of everything touched, recomputed from the occurrences
            touched.update(statuses)
            self._refresh_fingerprints(conn, dag_id, scope, touched, info)
            fp_rows = self._fingerprint_rows(conn, dag_id, scope, resolved_fps + unverified_fps)

            # 6. a passing run at the head of its scope ends the alert episode: the next failure alerts again
            if report.get("status") == "passed":
                later = conn.execute(sa.select(sa.func.count()).select_from(runs_t).where(
                    runs_t.c.dag_id == dag_id, runs_t.c.scope == scope, runs_t.c.window_end > w_end)).scalar()
                if not later:
                    conn.execute(sa.delete(alerts_t).where(alerts_t.c.scope == alert_scope_key(dag_id, scope)))

        return {
            "fingerprints": statuses,
            "resolved": [fp_rows[fp] for fp in resolved_fps if fp in fp_rows],
            "unverified": [fp_rows[fp] for fp in unverified_fps if fp in fp_rows],
            "previous_run": previous,
            "replaced_runs": [r for r in old if r != run_id] + ([run_id] if run_id in old else []),
        }

    def _previous_run(self, conn: Connection, dag_id: str, scope: str, w_end: datetime) -> dict[str, Any] | None:
        row = conn.execute(
            sa.select(runs_t.c.run_id, runs_t.c.window_start, runs_t.c.window_end, runs_t.c.status,
                      runs_t.c.generated_at, runs_t.c.report_path)
            .where(runs_t.c.dag_id == dag_id, runs_t.c.scope == scope, runs_t.c.window_end <= w_end)
            .order_by(runs_t.c.window_end.desc(), runs_t.c.generated_at.desc())
            .limit(1)
        ).first()
        return _row(row) if row is not None else None

    def _refresh_fingerprints(self, conn: Connection, dag_id: str, scope: str, fps: set[str],
                              info: dict[str, dict[str, Any]]) -> None:
        """Recompute first/last seen and resolution of `fps` from their occurrences (order-independent:
        a backfill of an old window or a replaced window gives the same summary as running in order)."""
        for batch in _chunks(sorted(fps)):
            existing = {r.fingerprint: dict(r._mapping) for r in conn.execute(
                sa.select(fingerprints_t).where(fingerprints_t.c.dag_id == dag_id, fingerprints_t.c.scope == scope,
                                                fingerprints_t.c.fingerprint.in_(batch)))}
            base = (
                sa.select(occurrences_t.c.fingerprint, occurrences_t.c.state, runs_t.c.run_id, runs_t.c.generated_at,
                          runs_t.c.window_end)
                .join(runs_t, sa.and_(runs_t.c.dag_id == occurrences_t.c.dag_id,
                                      runs_t.c.run_id == occurrences_t.c.run_id))
                .where(occurrences_t.c.dag_id == dag_id, runs_t.c.scope == scope,
                       occurrences_t.c.fingerprint.in_(batch))
            )
            first = self._ranked(conn, base.where(occurrences_t.c.state.in_(SEEN_STATES)), ascending=True)
            last = self._ranked(conn, base.where(occurrences_t.c.state.in_(SEEN_STATES)), ascending=False)
            latest = self._ranked(conn, base, ascending=False)
            conn.execute(sa.delete(fingerprints_t).where(
                fingerprints_t.c.dag_id == dag_id, fingerprints_t.c.scope == scope,
                fingerprints_t.c.fingerprint.in_(batch)))
            rows = []
            for fp in batch:
                if fp not in first:  # no run saw it any more (its window was replaced)
                    continue
                meta = info.get(fp) or existing.get(fp)
                if meta is None:
                    continue
                head = latest[fp]
                resolved = head["state"] == "resolved"
                state = {"state": head["state"], "state_run": head["run_id"]}
                rows.append({
                    "dag_id": dag_id, "scope": scope, "fingerprint": fp, "check": meta["check"], "kind": meta["kind"],
                    "entity": meta["entity"], "severity": meta["severity"],
                    "first_seen_run": first[fp]["run_id"], "first_seen_at": first[fp]["generated_at"],
                    "last_seen_run": last[fp]["run_id"], "last_seen_at": last[fp]["generated_at"],
                    "resolved_run": head["run_id"] if resolved else None,
                    "resolved_at": head["generated_at"] if resolved else None,
                    **state,
                })
            if rows:
                conn.execute(sa.insert(fingerprints_t), rows)

    @staticmethod
    def _ranked(conn: Connection, query: sa.Select, *, ascending: bool) -> dict[str, dict[str, Any]]:
        """The first (or last) occurrence per fingerprint in window order."""
        sub = query.subquery()
        order = (sub.c.window_end.asc(), sub.c.generated_at.asc()) if ascending else (
            sub.c.window_end.desc(), sub.c.generated_at.desc())
        rn = sa.func.row_number().over(partition_by=sub.c.fingerprint, order_by=order).label("rn")
        ranked = sa.select(sub, rn).subquery()
        rows = conn.execute(sa.select(ranked).where(ranked.c.rn == 1))
        return {r.fingerprint: dict(r._mapping) for r in rows}

    def _fingerprint_rows(self, conn: Connection, dag_id: str, scope: str, fps: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for batch in _chunks(fps):
            for row in conn.execute(sa.select(fingerprints_t).where(
                    fingerprints_t.c.dag_id == dag_id, fingerprints_t.c.scope == scope,
                    fingerprints_t.c.fingerprint.in_(batch))):
                out[row.fingerprint] = _row(row)
        return out

    # ----------------------------------------------------------------------------------------- alerts
    def alert_state(self, scope_key: str) -> dict[str, Any] | None:
        """Last alert sent for this scope key ("<dag_id>:<scope>"), or None (never, or cleared by a pass)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(alerts_t).where(alerts_t.c.scope == scope_key)).first()
        return _row(row) if row is not None else None

    def record_alert(self, scope_key: str, report: dict[str, Any], at: datetime | None = None) -> None:
        """Remember that this run's findings were alerted (called after a digest went out)."""
        from reconciliation.report.digest import alert_signature

        values = {"last_signature": alert_signature(report), "last_alert_run": str(report.get("run_id")),
                  "last_alert_at": at or datetime.now(UTC)}
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(alerts_t).where(alerts_t.c.scope == scope_key).values(**values)).rowcount
            if not done:
                conn.execute(sa.insert(alerts_t).values(scope=scope_key, **values))

    def clear_alert(self, scope_key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(alerts_t).where(alerts_t.c.scope == scope_key))

    # ---------------------------------------------------------------------------------------- queries
    def previous_counts(self, dag_id: str, scope: str, *, before: Any = None) -> dict[str, Any] | None:
        """Entity counts of the latest run of dag_id + scope that has counts (the counts check compares
        against them: row counts never decrease). `before` limits it to windows ending before that time."""
        q = (sa.select(runs_t.c.counts, runs_t.c.run_id)
             .where(runs_t.c.dag_id == dag_id, runs_t.c.scope == scope)
             .order_by(runs_t.c.window_end.desc(), runs_t.c.generated_at.desc()))
        if before is not None:
            q = q.where(runs_t.c.window_end < _utc(before))
        with self.engine.connect() as conn:
            for counts, _run in conn.execute(q.limit(50)):
                if counts:
                    return dict(counts)
        return None

    def runs(self, *, dag_id: str | None = None, scope: str | None = None, run_id: str | None = None,
             status: str | None = None, check: str | None = None, window_start: Any = None, window_end: Any = None,
             since: Any = None, until: Any = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Runs, newest window first. `window_start`/`window_end` match exactly; `since`/`until` bound the
        window end; `check` keeps runs that ran that check (its status is added as `check_status`)."""
        q = sa.select(runs_t)
        if check is not None:
            q = (sa.select(runs_t, check_results_t.c.status.label("check_status"),
                           check_results_t.c.violations.label("check_violations"))
                 .join(check_results_t, sa.and_(check_results_t.c.dag_id == runs_t.c.dag_id,
                                                check_results_t.c.run_id == runs_t.c.run_id))
                 .where(check_results_t.c.check == check))
        for col, value in ((runs_t.c.dag_id, dag_id), (runs_t.c.scope, scope), (runs_t.c.run_id, run_id),
                           (runs_t.c.status, status)):
            if value is not None:
                q = q.where(col == value)
        if window_start is not None:
            q = q.where(runs_t.c.window_start == _utc(window_start))
        if window_end is not None:
            q = q.where(runs_t.c.window_end == _utc(window_end))
        if since is not None:
            q = q.where(runs_t.c.window_end >= _utc(since))
        if until is not None:
            q = q.where(runs_t.c.window_end <= _utc(until))
        q = q.order_by(runs_t.c.window_end.desc(), runs_t.c.generated_at.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def run(self, run_id: str, dag_id: str | None = None) -> dict[str, Any] | None:
        """One run with its check results and the counts of its finding states."""
        found = self.runs(run_id=run_id, dag_id=dag_id, limit=2)
        if not found:
            return None
        if len(found) > 1:
            raise ValueError(f"run_id {run_id!r} exists in several DAGs; pass dag_id")
        out = found[0]
        out["checks"] = self.check_results(run_id=run_id, dag_id=out["dag_id"])
        with self.engine.connect() as conn:
            states = conn.execute(
                sa.select(occurrences_t.c.state, sa.func.count())
                .where(occurrences_t.c.dag_id == out["dag_id"], occurrences_t.c.run_id == run_id)
                .group_by(occurrences_t.c.state)).all()
        out["findings"] = {s: int(n) for s, n in states}
        return out

    def check_results(self, *, run_id: str | None = None, dag_id: str | None = None, check: str | None = None,
                      limit: int = 500) -> list[dict[str, Any]]:
        """Per-check rows, newest window first (with the run's window and generated_at)."""
        q = (sa.select(check_results_t, runs_t.c.scope, runs_t.c.window_start, runs_t.c.window_end,
                       runs_t.c.generated_at)
             .join(runs_t, sa.and_(runs_t.c.dag_id == check_results_t.c.dag_id,
                                   runs_t.c.run_id == check_results_t.c.run_id)))
        for col, value in ((check_results_t.c.run_id, run_id), (check_results_t.c.dag_id, dag_id),
                           (check_results_t.c.check, check)):
            if value is not None:
                q = q.where(col == value)
        q = q.order_by(runs_t.c.window_end.desc(), runs_t.c.generated_at.desc(), check_results_t.c.check).limit(limit)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def trend(self, check: str, limit: int = 20, *, dag_id: str | None = None,
              scope: str | None = None) -> list[dict[str, Any]]:
        """The last `limit` results of one check, oldest first (for a sparkline)."""
        q = (sa.select(runs_t.c.run_id, runs_t.c.dag_id, runs_t.c.scope, runs_t.c.window_start, runs_t.c.window_end,
                       runs_t.c.generated_at, check_results_t.c.status, check_results_t.c.violations,
                       check_results_t.c.warnings, check_results_t.c.in_flight, check_results_t.c.duration)
             .join(runs_t, sa.and_(runs_t.c.dag_id == check_results_t.c.dag_id,
                                   runs_t.c.run_id == check_results_t.c.run_id))
             .where(check_results_t.c.check == check))
        if dag_id is not None:
            q = q.where(runs_t.c.dag_id == dag_id)
        if scope is not None:
            q = q.where(runs_t.c.scope == scope)
        q = q.order_by(runs_t.c.window_end.desc(), runs_t.c.generated_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(q)]
        return rows[::-1]

    def fingerprints(self, *, dag_id: str | None = None, scope: str | None = None, check: str | None = None,
                     open_only: bool = False, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        """Finding summaries (first/last seen, resolution, latest state), most recently seen first.
        `open_only`: findings whose latest state is new, persisting or unverified."""
        q = sa.select(fingerprints_t)
        for col, value in ((fingerprints_t.c.dag_id, dag_id), (fingerprints_t.c.scope, scope),
                           (fingerprints_t.c.check, check)):
            if value is not None:
                q = q.where(col == value)
        if open_only:
            q = q.where(fingerprints_t.c.state.in_(OPEN_STATES))
        q = q.order_by(fingerprints_t.c.last_seen_at.desc(), fingerprints_t.c.fingerprint).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def occurrences(self, run_id: str, *, dag_id: str | None = None, state: str | None = None,
                    check: str | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
        """The findings of one run with their state (new/persisting/unverified/unsampled/resolved) and entity."""
        joined = occurrences_t.join(
            runs_t, sa.and_(runs_t.c.dag_id == occurrences_t.c.dag_id, runs_t.c.run_id == occurrences_t.c.run_id)
        ).outerjoin(
            fingerprints_t, sa.and_(fingerprints_t.c.dag_id == occurrences_t.c.dag_id,
                                    fingerprints_t.c.scope == runs_t.c.scope,
                                    fingerprints_t.c.fingerprint == occurrences_t.c.fingerprint)
        )
        q = (sa.select(occurrences_t, fingerprints_t.c.entity).select_from(joined)
             .where(occurrences_t.c.run_id == run_id))
        for col, value in ((occurrences_t.c.dag_id, dag_id), (occurrences_t.c.state, state),
                           (occurrences_t.c.check, check)):
            if value is not None:
                q = q.where(col == value)
        q = q.order_by(occurrences_t.c.check, occurrences_t.c.kind, occurrences_t.c.fingerprint).limit(limit)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]
