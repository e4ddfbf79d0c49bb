"""Data interval -> SQL bounds. UUIDv7 ids carry their write time in the first 48 bits, so a time window
is a primary-key range: index-backed, immune to backdated created_at (reference §2.0, §5.8)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

UTC = UTC
MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TS = datetime(9999, 12, 31, tzinfo=UTC)

# SQL expression giving the UUIDv7 write time of an id column (reference §2.0); inline, no functions on replicas.
def uuidv7_time_sql(col: str) -> str:
    return f"to_timestamp((('x'||substr(replace({col}::text,'-',''),1,12))::bit(48)::bigint)/1000.0)"


def uuidv7_lower_bound(ts: datetime) -> str:
    """The smallest UUID whose 48-bit time prefix is `ts` (ms): ids >= this were written at or after ts."""
    ms = max(0, min(int(ts.timestamp() * 1000), (1 << 48) - 1))
    return str(uuid.UUID(int=ms << 80))


def uuidv7_time(value: str | uuid.UUID) -> datetime | None:
    """Write time of a UUIDv7; None when the id is not version 7."""
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    if u.version != 7:
        return None
    return datetime.fromtimestamp((u.int >> 80) / 1000.0, tz=UTC)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass
class Window:
    """What a check looks at. scope='window': data written in [start, end); scope='full': everything.

    `now` is the reference time for grace windows: data younger than `grace` is never reported,
    data older than `hard_grace` that is still unsettled is stuck.
    """

    start: datetime
    end: datetime
    scope: str = "window"
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    grace: timedelta = timedelta(minutes=15)
    hard_grace: timedelta = timedelta(minutes=100)

    def __post_init__(self) -> None:
        self.start, self.end, self.now = _aware(self.start), _aware(self.end), _aware(self.now)
        if self.scope not in ("window", "full"):
            raise ValueError(f"scope must be 'window' or 'full', not {self.scope!r}")
        if self.end < self.start:
            raise ValueError("window end is before its start")
        if self.hard_grace < self.grace:
            raise ValueError("hard grace must be at least the soft grace")

    @classmethod
    def full(cls, **kw: Any) -> Window:
        return cls(start=MIN_TS, end=MAX_TS, scope="full", **kw)

    @property
    def is_full(self) -> bool:
        return self.scope == "full"

    @property
    def id_lower(self) -> str:
        return uuidv7_lower_bound(self.start)

    @property
    def id_upper(self) -> str:
        return uuidv7_lower_bound(self.end)

    @property
    def settled_before(self) -> datetime:
        """Rows last written before this instant are past the soft grace and may be judged."""
        return self.now - self.grace

    @property
    def stuck_before(self) -> datetime:
        return self.now - self.hard_grace

    def sql_params(self) -> dict[str, Any]:
        """Named parameters every check SQL file may use (psycopg `%(name)s` style)."""
        return {
            "full_scope": self.is_full,
            "win_start": self.start,
            "win_end": self.end,
            "id_lower": self.id_lower,
            "id_upper": self.id_upper,
            "settled_before": self.settled_before,
            "stuck_before": self.stuck_before,
            "now": self.now,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "now": self.now.isoformat(),
            "grace_minutes": self.grace.total_seconds() / 60,
            "hard_grace_minutes": self.hard_grace.total_seconds() / 60,
        }
