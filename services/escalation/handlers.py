"""Escalation's subscribers: each consumes one input topic in batches and hands the batch to the
application layer (``filing.Escalation``); the decisions and leads it makes are published
here, counted.

``routes`` subscribes each handler in a consumer group of its own (``consume``); a batch's
offsets are committed once its handler returned.
"""

import asyncio
from collections.abc import Sequence

from faststream.kafka import KafkaBroker, KafkaRouter
from prometheus_client import CollectorRegistry, Counter

from schemas import topics
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived
from schemas.decision import Decision
from schemas.finding import InvestigationFindingReceived
from schemas.lead import Lead
from schemas.prescription import PrescriptionRankingReceived
from schemas.promotion import PromotionApplicationReceived
from schemas.rectification import RectificationStatusReceived
from schemas.satisfaction import SatisfactionReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.visitor_log import VisitorLogReceived
from services.common.consuming import Input, Received, consume_each, subscriber_group
from services.common.lag import BrokerOffsets, waiting
from services.common.settings import ServiceSettings
from services.escalation.conduct import FileEvent
from services.escalation.filing import Escalation


class CasesTopic:
    """Whether every case revision published so far is in the conduct files: the cases
    subscriber's consumer group (whichever instance reads each partition) has committed the
    end of every partition."""

    def __init__(self, settings: ServiceSettings, group_id: str) -> None:
        self.offsets = BrokerOffsets(settings)
        self.group = subscriber_group(group_id, topics.CASES)

    async def all_read(self) -> bool:
        partitions = await self.offsets.partitions([topics.CASES])
        ends = await self.offsets.ranges_of(partitions)
        committed = await self.offsets.committed(self.group)
        return not any(waiting(ends[tp], committed.get(tp)) for tp in partitions)


class Publishing:
    """The decisions and leads topics, and what was published on them."""

    def __init__(self, broker: KafkaBroker, registry: CollectorRegistry) -> None:
        self.decision_topic = broker.publisher(topics.DECISIONS, schema=Decision)
        self.lead_topic = broker.publisher(topics.LEADS, schema=Lead)
        self.decided = Counter(
            "qinglian_decisions",
            "Decisions published, by rule and kind (corrections and withdrawals included).",
            ["rule_id", "kind"],
            registry=registry,
        )
        self.corrected = Counter(
            "qinglian_decision_corrections",
            "Decisions that corrected or withdrew an earlier one, by rule.",
            ["rule_id"],
            registry=registry,
        )
        self.raised = Counter(
            "qinglian_leads",
            "Leads raised (events that open a case), by rule.",
            ["rule_id"],
            registry=registry,
        )

    async def decisions(self, decisions: Sequence[Decision]) -> None:
        """Keyed by subject, so that a subject's decisions stay in order."""
        await asyncio.gather(
            *(self.decision_topic.publish(d, key=d.subject_id.encode()) for d in decisions)
        )
        for decision in decisions:
            self.decided.labels(decision.rule_id, decision.kind).inc()
            if decision.corrects is not None:
                self.corrected.labels(decision.rule_id).inc()

    async def leads(self, leads: Sequence[Lead]) -> None:
        await asyncio.gather(
            *(self.lead_topic.publish(lead, key=lead.source_event_id.bytes) for lead in leads)
        )
        for lead in leads:
            self.raised.labels(lead.rule_id).inc()


async def file_events(escalation: Escalation, batch: list[Received[FileEvent]]) -> None:
    """Complaints, findings, promotion applications, prescription rankings: into the files of
    the staff members and companies they concern."""
    await escalation.file_events([received.value for received in batch])


async def file_events_raising_leads(
    escalation: Escalation, batch: list[Received[FileEvent]]
) -> None:
    """Surrenders, visits, rectification statuses: leads first (a late surrender, a visit
    against the rules, a failed rectification), then into the files they concern."""
    await escalation.raise_leads([received.value for received in batch])
    await escalation.file_events([received.value for received in batch])


async def raise_leads(escalation: Escalation, batch: list[Received[SatisfactionReceived]]) -> None:
    """Satisfaction ratings: leads only (a low score, a comment naming gifts or scalping)."""
    await escalation.raise_leads([received.value for received in batch])


async def file_cases(escalation: Escalation, batch: list[Received[CaseUpdated]]) -> None:
    """Cases as the router publishes them: into the cases' own files (R-EVERY-COMPLAINT)."""
    await escalation.file_cases([received.value for received in batch])


INPUTS: tuple[Input, ...] = (
    (topics.COMPLAINTS, ComplaintReceived, file_events),
    (topics.INVESTIGATION_FINDINGS, InvestigationFindingReceived, file_events),
    (topics.PROMOTION_APPLICATIONS, PromotionApplicationReceived, file_events),
    (topics.PRESCRIPTION_RANKINGS, PrescriptionRankingReceived, file_events),
    (topics.RED_ENVELOPE_SURRENDERS, RedEnvelopeSurrenderReceived, file_events_raising_leads),
    (topics.VISITOR_LOGS, VisitorLogReceived, file_events_raising_leads),
    (topics.RECTIFICATION_STATUSES, RectificationStatusReceived, file_events_raising_leads),
    (topics.SATISFACTION_RATINGS, SatisfactionReceived, raise_leads),
    (topics.CASES, CaseUpdated, file_cases),
)
"""Each input topic, what it carries and its handler."""


def routes(group_id: str, escalation: Escalation) -> KafkaRouter:
    router = KafkaRouter()
    consume_each(router, INPUTS, escalation, group_id=group_id)
    return router
