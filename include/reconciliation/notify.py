"""One digest per failing run and channel, through Airflow's own notifiers (DESIGN §3 Digest).

Channels are Airflow connections: `reconciliation_smtp` (SmtpNotifier) and `reconciliation_slack`
(SlackWebhookNotifier); a missing connection turns its channel off. We call `notify()` directly, so
Jinja never renders ledger data (a `{{` in a metadata value must stay text)."""

from __future__ import annotations

import logging
import os
from typing import Any

from reconciliation.config import CONN_SLACK, CONN_SMTP
from reconciliation.sanitize import describe_error

log = logging.getLogger(__name__)


def _connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:
        return None


def report_url(report: dict[str, Any]) -> str | None:
    """Where operators open the report: RECONCILIATION_REPORT_URL (a base URL) or the file path."""
    paths = report.get("paths") or {}
    base = os.environ.get("RECONCILIATION_REPORT_URL")
    if base and paths.get("run_dir_name"):
        return f"{base.rstrip('/')}/{paths['run_dir_name']}/report.html"
    return paths.get("html")


def send_digest(report: dict[str, Any], store: Any, context: dict[str, Any]) -> list[str]:
    """Send the digest on every configured channel if the run deserves an alert; return channels used."""
    from reconciliation.report.digest import build_digest, should_alert

    realert = os.environ.get("RECONCILIATION_REALERT_IDENTICAL", "false").lower() in ("1", "true", "yes")
    scope_key = f"{report.get('dag_id')}:{(report.get('window') or {}).get('scope')}"
    if not should_alert(report, store.alert_state(scope_key), realert_identical=realert):
        return []
    url = report_url(report)
    sent: list[str] = []
    smtp = _connection(CONN_SMTP)
    if smtp is not None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        extra = smtp.extra_dejson or {}
        to = os.environ.get("RECONCILIATION_ALERT_EMAIL_TO") or extra.get("to") or "ledger-ops@localhost"
        mail = build_digest(report, channel="email", report_url=url)
        try:
            SmtpNotifier(
                smtp_conn_id=CONN_SMTP, to=to, from_email=extra.get("from_email"),
                subject=mail["subject"], html_content=mail["html"],
            ).notify(context)
            sent.append("email")
        except Exception as exc:
            log.error("email digest failed: %s", describe_error(exc))
    if _connection(CONN_SLACK) is not None:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        msg = build_digest(report, channel="slack", report_url=url)
        try:
            SlackWebhookNotifier(slack_webhook_conn_id=CONN_SLACK, text=msg["text"], blocks=msg.get("blocks")).notify(
                context
            )
            sent.append("slack")
        except Exception as exc:
            log.error("slack digest failed: %s", describe_error(exc))
    if sent:
        store.record_alert(scope_key, report)
    return sent
