"""report.html: one self-contained page a finance operator can read without the docs (DESIGN §3 Report).

Jinja2 with autoescape on: ledger data (metadata values, Redis keys) is shown as text, never as markup.
No CDN, no scripts, no external assets: inline CSS and hand-built inline SVG sparklines, so the file can be
mailed, archived or opened offline.

Detail keys decide the columns of a sample: keys naming `expected` go to the Expected column, keys naming
`actual` (or `found`, `stored`) to Actual, anything else to Details — checks that name their evidence that
way get an expected-vs-actual table for free.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from reconciliation.catalog import BY_KIND
from reconciliation.result import ENTITY_FIELDS

TEMPLATES = Path(__file__).resolve().parent / "templates"
SAMPLES_PER_KIND = 10

CHECK_INFO: dict[str, tuple[str, str]] = {
    "balances": ("Balances vs operations",
                 "Each balance equals the result of its operations; versions and signs are consistent."),
    "double_entry": ("Double entry", "In every transaction the debits equal the credits, per asset."),
    "orphans": ("Orphans and reversals",
                "Operations, transactions and balances point at each other; reversals and statuses are sound."),
    "referential": ("Referential integrity",
                    "Accounts, balances, assets, routes and ledgers refer to rows that exist and agree."),
    "redis_sync": ("Redis cache vs PostgreSQL",
                   "The live balances cached in Redis agree with PostgreSQL, or are provably still in flight."),
    "settlement": ("Settlement", "No transaction is stuck unsettled past the hard grace period."),
    "metadata": ("Metadata (MongoDB)", "Every metadata document describes an existing record and has a valid shape."),
    "counts": ("Entity counts", "Counts agree across stores, and PostgreSQL row counts never go down."),
}

STATUS_LABEL = {
    "passed": "Passed",
    "failed": "Failed",
    "warning": "Warnings",
    "error": "Could not run",
    "skipped": "Skipped",
}

_EXPECTED = re.compile(r"(^|_)(expected|should_be|want)(_|$)")
_ACTUAL = re.compile(r"(^|_)(actual|found|stored|got|observed)(_|$)")


def check_title(name: str) -> str:
    return CHECK_INFO.get(name, (name.replace("_", " ").capitalize(), ""))[0]


def check_description(name: str) -> str:
    return CHECK_INFO.get(name, ("", ""))[1]


def humanize(code: str) -> str:
    """`unbalanced_transaction` -> `Unbalanced transaction`."""
    return str(code).replace("_", " ").strip().capitalize()


def number(value: Any) -> str:
    """Thousands separators for counts (never applied to amounts: those stay as the strings we were given)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—" if value is None else str(value)


def when(value: Any) -> str:
    """ISO timestamp -> `2026-01-01 00:00 UTC` (the report is read by people, not parsers)."""
    if not value:
        return "—"
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if dt.year >= 9999 or dt.year <= 1970:
        return "unbounded"
    suffix = " UTC" if dt.utcoffset() is not None and dt.utcoffset().total_seconds() == 0 else dt.strftime(" %z")
    fmt = "%Y-%m-%d %H:%M:%S" if dt.second or dt.microsecond else "%Y-%m-%d %H:%M"
    return dt.strftime(fmt) + suffix


def seconds(value: Any) -> str:
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if v < 1:
        return f"{v * 1000:.0f} ms"
    if v < 120:
        return f"{v:.1f} s"
    return f"{v / 60:.1f} min"


def _label(key: str, pattern: re.Pattern[str]) -> str:
    rest = pattern.sub("_", key).strip("_")
    return rest.replace("_", " ") or "value"


def split_details(details: dict[str, Any] | None) -> dict[str, list[tuple[str, Any]]]:
    """Detail keys -> Expected / Actual / Other columns (see the module docstring)."""
    out: dict[str, list[tuple[str, Any]]] = {"expected": [], "actual": [], "other": []}
    for key, value in (details or {}).items():
        k = str(key).lower()
        if _EXPECTED.search(k):
            out["expected"].append((_label(k, _EXPECTED), value))
        elif _ACTUAL.search(k):
            out["actual"].append((_label(k, _ACTUAL), value))
        else:
            out["other"].append((str(key).replace("_", " "), value))
    return out


def identifiers(sample: dict[str, Any]) -> list[tuple[str, str]]:
    """The entity first, then every identifier that says something the entity string does not."""
    entity = str(sample.get("entity") or "")
    ids = [(f.replace("_id", "").replace("_", " "), str(sample[f])) for f in ENTITY_FIELDS
           if sample.get(f) and str(sample[f]) not in entity]
    return ids


def safe_href(value: Any) -> str:
    """Links (GE Data Docs) may be relative paths or http(s)/file URLs; anything else becomes inert."""
    text = str(value or "")
    scheme = text.split(":", 1)[0].lower() if ":" in text.split("/", 1)[0] else ""
    return text if scheme in ("", "http", "https", "file") else "#"


def value_text(value: Any) -> str:
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "null" if value is None else str(value)


def group_samples(samples: list[dict[str, Any]], per_kind: int = SAMPLES_PER_KIND) -> list[dict[str, Any]]:
    """Samples grouped per kind (errors first, then by count), each group capped at `per_kind` rows."""
    groups: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for sample in samples:
        kind = sample.get("kind", "unknown")
        g = groups.get(kind)
        if g is None:
            meta = BY_KIND.get(kind)
            g = groups[kind] = {
                "kind": kind,
                "title": humanize(kind),
                "severity": sample.get("severity") or (meta.severity if meta else "error"),
                "hint": sample.get("hint") or (meta.hint if meta else ""),
                "count": 0,
                "new": 0,
                "shown": [],
            }
        g["count"] += 1
        if sample.get("change") == "new":
            g["new"] += 1
        if sample.get("severity") == "error":
            g["severity"] = "error"
        if len(g["shown"]) < per_kind:
            g["shown"].append(sample)
    rank = {"error": 0, "warning": 1, "info": 2}
    return sorted(groups.values(), key=lambda g: (rank.get(g["severity"], 3), -g["count"], g["kind"]))


def sparkline(points: list[dict[str, Any]], width: int = 132, height: int = 30) -> Markup:
    """Violations per run as an inline SVG line; red dots = failed runs, hollow grey = could not run."""
    if not points:
        return Markup('<span class="muted">no history</span>')
    values = [int(p.get("violations") or 0) for p in points]
    top = max(values) or 1
    pad = 4
    n = len(points)
    step = (width - 2 * pad) / max(n - 1, 1)

    def xy(i: int, v: int) -> tuple[float, float]:
        x = pad + i * step if n > 1 else width / 2
        y = height - pad - (v / top) * (height - 2 * pad)
        return round(x, 1), round(y, 1)

    coords = [xy(i, v) for i, v in enumerate(values)]
    parts = [
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(_spark_title(points))}</title>",
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#d0d5dd" '
        'stroke-width="1"/>',
    ]
    # the line joins runs that measured something; a run that could not run breaks it (its 0 means nothing)
    segment: list[tuple[float, float]] = []
    for (x, y), p in [*zip(coords, points, strict=True), ((0.0, 0.0), {"status": "error"})]:
        if p.get("status") in ("error", "skipped"):
            if len(segment) > 1:
                path = " ".join(f"{sx},{sy}" for sx, sy in segment)
                parts.append(f'<polyline points="{path}" fill="none" stroke="#667085" stroke-width="1.5"/>')
            segment = []
        else:
            segment.append((x, y))
    for (x, y), p in zip(coords, points, strict=True):
        status = p.get("status")
        if status in ("error", "skipped"):
            parts.append(f'<circle cx="{x}" cy="{height - pad}" r="2.6" fill="#fff" stroke="#98a2b3" '
                         'stroke-width="1.2"/>')
        elif status == "failed":
            parts.append(f'<circle cx="{x}" cy="{y}" r="2.6" fill="#d92d20"/>')
        elif status == "warning":
            parts.append(f'<circle cx="{x}" cy="{y}" r="2.2" fill="#dc6803"/>')
        else:
            parts.append(f'<circle cx="{x}" cy="{y}" r="2" fill="#12b76a"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _spark_title(points: list[dict[str, Any]]) -> str:
    tail = points[-5:]
    lines = [f"{when(p.get('window_end'))}: {p.get('status')}, {number(p.get('violations'))} violations" for p in tail]
    return f"last {len(points)} runs (newest last)\n" + "\n".join(lines)


def verdict(report: dict[str, Any]) -> dict[str, str]:
    """Headline and one-sentence explanation of the overall status, in an operator's words."""
    s = report.get("summary") or {}
    ch = report.get("changes") or {}
    checks = report.get("checks") or []
    ran = [c for c in checks if c.get("status") != "skipped"]
    errored = [c for c in checks if c.get("status") == "error"]
    failed = [c for c in checks if c.get("status") == "failed"]
    change = (f" Since the previous run: {number(ch.get('new'))} new, {number(ch.get('persisting'))} still open, "
              f"{number(ch.get('resolved'))} resolved.") if report.get("history_available") else ""
    status = report.get("status")
    if status == "passed":
        if not ran:
            return {"class": "passed", "title": "No checks ran", "text": "Every check was skipped for this run."}
        head = f"All {len(ran)} checks passed." if all(c.get("status") == "passed" for c in ran) else (
            f"No violations in {len(ran)} checks.")
        extra = ""
        if s.get("warnings"):
            w = int(s["warnings"])
            extra += f" {number(w)} warning{'s' if w != 1 else ''} to review (warnings do not fail the run)."
        if s.get("in_flight"):
            f = int(s["in_flight"])
            extra += (f" {number(f)} item{'s were' if f != 1 else ' was'} still in flight and will be judged by "
                      "a later run.")
        return {"class": "passed", "title": "Ledger consistent",
                "text": f"{head}{extra}{change if ch.get('resolved') else ''}"}
    if status == "failed":
        return {"class": "failed", "title": "Inconsistencies found",
                "text": f"{number(s.get('violations'))} violations in {len(failed)} of {len(ran)} checks.{change}"}
    names = ", ".join(check_title(c["name"]) for c in errored) or "the run itself"
    text = (f"{len(errored) or 'Some'} check{'s' if len(errored) != 1 else ''} could not run ({names}). "
            "This is an infrastructure problem (a store was unreachable or a task crashed): that part of the "
            "ledger was NOT checked, and no inconsistency is implied.")
    if report.get("errors"):
        text += " The run also reported: " + "; ".join(f"{k}: {v}" for k, v in report["errors"].items()) + "."
    if failed:
        text += f" Separately, {number(s.get('violations'))} violations were found in {len(failed)} checks."
    return {"class": "error", "title": "Reconciliation incomplete", "text": text}


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2", "html.j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=number, when=when, seconds=seconds, humanize=humanize, value_text=value_text,
                       safe_href=safe_href)
    env.globals.update(check_title=check_title, check_description=check_description, split_details=split_details,
                       identifiers=identifiers, group_samples=group_samples, sparkline=sparkline,
                       STATUS_LABEL=STATUS_LABEL)
    return env


def render_report(report: dict[str, Any], *, per_kind: int = SAMPLES_PER_KIND) -> str:
    """The report dict (as written to report.json) -> the HTML page."""
    return _environment().get_template("report.html.j2").render(
        r=report, v=verdict(report), per_kind=per_kind, trend=report.get("trend") or {}
    )
