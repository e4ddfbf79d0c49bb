"""The fault injector's manifest: every error- and warning-severity finding a correct reconciliation must
report after the injection, including cascades into other checks.

Why: tests and the demo compare a report with this list both ways (nothing missed, nothing extra, DESIGN §5).
Each entry names the check, the catalogue kind, the severity at the ledger's revision, the entity string in
catalog.py's format, `at` (the ISO write time that places the finding in a time window) and the fault that
caused it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciliation.catalog import BY_KIND


@dataclass(frozen=True, order=True)
class Entry:
    check: str
    kind: str
    severity: str
    entity: str
    at: str
    fault: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What a report must contain for this entry: (check, kind, entity)."""
        return (self.check, self.kind, self.entity)

    @property
    def at_datetime(self) -> datetime:
        return datetime.fromisoformat(self.at.replace("Z", "+00:00"))


def _bounds(window: Any) -> tuple[datetime, datetime] | None:
    """Accept a reconciliation Window, a (start, end) pair, or None (everything)."""
    if window is None:
        return None
    if isinstance(window, tuple):
        return window[0], window[1]
    if getattr(window, "is_full", False):
        return None
    return window.start, window.end


@dataclass
class Manifest:
    """Expected findings of one injection. `faults` maps each injected fault to what it touched."""

    revision: str
    seed: int
    now: str
    entries: list[Entry] = field(default_factory=list)
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # env settings the checks need (e.g. validation lists)
    expires_at: str | None = None  # the first faulted Redis key expires then; run the checks before it

    def add(self, check: str, kind: str, entity: str, at: datetime | str, fault: str,
            severity: str | None = None) -> Entry:
        """Record one expected finding (deduplicated on check/kind/entity; the catalogue checks the kind)."""
        spec = BY_KIND[kind]
        if spec.check != check:
            raise ValueError(f"kind {kind!r} belongs to check {spec.check!r}, not {check!r}")
        at_text = at if isinstance(at, str) else at.isoformat()
        entry = Entry(check, kind, severity or spec.severity, entity, at_text, fault)
        for existing in self.entries:
            if existing.key == entry.key:
                return existing
        self.entries.append(entry)
        return entry

    def expected(self, check: str | None = None, window: Any = None,
                 severity: str | None = None) -> list[Entry]:
        """Entries of one check (or all), optionally only those whose `at` falls in [window.start, window.end)."""
        bounds = _bounds(window)
        out = []
        for e in self.entries:
            if check is not None and e.check != check:
                continue
            if severity is not None and e.severity != severity:
                continue
            if bounds is not None and not (bounds[0] <= e.at_datetime < bounds[1]):
                continue
            out.append(e)
        return sorted(out)

    def keys(self, check: str | None = None, window: Any = None) -> set[tuple[str, str, str]]:
        """{(check, kind, entity)} — the shape a test compares with a report's findings."""
        return {e.key for e in self.expected(check, window)}

    def by_fault(self, fault: str) -> list[Entry]:
        return sorted(e for e in self.entries if e.fault == fault)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "seed": self.seed,
            "now": self.now,
            "settings": dict(self.settings),
            "expires_at": self.expires_at,
            "faults": self.faults,
            "entries": [asdict(e) for e in sorted(self.entries)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            revision=data["revision"],
            seed=int(data["seed"]),
            now=data["now"],
            entries=[Entry(**e) for e in data.get("entries", [])],
            faults=dict(data.get("faults", {})),
            settings=dict(data.get("settings", {})),
            expires_at=data.get("expires_at"),
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def summary(self) -> dict[str, int]:
        """Entry count per check (for the CLI)."""
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.check] = out.get(e.check, 0) + 1
        return dict(sorted(out.items()))
