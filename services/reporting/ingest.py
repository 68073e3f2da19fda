"""Turn each record of the topics into report facts: the same code for the live service and
for a rebuild from the start of the topics."""

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from schemas import topics
from schemas.base import Event
from schemas.case import CaseUpdated
from schemas.catalogue import CATALOGUE
from schemas.decision import Decision
from schemas.kpi import KpiObservationReceived
from schemas.training import TrainingHeldReceived
from services.common.broker import RecordPosition
from services.common.departments import DepartmentCatalogue
from services.reporting.facts import CaseRecord, CountKey, case_fact, count_key

DEAD_LETTER = "dead_letter"
"""The event type dead letters are counted under."""


class ReportWriter(Protocol):
    """Where report facts go: the store record by record (``ReportRepository``), or memory
    for a rebuild (``FoldedReports``)."""

    async def count(self, key: CountKey, *, topic: str, partition: int, offset: int) -> bool: ...
    async def record_case(self, record: CaseRecord) -> None: ...
    async def record_decision(self, decision: Decision) -> bool: ...
    async def record_observation(self, observation: KpiObservationReceived) -> None: ...
    async def record_training(self, session: TrainingHeldReceived) -> None: ...


class Ingest:
    def __init__(
        self,
        reports: ReportWriter,
        registry: CollectorRegistry,
        *,
        departments: DepartmentCatalogue,
    ) -> None:
        self.reports = reports
        self.departments = departments
        """Whose heads a complaint may accuse (``count_key``)."""
        self.events = Counter(
            "qinglian_events",
            "Events counted into the reports, by event type (dead letters too).",
            ["event_type"],
            registry=registry,
        )
        self.decisions = Counter(
            "qinglian_escalations",
            "Escalation decisions recorded, by rule and kind.",
            ["rule_id", "kind"],
            registry=registry,
        )
        for kind in CATALOGUE:
            self.events.labels(kind.event_type)
        self.events.labels(DEAD_LETTER)

    async def fact(self, event: Event, position: RecordPosition) -> None:
        """Count a fact; keep what the reports read of some (KPI observations, sessions)."""
        if isinstance(event, KpiObservationReceived):
            await self.reports.record_observation(event)
        if isinstance(event, TrainingHeldReceived):
            await self.reports.record_training(event)
        await self._count(count_key(event, self.departments), position)

    async def dead_letter(self, month: str, position: RecordPosition) -> None:
        await self._count(CountKey(month=month, department=None, event_type=DEAD_LETTER), position)

    async def case(self, case: CaseUpdated) -> CaseRecord:
        record = case_fact(case)
        await self.reports.record_case(record)
        return record

    async def decision(self, decision: Decision) -> None:
        if await self.reports.record_decision(decision):
            self.decisions.labels(decision.rule_id, decision.kind).inc()

    async def _count(self, key: CountKey, position: RecordPosition) -> None:
        topic, partition, offset = position
        if await self.reports.count(key, topic=topic, partition=partition, offset=offset):
            self.events.labels(key.event_type).inc()


REPORT_TOPICS = (*topics.FACTS, topics.CASES, topics.DECISIONS, topics.DEAD_LETTERS)
"""Every topic the reports are built from."""
