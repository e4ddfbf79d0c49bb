"""No secrets in output (DESIGN §4): connection strings and passwords never reach logs, reports, XCom or alerts."""

from __future__ import annotations

import re

_PATTERNS = (
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://)([^/\s:@]{0,256}):([^@\s/]{0,256})@"), r"\1\2:***@"),
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_key|apikey)\s*[=:]\s*('[^']*'|\"[^\"]*\"|[^\s,;&]+)"), r"\1=***"),
    (re.compile(r"(?i)(hooks\.slack\.com/services/)[A-Za-z0-9/_-]+"), r"\1***"),
    (re.compile(r"(?i)(\"password\"\s*:\s*)\"[^\"]*\""), r'\1"***"'),
)


def sanitize(text: object, limit: int = 2000) -> str:
    """Strip credentials from an error message or any text bound for an operator."""
    out = str(text)
    if len(out) > 4 * limit:  # bound the regex work on huge messages (a failing SQL statement, say)
        out = out[: 4 * limit]
    for pattern, repl in _PATTERNS:
        out = pattern.sub(repl, out)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def describe_error(exc: BaseException) -> str:
    """`Type: message`, sanitised: what an operator sees when a store is down."""
    return sanitize(f"{type(exc).__name__}: {exc}")
