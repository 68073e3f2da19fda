"""The notifier's metrics (declared in services/common/metrics.toml)."""

from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from services.common.metrics import Metrics, metric


@dataclass(frozen=True)
class NotifierMetrics(Metrics):
    recorded: Counter = metric("qinglian_notifications_recorded")
    sent: Counter = metric("qinglian_notifications_sent")
    attempts_failed: Counter = metric("qinglian_notifications_attempts_failed")
    failed: Counter = metric("qinglian_notifications_failed")
    acknowledged: Counter = metric("qinglian_notifications_acknowledged")
    overdue: Gauge = metric("qinglian_notifications_unacknowledged_overdue")
