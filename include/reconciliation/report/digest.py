"""The digest (DESIGN §3): one short message per failing run and channel, plus the rule for when to send it.

A digest carries the verdict, the failing checks with their counts (new / persisting / resolved), a few
samples and the report's location; long lists stay in the report. A million violations still make one
message of bounded size. A check that could not run (a store down after retries) is phrased as an
infrastructure problem, never as a ledger inconsistency.

Alerting: a passing run never alerts; a failure identical to the last alerted one (same failing fingerprints
and same errored checks) does not alert again unless `realert_identical`; a passing run at the head of its
scope clears the state (HistoryStore.record), so the next failure alerts again.
"""

from __future__ import annotations

import hashlib
from html import escape as html_escape
from typing import Any, Literal

from reconciliation.report.html import check_title, humanize, number, split_details, when
from reconciliation.sanitize import sanitize

SLACK_SECTION_LIMIT = 3000  # Slack: a section block's text holds at most 3,000 characters
SLACK_HEADER_LIMIT = 150  # Slack: a header block's plain_text holds at most 150 characters
TEXT_LIMIT = 3000  # the whole plain-text message (email body / Slack fallback text)
LINE_LIMIT = 280  # one sample or error line
ERROR_LIMIT = 300


# ----------------------------------------------------------------------------------------------- alerting
def alert_signature(report: dict[str, Any]) -> str:
    """What makes two failures 'the same': failing error fingerprints and errored checks.

    A truncated check contributes only its name: its samples are an arbitrary subset of a flood, and a
    flood that goes on is the same incident."""
    tokens: set[str] = set()
    for check in report.get("checks") or []:
        status = check.get("status")
        if status == "error":
            tokens.add(f"error:{check['name']}")
        elif status == "failed":
            if check.get("truncated"):
                tokens.add(f"flood:{check['name']}")
                continue
            for sample in check.get("samples") or []:
                if sample.get("severity") == "error" and sample.get("fingerprint"):
                    tokens.add(f"fp:{sample['fingerprint']}")
            tokens.add(f"failed:{check['name']}")
    for name in report.get("errors") or {}:
        tokens.add(f"run-error:{name}")
    return hashlib.sha256("\n".join(sorted(tokens)).encode()).hexdigest()


def should_alert(report: dict[str, Any], previous_alert_state: dict[str, Any] | None, *,
                 realert_identical: bool = False) -> bool:
    """Alert on a failed or errored run unless it repeats the last alerted one exactly (and re-alerting
    identical failures is off)."""
    if report.get("status") not in ("failed", "error"):
        return False
    last = (previous_alert_state or {}).get("last_signature")
    if not last or last != alert_signature(report):
        return True
    return bool(realert_identical)


# ------------------------------------------------------------------------------------------------ content
def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def _failing(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report.get("checks") or [] if c.get("status") == "failed"]


def _errored(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report.get("checks") or [] if c.get("status") == "error"]


def _ran(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report.get("checks") or [] if c.get("status") != "skipped"]


def _plural(n: int, word: str) -> str:
    return f"{number(n)} {word}{'' if n == 1 else 's'}"


def verdict_line(report: dict[str, Any]) -> str:
    """One sentence: what happened, in words that keep violations and infrastructure errors apart."""
    status = report.get("status")
    summary = report.get("summary") or {}
    failing, errored, ran = _failing(report), _errored(report), _ran(report)
    violations = int(summary.get("violations") or 0)
    changes = report.get("changes") or {}
    change = (f" ({number(changes.get('new', 0))} new, {number(changes.get('persisting', 0))} persisting, "
              f"{number(changes.get('resolved', 0))} resolved since the previous run)"
              if report.get("history_available") else "")
    if status == "passed":
        return f"PASSED: the ledger is consistent ({_plural(len(ran), 'check')} passed)."
    if status == "failed":
        return (f"FAILED: {_plural(violations, 'violation')} in {len(failing)} of {_plural(len(ran), 'check')}"
                f"{change}.")
    parts = []
    if errored:
        parts.append(f"INCOMPLETE: {len(errored)} of {_plural(len(ran), 'check')} could not run — an infrastructure "
                     "problem (store unreachable or task crashed), not a ledger inconsistency; that data was not checked.")
    else:
        parts.append("INCOMPLETE: the run could not complete — an infrastructure problem, not a ledger inconsistency.")
    if failing:
        parts.append(f"Separately, the checks that ran found {_plural(violations, 'violation')} in "
                     f"{_plural(len(failing), 'check')}{change}.")
    return " ".join(parts)


def subject_line(report: dict[str, Any]) -> str:
    status = report.get("status")
    summary = report.get("summary") or {}
    failing, errored = _failing(report), _errored(report)
    if status == "passed":
        head = "PASSED"
    elif status == "failed":
        head = f"FAILED: {_plural(int(summary.get('violations') or 0), 'violation')} in {_plural(len(failing), 'check')}"
    else:
        head = f"INCOMPLETE: {_plural(len(errored), 'check')} could not run (infrastructure)"
        if failing:
            head += f"; {_plural(int(summary.get('violations') or 0), 'violation')} found"
    window = report.get("window") or {}
    return _clip(f"[Midaz reconciliation] {head} · {report.get('dag_id')} · "
                 f"{when(window.get('start'))} → {when(window.get('end'))}", 240)


def _check_line(check: dict[str, Any], history: bool) -> str:
    ch = check.get("changes") or {}
    line = f"{check_title(check['name'])} ({check['name']}): {_plural(int(check.get('violations') or 0), 'violation')}"
    if check.get("warnings"):
        line += f", {_plural(int(check['warnings']), 'warning')}"
    if history:
        line += (f" — {number(ch.get('new', 0))} new, {number(ch.get('persisting', 0))} persisting, "
                 f"{number(ch.get('resolved', 0))} resolved")
    if check.get("truncated"):
        line += " (samples capped; exact count)"
    return line


def _error_line(check: dict[str, Any]) -> str:
    text = sanitize(check.get("error") or "no result was stored", ERROR_LIMIT)
    return f"{check_title(check['name'])} ({check['name']}): {text}"


def top_samples(report: dict[str, Any], top: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The first few error samples across failing checks, new ones first, taken round-robin so one
    flooding check does not hide the others."""
    queues = []
    for check in _failing(report):
        errors = [s for s in check.get("samples") or [] if s.get("severity") == "error"]
        errors.sort(key=lambda s: {"new": 0, "persisting": 1}.get(s.get("change", ""), 2))
        if errors:
            queues.append((check, errors[: top]))
    picked: list[tuple[dict[str, Any], dict[str, Any]]] = []
    depth = 0
    while len(picked) < top and any(depth < len(q) for _, q in queues):
        for check, q in queues:
            if depth < len(q) and len(picked) < top:
                picked.append((check, q[depth]))
        depth += 1
    return picked


def _evidence(sample: dict[str, Any]) -> str:
    """`available: expected 100.00, actual 90.00; version: expected 7, actual 6` (pairs by label)."""
    d = split_details(sample.get("details"))
    expected, actual = dict(d["expected"]), dict(d["actual"])
    bits = []
    for label in list(expected) + [k for k in actual if k not in expected]:
        pair = []
        if label in expected:
            pair.append(f"expected {expected[label]}")
        if label in actual:
            pair.append(f"actual {actual[label]}")
        bits.append(f"{label}: {', '.join(pair)}")
    bits += [f"{k}={v}" for k, v in d["other"][: max(0, 3 - len(bits))]]
    return "; ".join(bits)


def _sample_line(check: dict[str, Any], sample: dict[str, Any]) -> str:
    tag = f"[{sample['change']}] " if sample.get("change") else ""
    ev = _evidence(sample)
    line = f"{tag}{check['name']} / {humanize(sample.get('kind', ''))}: {sample.get('entity', '')}"
    return _clip(line + (f" — {ev}" if ev else ""), LINE_LIMIT)


def _sections(report: dict[str, Any], top: int) -> dict[str, list[str]]:
    history = bool(report.get("history_available"))
    warnings_only = [c for c in report.get("checks") or [] if c.get("status") == "warning"]
    out = {
        "failing": [_check_line(c, history) for c in _failing(report)],
        "errors": [_error_line(c) for c in _errored(report)]
        + [f"{humanize(k)}: {sanitize(v, ERROR_LIMIT)}" for k, v in (report.get("errors") or {}).items()],
        "samples": [_sample_line(c, s) for c, s in top_samples(report, top)],
        "warnings": [f"{check_title(c['name'])} ({c['name']}): {_plural(int(c.get('warnings') or 0), 'warning')}"
                     for c in warnings_only],
    }
    if report.get("history_error"):
        out["notes"] = ["new / persisting / resolved unknown: the history store was unavailable"]
    return out


TITLES = {
    "failing": "Failing checks",
    "errors": "Could not run (infrastructure problem, not a ledger inconsistency)",
    "samples": "Top findings",
    "warnings": "Warnings (do not fail the run)",
    "notes": "Notes",
}


def _text(report: dict[str, Any], sections: dict[str, list[str]], report_url: str | None) -> str:
    lines = [verdict_line(report), ""]
    window = report.get("window") or {}
    lines.append(f"Window {when(window.get('start'))} → {when(window.get('end'))} ({report.get('scope')} scope), "
                 f"schema {str(report.get('revision') or 'unknown').upper()}, run {report.get('run_id')}")
    for key, title in TITLES.items():
        if sections.get(key):
            lines += ["", f"{title}:"] + [f"• {item}" for item in sections[key]]
    tail = ["", f"Full report: {report_url}" if report_url else "Full report: see report.json / report.html of this run"]
    body = "\n".join(lines)
    room = TEXT_LIMIT - len("\n".join(tail)) - 1
    return _clip(body, room) + "\n" + "\n".join(tail)


def _html(report: dict[str, Any], sections: dict[str, list[str]], report_url: str | None) -> str:
    colour = {"passed": "#067647", "failed": "#b42318"}.get(str(report.get("status")), "#b54708")
    window = report.get("window") or {}
    parts = [
        '<div style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#101828">',
        f'<p style="font-size:16px;font-weight:bold;color:{colour}">{html_escape(verdict_line(report))}</p>',
        f'<p style="color:#667085">Window {html_escape(when(window.get("start")))} → '
        f'{html_escape(when(window.get("end")))} ({html_escape(str(report.get("scope")))} scope), schema '
        f'{html_escape(str(report.get("revision") or "unknown").upper())}, run '
        f'<code>{html_escape(str(report.get("run_id")))}</code></p>',
    ]
    for key, title in TITLES.items():
        if sections.get(key):
            parts.append(f"<p><b>{html_escape(title)}</b></p><ul>")
            parts += [f"<li>{html_escape(item)}</li>" for item in sections[key]]
            parts.append("</ul>")
    if report_url:
        parts.append(f'<p><a href="{html_escape(report_url, quote=True)}">Open the full report</a> '
                     f"({html_escape(report_url)})</p>")
    else:
        parts.append("<p>Full report: report.html of this run.</p>")
    parts.append("</div>")
    return "".join(parts)


def _mrkdwn(text: str) -> str:
    """Slack escaping: ledger data must never become a link, a mention or a broadcast."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_section(title: str, items: list[str]) -> dict[str, Any]:
    head = f"*{_mrkdwn(title)}*\n"
    lines: list[str] = []
    used = len(head)
    for i, item in enumerate(items):
        line = f"• {_mrkdwn(item)}"
        more = f"\n…and {len(items) - i} more in the report"
        if used + len(line) + 1 + len(more) > SLACK_SECTION_LIMIT - 50:
            lines.append(more.strip())
            break
        lines.append(line)
        used += len(line) + 1
    return {"type": "section", "text": {"type": "mrkdwn", "text": head + "\n".join(lines)}}


def _blocks(report: dict[str, Any], sections: dict[str, list[str]], report_url: str | None) -> list[dict[str, Any]]:
    status = report.get("status")
    icon = {"passed": ":white_check_mark:", "failed": ":x:"}.get(str(status), ":warning:")
    head = {"passed": "Reconciliation passed", "failed": "Ledger inconsistencies found"}.get(
        str(status), "Reconciliation incomplete")
    window = report.get("window") or {}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(f"{head} · {report.get('dag_id')}",
                                                                         SLACK_HEADER_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"{icon} {_mrkdwn(verdict_line(report))}",
                                                                     SLACK_SECTION_LIMIT)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(_mrkdwn(
            f"Window {when(window.get('start'))} → {when(window.get('end'))} · {report.get('scope')} scope · "
            f"schema {str(report.get('revision') or 'unknown').upper()} · run {report.get('run_id')}"), 2000)}]},
    ]
    for key, title in TITLES.items():
        if sections.get(key):
            blocks.append(_slack_section(title, sections[key]))
    if report_url:
        link = f"<{report_url}|Open the full report>" if report_url.startswith(("http://", "https://")) \
            else f"Full report: `{_mrkdwn(report_url).replace('`', '')}`"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(link, SLACK_SECTION_LIMIT)}})
    return blocks


def build_digest(report: dict[str, Any], *, channel: Literal["email", "slack"], report_url: str | None,
                 top: int = 5) -> dict[str, Any]:
    """The message for one channel: email -> subject/text/html; slack -> text (fallback) + blocks."""
    sections = _sections(report, top)
    text = _text(report, sections, report_url)
    if channel == "email":
        return {"channel": "email", "subject": subject_line(report), "text": text,
                "html": _html(report, sections, report_url)}
    if channel == "slack":
        return {"channel": "slack", "subject": subject_line(report), "text": _clip(_mrkdwn(text), TEXT_LIMIT),
                "blocks": _blocks(report, sections, report_url)}
    raise ValueError(f"unknown channel {channel!r}; use 'email' or 'slack'")
