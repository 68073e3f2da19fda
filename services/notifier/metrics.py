"""The notifier's metrics (``qinglian_notifications_*``), declared once."""

from dataclasses import dataclass
from typing import Self

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class NotifierMetrics:
    recorded: Counter
    sent: Counter
    attempts_failed: Counter
    failed: Counter
    acknowledged: Counter
    overdue: Gauge

    @classmethod
    def on(cls, registry: CollectorRegistry) -> Self:
        return cls(
            recorded=Counter(
                "qinglian_notifications_recorded",
                "Notifications recorded in the outbox, by what they are about and purpose "
                "(decision, reminder, superior).",
                ["send_key", "purpose"],
                registry=registry,
            ),
            sent=Counter(
                "qinglian_notifications_sent",
                "Notifications a channel took, by channel (email, robot).",
                ["channel"],
                registry=registry,
            ),
            attempts_failed=Counter(
                "qinglian_notifications_attempts_failed",
                "Attempts a channel refused or could not be reached for; tried again later.",
                ["channel"],
                registry=registry,
            ),
            failed=Counter(
                "qinglian_notifications_failed",
                "Notifications given up after the configured attempts.",
                ["send_key"],
                registry=registry,
            ),
            acknowledged=Counter(
                "qinglian_notifications_acknowledged",
                "Notifications acknowledged on the desk.",
                ["send_key"],
                registry=registry,
            ),
            overdue=Gauge(
                "qinglian_notifications_unacknowledged_overdue",
                "Notifications sent, not acknowledged, past their deadline; urgent: escalations "
                "to the judicial organs or the superior health authority.",
                ["urgent"],
                registry=registry,
            ),
        )
