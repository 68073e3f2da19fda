"""Intake's metrics, declared once per registry."""

from dataclasses import dataclass
from typing import Self

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class IntakeMetrics:
    submissions: Counter
    raw_records: Counter
    dead_letters: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> Self:
        return cls(
            submissions=Counter(
                "qinglian_intake_submissions",
                "Submissions received over HTTP, by event type and outcome.",
                ["event_type", "outcome"],
                registry=registry,
            ),
            raw_records=Counter(
                "qinglian_intake_raw_records",
                "Records read from the raw topic, by outcome.",
                ["outcome"],
                registry=registry,
            ),
            dead_letters=Counter(
                "qinglian_dead_letters",
                "Records sent to the dead-letter topic, by reason.",
                ["reason"],
                registry=registry,
            ),
        )
