"""Escalation's Kafka side: which input topics go where in the application layer
(``filing.Escalation``; ``main.py`` subscribes each in a consumer group of its own, and a
batch's offsets are committed once it was handled), and the publishing of the decisions and
leads it makes, counted."""

import asyncio
from collections.abc import Sequence

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from schemas import topics
from schemas.decision import Decision
from schemas.lead import Lead
from services.common.consuming import subscriber_group
from services.common.lag import BrokerOffsets, waiting
from services.common.metrics import counter
from services.common.settings import ServiceSettings


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
        self.decided = counter("qinglian_decisions", registry)
        self.corrected = counter("qinglian_decision_corrections", registry)
        self.raised = counter("qinglian_leads", registry)

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


FILED = (
    topics.COMPLAINTS,
    topics.INVESTIGATION_FINDINGS,
    topics.PROMOTION_APPLICATIONS,
    topics.PRESCRIPTION_RANKINGS,
)
"""Topics whose events go into the files of the staff members and companies they concern."""

RAISING_LEADS = (topics.RED_ENVELOPE_SURRENDERS, topics.VISITOR_LOGS, topics.RECTIFICATION_STATUSES)
"""Topics whose events may raise a lead, then go into the files they concern."""
