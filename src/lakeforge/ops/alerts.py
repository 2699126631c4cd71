"""Incidents and their alerts: one message when an incident opens, one when it clears, none in between.

An incident is ``kind:subject`` (``failure:job:hourly``, ``stale:gold.fact_sales``). Its state is kept in the
run history, so a restarted scheduler neither repeats an alert nor forgets a recovery. Deliveries that fail
(the webhook or SMTP server is down) are logged and retried on later ticks; the job itself is not affected.
Every configured secret is scrubbed from a message before it is sent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage

from lakeforge.config.ops import AlertConfig
from lakeforge.errors import shorten
from lakeforge.ops.state import open_incidents, record_incident
from lakeforge.state.history import RunHistory

LOG = logging.getLogger("lakeforge.ops")
MAX_ATTEMPTS = 10


@dataclass
class Delivery:
    alert: AlertConfig
    title: str
    text: str
    payload: dict[str, object]
    attempts: int = 0
    error: str | None = None


@dataclass
class Alerter:
    alerts: list[AlertConfig]
    history: RunHistory
    project: str
    secrets: list[str] = field(default_factory=list)
    pending: list[Delivery] = field(default_factory=list)
    sent: int = 0

    def __post_init__(self) -> None:
        self.open: dict[str, str] = open_incidents(self.history)

    def raise_(self, kind: str, subject: str, message: str) -> None:
        """Open the incident ``kind:subject`` (alerting once) unless it is open already."""
        key = f"{kind}:{subject}"
        if key in self.open:
            return
        message = self._scrub(message)
        self.open[key] = message
        record_incident(self.history, key, "open", message, dt.datetime.now(dt.UTC))
        self._queue(kind, f"[lakeforge {self.project}] {kind}: {subject}", message, key, "open")

    def clear(self, kind: str, subject: str, message: str = "") -> None:
        """Close the incident if it is open, sending a recovery message."""
        key = f"{kind}:{subject}"
        if key not in self.open:
            return
        del self.open[key]
        text = self._scrub(message or "back to normal")
        record_incident(self.history, key, "resolved", text, dt.datetime.now(dt.UTC))
        self._queue(kind, f"[lakeforge {self.project}] resolved: {kind}: {subject}", text, key, "resolved")

    def is_open(self, kind: str, subject: str) -> bool:
        return f"{kind}:{subject}" in self.open

    def flush(self) -> None:
        """Try every pending delivery once; keep the failures for the next flush."""
        still: list[Delivery] = []
        for delivery in self.pending:
            delivery.attempts += 1
            try:
                _deliver(delivery)
                self.sent += 1
                LOG.info("alert sent: %s", delivery.title)
            except (OSError, smtplib.SMTPException, ValueError) as exc:
                delivery.error = self._scrub(f"{type(exc).__name__}: {exc}")
                LOG.warning(
                    "alert not delivered (attempt %d): %s: %s", delivery.attempts, delivery.title, delivery.error
                )
                if delivery.attempts < MAX_ATTEMPTS:
                    still.append(delivery)
        self.pending = still

    def _queue(self, kind: str, title: str, text: str, key: str, state: str) -> None:
        for alert in self.alerts:
            if kind in alert.on:
                payload: dict[str, object] = {
                    "text": f"{title}\n{text}",
                    "lakeforge": {
                        "project": self.project,
                        "incident": key,
                        "kind": kind,
                        "state": state,
                        "message": text,
                    },
                }
                self.pending.append(Delivery(alert, title, text, payload))
        self.flush()

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return shorten(text)


def _deliver(delivery: Delivery) -> None:
    alert = delivery.alert
    if alert.webhook is not None:
        request = urllib.request.Request(
            alert.webhook.get_secret_value(),
            data=json.dumps(delivery.payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the user's own URL
            if response.status >= 300:
                raise OSError(f"webhook answered HTTP {response.status}")
    if alert.email is not None:
        mail = EmailMessage()
        mail["Subject"], mail["From"], mail["To"] = delivery.title, alert.email.sender, ", ".join(alert.email.to)
        mail.set_content(delivery.text)
        smtp = alert.email.smtp
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as server:
            if smtp.starttls:
                server.starttls()
            if smtp.user and smtp.password is not None:
                server.login(smtp.user, smtp.password.get_secret_value())
            server.send_message(mail)
