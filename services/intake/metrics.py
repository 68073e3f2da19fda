"""Intake's metrics (``metrics.toml``), declared once per registry."""

from dataclasses import dataclass

from prometheus_client import Counter

from services.common.metrics import ServiceMetrics


@dataclass(frozen=True)
class IntakeMetrics(ServiceMetrics):
    submissions: Counter
    raw_records: Counter
    dead_letters: Counter
