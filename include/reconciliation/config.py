"""Connection ids, params, defaults and their validation (DESIGN §3). Cheap to import: no Airflow, no GE."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from reconciliation.catalog import CHECKS

# Airflow connection ids (AIRFLOW_CONN_<ID upper> env vars work everywhere).
CONN_ONBOARDING = "midaz_onboarding_db"
CONN_TRANSACTION = "midaz_transaction_db"
CONN_REDIS = "midaz_redis"
CONN_MONGO = "midaz_mongo"
CONN_STORE = "reconciliation_store"
CONN_SMTP = "reconciliation_smtp"
CONN_SLACK = "reconciliation_slack"

# Settings read from the environment (operators set them in the deployment, tests set them per ledger).
ENV_MONGO_ONBOARDING_DB = "MIDAZ_MONGO_ONBOARDING_DB"
ENV_MONGO_TRANSACTION_DB = "MIDAZ_MONGO_TRANSACTION_DB"
ENV_REDIS_TENANTS = "MIDAZ_REDIS_TENANT_PREFIXES"  # comma-separated tenant ids; "*" scans every tenant
ENV_ACCOUNT_TYPE_VALIDATION = "MIDAZ_ACCOUNT_TYPE_VALIDATION"  # R1 env of Midaz: "org:ledger,org:ledger"
ENV_VERSION_GAP_FIX_DATE = "RECONCILIATION_VERSION_GAP_FIX_DATE"
ENV_REPORT_DIR = "RECONCILIATION_REPORT_DIR"
ENV_STATEMENT_TIMEOUT_S = "RECONCILIATION_STATEMENT_TIMEOUT_S"

DEFAULT_VERSION_GAP_FIX_DATE = date(2026, 4, 13)  # Midaz v3.6.0 (DESIGN §7)
DEFAULT_HARD_GRACE_MINUTES = {"r1": 75, "r2": 100}  # reference §6.6


def mongo_databases() -> dict[str, str]:
    """Logical Midaz Mongo database -> real database name (Midaz lower-cases MONGO_NAME)."""
    return {
        "onboarding": os.environ.get(ENV_MONGO_ONBOARDING_DB, "onboarding").lower(),
        "transaction": os.environ.get(ENV_MONGO_TRANSACTION_DB, "transaction").lower(),
    }


def version_gap_fix_date() -> date:
    raw = os.environ.get(ENV_VERSION_GAP_FIX_DATE)
    return date.fromisoformat(raw) if raw else DEFAULT_VERSION_GAP_FIX_DATE


def statement_timeout_seconds() -> int:
    return int(os.environ.get(ENV_STATEMENT_TIMEOUT_S, "600"))


def account_type_validation_pairs() -> set[tuple[str, str]]:
    """(org, ledger) pairs that validate account types at R1 (Midaz's ACCOUNT_TYPE_VALIDATION)."""
    raw = os.environ.get(ENV_ACCOUNT_TYPE_VALIDATION, "")
    pairs = set()
    for item in raw.split(","):
        if ":" in item:
            org, ledger = item.strip().split(":", 1)
            pairs.add((org.lower(), ledger.lower()))
    return pairs


class ParamError(ValueError):
    """A params-form value an operator must correct; the message says which and why."""


@dataclass
class Params:
    """Validated run parameters (the Airflow params form)."""

    scope: str = "window"
    checks: list[str] = field(default_factory=lambda: list(CHECKS))
    grace_minutes: int = 15
    hard_grace_minutes: int | None = None  # None = revision default (R1 75, R2 100)
    schema: str = "auto"
    max_samples: int = 1000
    pending_max_age_hours: int = 168

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.grace_minutes)

    def hard_grace(self, revision: str) -> timedelta:
        minutes = self.hard_grace_minutes or DEFAULT_HARD_GRACE_MINUTES.get(revision, 100)
        return timedelta(minutes=max(minutes, self.grace_minutes))

    @property
    def pending_max_age(self) -> timedelta:
        return timedelta(hours=self.pending_max_age_hours)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "checks": list(self.checks),
            "grace_minutes": self.grace_minutes,
            "hard_grace_minutes": self.hard_grace_minutes,
            "schema": self.schema,
            "max_samples": self.max_samples,
            "pending_max_age_hours": self.pending_max_age_hours,
        }


def _int(raw: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(raw, bool):
        raise ParamError(f"{name} must be a whole number, not {raw!r}")
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        raise ParamError(f"{name} must be a whole number, not {raw!r}") from None
    if not lo <= value <= hi:
        raise ParamError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


def parse_params(raw: dict[str, Any] | None) -> Params:
    """Validate the params of a run; raise ParamError with a message an operator can act on."""
    raw = dict(raw or {})
    p = Params()
    scope = raw.get("scope", p.scope) or p.scope
    if scope not in ("window", "full"):
        raise ParamError(f"scope must be 'window' or 'full', not {scope!r}")
    p.scope = scope
    checks = raw.get("checks")
    if checks in (None, "", [], "all", ["all"]):
        p.checks = list(CHECKS)
    else:
        if isinstance(checks, str):
            checks = [c.strip() for c in checks.split(",") if c.strip()]
        unknown = [c for c in checks if c not in CHECKS]
        if unknown:
            raise ParamError(f"unknown checks {unknown}; choose from {list(CHECKS)}")
        p.checks = [c for c in CHECKS if c in checks]
    if raw.get("grace_minutes") is not None:
        p.grace_minutes = _int(raw["grace_minutes"], "grace_minutes", 0, 7 * 24 * 60)
    if raw.get("hard_grace_minutes") not in (None, "", 0):
        p.hard_grace_minutes = _int(raw["hard_grace_minutes"], "hard_grace_minutes", 1, 30 * 24 * 60)
        if p.hard_grace_minutes < p.grace_minutes:
            raise ParamError(
                f"hard_grace_minutes ({p.hard_grace_minutes}) must not be below grace_minutes ({p.grace_minutes})"
            )
    schema = raw.get("schema", "auto") or "auto"
    if schema not in ("auto", "r1", "r2"):
        raise ParamError(f"schema must be 'auto', 'r1' or 'r2', not {schema!r}")
    p.schema = schema
    if raw.get("max_samples") is not None:
        p.max_samples = _int(raw["max_samples"], "max_samples", 1, 1_000_000)
    if raw.get("pending_max_age_hours") is not None:
        p.pending_max_age_hours = _int(raw["pending_max_age_hours"], "pending_max_age_hours", 1, 24 * 3650)
    return p
