"""Consume the events that open and change cases, a batch at a time; publish each case a batch
concerns once its changes are saved (also when nothing changed: a crash after saving must not
lose the case; readers keep the highest revision). Offsets are committed after the batch."""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Self

from faststream.kafka import KafkaRouter
from faststream.kafka.publisher import DefaultPublisher
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas import topics
from schemas.case import CaseUpdated
from schemas.case_action import CaseActionReceived
from schemas.complaint import ComplaintReceived
from schemas.finding import InvestigationFindingReceived
from schemas.follow_up import ReporterAddition, ReporterReply
from schemas.lead import Lead
from services.common.consuming import Input, Received, consume_each
from services.common.logs import correlated
from services.common.service import Clock
from services.router.cases import Applied, Cases
from services.router.domain import Opening, Update
from services.router.routing import Routing

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouterMetrics:
    opened: Counter
    changes: Counter
    waiting: Counter
    latency: Histogram

    @classmethod
    def on(cls, registry: CollectorRegistry, routing: Routing) -> Self:
        Gauge(
            "qinglian_routing_table_info", "Routing table loaded.", ["version"], registry=registry
        ).labels(routing.version).set(1)
        return cls(
            opened=Counter(
                "qinglian_cases_opened",
                "Cases opened, by responsible department, kind and category.",
                ["department", "kind", "category"],
                registry=registry,
            ),
            changes=Counter(
                "qinglian_case_changes",
                "Changes recorded on cases, by change.",
                ["change"],
                registry=registry,
            ),
            waiting=Counter(
                "qinglian_case_updates_parked",
                "Updates that arrived before their case was open and wait for it.",
                registry=registry,
            ),
            latency=Histogram(
                "qinglian_routing_latency_seconds",
                "From intake's receipt of an event to its case being opened or linked.",
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                registry=registry,
            ),
        )

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
    """What the handlers work with."""

    cases: Cases
    metrics: RouterMetrics
    publisher: DefaultPublisher
    clock: Clock


async def route_complaints(handling: Handling, batch: list[Received[ComplaintReceived]]) -> None:
    """Open a case for each complaint, or link it to an open case against the same staff
    member in the same category."""
    await _open_or_link(handling, [Opening.of_complaint(record.value) for record in batch])


async def route_leads(handling: Handling, batch: list[Received[Lead]]) -> None:
    """Open a case for each lead escalation raises."""
    await _open_or_link(handling, [Opening.of_lead(record.value) for record in batch])


async def record_findings(
    handling: Handling, batch: list[Received[InvestigationFindingReceived]]
) -> None:
    """Record each investigation finding on its case."""
    await _record(handling, [record.value for record in batch])


async def take_actions(handling: Handling, batch: list[Received[CaseActionReceived]]) -> None:
    """Apply each action of the conduct office to its case, or record why it was refused."""
    await _record(handling, [record.value for record in batch])


async def add_reporter_information(
    handling: Handling, batch: list[Received[ReporterAddition]]
) -> None:
    """Note on the case that its reporter added information."""
    await _record(handling, [record.value for record in batch])


async def note_replies(handling: Handling, batch: list[Received[ReporterReply]]) -> None:
    """Note on the case that the conduct office replied to its reporter."""
    await _record(handling, [record.value for record in batch])


async def _open_or_link(handling: Handling, openings: Sequence[Opening]) -> None:
    now = handling.clock()
    applied = await handling.cases.open_or_link(openings, now=now)
    handling.metrics.count(applied, openings, now=now)
    await _publish(handling, applied)


async def _record(handling: Handling, updates: Sequence[Update]) -> None:
    now = handling.clock()
    applied = await handling.cases.record(updates, now=now)
    handling.metrics.count(applied, now=now)
    await _publish(handling, applied)


async def _publish(handling: Handling, applied: Applied) -> None:
    for written in applied.written:
        for entry in written.new_entries:
            with correlated(entry.source_event_id, written.after.case_id):
                logger.info("case %s: %s", written.after.case_id, entry.change)
    await asyncio.gather(
        *(
            handling.publisher.publish(case, key=case.case_id.encode())
            for case in applied.cases.values()
        )
    )


def routes(group_id: str, cases: Cases, metrics: RouterMetrics, clock: Clock) -> KafkaRouter:
    kafka_routes = KafkaRouter()
    publisher = kafka_routes.publisher(topics.CASES, schema=CaseUpdated)
    handling = Handling(cases, metrics, publisher, clock)

    inputs: list[Input] = [
        (topics.COMPLAINTS, ComplaintReceived, route_complaints),
        (topics.LEADS, Lead, route_leads),
        (topics.INVESTIGATION_FINDINGS, InvestigationFindingReceived, record_findings),
        (topics.CASE_ACTIONS, CaseActionReceived, take_actions),
        (topics.REPORTER_ADDITIONS, ReporterAddition, add_reporter_information),
        (topics.REPORTER_REPLIES, ReporterReply, note_replies),
    ]
    consume_each(kafka_routes, inputs, handling, group_id=group_id)
    return kafka_routes
