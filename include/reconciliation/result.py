"""CheckResult and Violation: the contract between check tasks, the report and the alerts (DESIGN §3).

Everything here is JSON-serialisable (it travels as XCom) and exact: amounts are strings, never floats.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

STATUSES = ("passed", "failed", "warning", "error", "skipped")
SEVERITIES = ("error", "warning", "info")

ENTITY_FIELDS = (
    "organization_id",
    "ledger_id",
    "transaction_id",
    "operation_id",
    "balance_id",
    "account_id",
    "redis_key",
    "collection",
    "entity_id",
)


def jsonable(value: Any) -> Any:
    """Make a value JSON-safe without losing precision (Decimal -> str, UUID/datetime -> str)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        # Floats never carry money here; keep them readable but exact as written.
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def fingerprint(check: str, kind: str, entity: str) -> str:
    """Stable id of one finding across runs: new / persisting / resolved is computed on it."""
    return hashlib.sha1(f"{check}|{kind}|{entity}".encode()).hexdigest()[:16]


@dataclass
class Violation:
    """One reported inconsistency (or warning) about one entity."""

    check: str
    kind: str
    severity: str
    entity: str
    hint: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    organization_id: str | None = None
    ledger_id: str | None = None
    transaction_id: str | None = None
    operation_id: str | None = None
    balance_id: str | None = None
    account_id: str | None = None
    redis_key: str | None = None
    collection: str | None = None
    entity_id: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.check, self.kind, self.entity)

    def to_dict(self) -> dict[str, Any]:
        data = {k: jsonable(v) for k, v in asdict(self).items() if v is not None or k in ("details",)}
        data["fingerprint"] = self.fingerprint
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Violation:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class CheckResult:
    """Outcome of one check task (DESIGN §3). `violations` / `warnings` are exact counts;
    `samples` holds at most `max_samples` findings and is complete when the counts are smaller."""

    name: str
    status: str = "passed"
    violations: int = 0
    warnings: int = 0
    in_flight: int = 0
    samples: list[Violation] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    truncated: bool = False
    max_samples: int = 1000

    def add(self, violation: Violation, count: int = 1) -> None:
        """Count a finding; keep it as a sample while there is room."""
        if violation.severity == "error":
            self.violations += count
        elif violation.severity == "warning":
            self.warnings += count
        if len(self.samples) < self.max_samples:
            self.samples.append(violation)
        else:
            self.truncated = True

    def finish(self) -> CheckResult:
        """Derive the status from the counts (unless the check errored or was skipped)."""
        if self.status in ("error", "skipped"):
            return self
        if self.violations:
            self.status = "failed"
        elif self.warnings:
            self.status = "warning"
        else:
            self.status = "passed"
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "violations": self.violations,
            "warnings": self.warnings,
            "in_flight": self.in_flight,
            "samples": [v.to_dict() for v in self.samples],
            "metrics": jsonable(self.metrics),
            "window": jsonable(self.window),
            "error": self.error,
            "truncated": self.truncated,
            "max_samples": self.max_samples,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        res = cls(
            name=data["name"],
            status=data.get("status", "passed"),
            violations=int(data.get("violations", 0)),
            warnings=int(data.get("warnings", 0)),
            in_flight=int(data.get("in_flight", 0)),
            metrics=data.get("metrics", {}),
            window=data.get("window", {}),
            error=data.get("error"),
            truncated=bool(data.get("truncated", False)),
            max_samples=int(data.get("max_samples", 1000)),
        )
        res.samples = [Violation.from_dict(s) for s in data.get("samples", [])]
        return res
