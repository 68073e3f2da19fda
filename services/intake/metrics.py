"""Intake's metrics (declared in services/common/metrics.toml)."""

from dataclasses import dataclass

from prometheus_client import Counter

from services.common.metrics import Metrics, metric


@dataclass(frozen=True)
class IntakeMetrics(Metrics):
    submissions: Counter = metric("qinglian_intake_submissions")
    raw_records: Counter = metric("qinglian_intake_raw_records")
    dead_letters: Counter = metric("qinglian_dead_letters")
