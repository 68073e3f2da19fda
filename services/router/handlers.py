"""Consume the events that open and change cases, a batch at a time; publish each case a batch
concerns once its changes are saved (also when nothing changed: a crash after saving must not
lose the case; readers keep the highest revision). Offsets are committed after the batch."""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Self

from faststream.kafka.publisher import DefaultPublisher
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas import topics
from schemas.complaint import ComplaintReceived
from schemas.lead import Lead
from services.common.logs import correlated
from services.common.metrics import Metrics, metric
from services.common.service import Clock
from services.router.cases import Applied, Cases
from services.router.domain import Opening, Update
from services.router.routing import Routing

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouterMetrics(Metrics):
    opened: Counter = metric("qinglian_cases_opened")
    changes: Counter = metric("qinglian_case_changes")
    waiting: Counter = metric("qinglian_case_updates_parked")
    latency: Histogram = metric("qinglian_routing_latency_seconds")
    routing_table: Gauge = metric("qinglian_routing_table_info")

    @classmethod
    def with_routing(cls, registry: CollectorRegistry, routing: Routing) -> Self:
        """The router's metrics, saying which routing table it loaded."""
        metrics = cls.on(registry)
        metrics.routing_table.labels(routing.version).set(1)
        return metrics

    def count(self, applied: Applied, openings: Sequence[Opening] = (), *, now: datetime) -> None:
        for entry in applied.new_entries:
            self.changes.labels(entry.change).inc()
        for case in applied.opened():
            self.opened.labels(
                case.responsible_department.code, case.kind, case.category or ""
            ).inc()
        self.waiting.inc(applied.waiting)
        routed = applied.routed()
        for opening in openings:
            if opening.source_event_id in routed:
                self.latency.observe(max(0.0, (now - opening.received_at).total_seconds()))


@dataclass(frozen=True)
class Handling:
    """Opens and changes the cases the events concern, and publishes each case a batch
    concerns."""

    cases: Cases
    metrics: RouterMetrics
    publisher: DefaultPublisher
    clock: Clock

    async def open_for_complaints(self, complaints: Sequence[ComplaintReceived]) -> None:
        """Open a case for each complaint, or link it to an open case against the same staff
        member in the same category."""
        await self._open_or_link([Opening.of_complaint(complaint) for complaint in complaints])

    async def open_for_leads(self, leads: Sequence[Lead]) -> None:
        """Open a case for each lead escalation raises."""
        await self._open_or_link([Opening.of_lead(lead) for lead in leads])

    async def record(self, updates: Sequence[Update]) -> None:
        """Record on its case each investigation finding, action of the conduct office (or why
        it was refused), reporter's addition and reply to a reporter."""
        now = self.clock()
        applied = await self.cases.record(updates, now=now)
        self.metrics.count(applied, now=now)
        await self._publish(applied)

    async def _open_or_link(self, openings: Sequence[Opening]) -> None:
        now = self.clock()
        applied = await self.cases.open_or_link(openings, now=now)
        self.metrics.count(applied, openings, now=now)
        await self._publish(applied)

    async def _publish(self, applied: Applied) -> None:
        for written in applied.written:
            for entry in written.new_entries:
                with correlated(entry.source_event_id, written.after.case_id):
                    logger.info("case %s: %s", written.after.case_id, entry.change)
        await asyncio.gather(
            *(
                self.publisher.publish(case, key=case.case_id.encode())
                for case in applied.cases.values()
            )
        )


UPDATES = (
    topics.INVESTIGATION_FINDINGS,
    topics.CASE_ACTIONS,
    topics.REPORTER_ADDITIONS,
    topics.REPORTER_REPLIES,
)
"""The topics whose events change cases already open (``Handling.record``)."""
