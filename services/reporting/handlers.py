"""Consume every topic the reports are built from, a batch at a time, into report facts
(``ingest.Ingest``); the metrics of what was counted and kept."""

from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from schemas import topics
from schemas.base import Event
from schemas.case import CaseUpdated
from schemas.catalogue import CATALOGUE, AnyEvent
from schemas.dead_letter import DeadLetter
from schemas.decision import Decision
from services.common.consuming import Received, bound, consume, parse_model
from services.common.metrics import counter, gauge
from services.reporting.ingest import DEAD_LETTER, Ingest
from services.reporting.reports import Reports

_ANY_EVENT: TypeAdapter[Event] = TypeAdapter(AnyEvent)


class Metrics:
    """Reporting's own metrics, in the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = counter("qinglian_events", registry)
        self.decisions = counter("qinglian_escalations", registry)
        self.cases = gauge("qinglian_cases", registry)
        for kind in CATALOGUE:
            self.events.labels(kind.event_type)
        self.events.labels(DEAD_LETTER)


async def count_facts(batch: list[Received[Event]], *, ingest: Ingest, metrics: Metrics) -> None:
    """Count each fact event once in the monthly reports; keep KPI observations and study
    sessions."""
    for event_type, n in (await ingest.facts(batch)).items():
        metrics.events.labels(event_type).inc(n)


async def count_dead_letters(
    batch: list[Received[DeadLetter]], *, ingest: Ingest, metrics: Metrics
) -> None:
    """Count each dead letter once in the hospital's monthly report."""
    for event_type, n in (await ingest.dead_letters(batch)).items():
        metrics.events.labels(event_type).inc(n)


async def record_cases(batch: list[Received[CaseUpdated]], *, ingest: Ingest) -> None:
    """Keep the latest revision of each case."""
    await ingest.cases(batch)


async def record_decisions(
    batch: list[Received[Decision]], *, ingest: Ingest, metrics: Metrics
) -> None:
    """Keep each of escalation's decisions once."""
    for decision in await ingest.decisions(batch):
        metrics.decisions.labels(decision.rule_id, decision.kind).inc()


async def refresh_case_gauges(reports: Reports, metrics: Metrics) -> None:
    """The open and overdue case gauges, as the cases stand now."""
    open_cases, overdue = await reports.case_gauges()
    metrics.cases.labels("open").set(open_cases)
    metrics.cases.labels("overdue").set(overdue)


def routes(group_id: str, *, ingest: Ingest, metrics: Metrics) -> KafkaRouter:
    router = KafkaRouter()
    given = {"ingest": ingest, "metrics": metrics}
    consume(router, *topics.FACTS, group_id=group_id, parse=_ANY_EVENT.validate_json)(
        bound(count_facts, **given)
    )
    consume(router, topics.DEAD_LETTERS, group_id=group_id, parse=parse_model(DeadLetter))(
        bound(count_dead_letters, **given)
    )
    consume(router, topics.CASES, group_id=group_id, parse=parse_model(CaseUpdated))(
        bound(record_cases, ingest=ingest)
    )
    consume(router, topics.DECISIONS, group_id=group_id, parse=parse_model(Decision))(
        bound(record_decisions, **given)
    )
    return router
