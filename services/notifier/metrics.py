"""The notifier's metrics (``qinglian_notifications_*``, in ``metrics.toml``), declared once."""

from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from services.common.metrics import ServiceMetrics


@dataclass(frozen=True)
class NotifierMetrics(ServiceMetrics):
    recorded: Counter
    sent: Counter
    attempts_failed: Counter
    failed: Counter
    acknowledged: Counter
    overdue: Gauge
