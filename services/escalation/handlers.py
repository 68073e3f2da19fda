"""Consume events, apply the rules, store and publish the decisions."""

from collections.abc import Callable
from typing import TypeVar

from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter

from schemas import topics
from schemas.base import Event
from schemas.lead import Lead
from schemas.rectification import RectificationStatusReceived
from schemas.satisfaction import SatisfactionReceived
from schemas.visitor_log import VisitorLogReceived
from services.common.broker import subscribe
from services.escalation.repository import DecisionRepository
from services.escalation.rulebook import RuleBook
from services.escalation.rules import leads

E = TypeVar("E", bound=Event)


def build_routes(
    decisions: DecisionRepository, book: RuleBook, registry: CollectorRegistry, *, group_id: str
) -> KafkaRouter:
    routes = KafkaRouter()
    decided = Counter(
        "qinglian_decisions", "Decisions published, by rule.", ["rule_id"], registry=registry
    )
    lead_publisher = routes.publisher(topics.LEADS, schema=Lead)

    async def publish_lead(event: E, rule: Callable[[E, RuleBook], Lead | None]) -> None:
        lead = rule(event, book)
        if lead is None:
            return
        await decisions.record_lead(lead)
        # Published on every delivery: a crash after storing must not lose the lead; the
        # router is idempotent on its source event.
        await lead_publisher.publish(lead, key=lead.source_event_id.bytes)
        decided.labels(lead.rule_id).inc()

    @subscribe(routes, topics.VISITOR_LOGS, group_id=group_id)
    async def check_visit(visit: VisitorLogReceived) -> None:
        await publish_lead(visit, leads.visit_lead)

    @subscribe(routes, topics.SATISFACTION_RATINGS, group_id=group_id)
    async def check_rating(rating: SatisfactionReceived) -> None:
        await publish_lead(rating, leads.satisfaction_lead)

    @subscribe(routes, topics.RECTIFICATION_STATUSES, group_id=group_id)
    async def check_rectification(status: RectificationStatusReceived) -> None:
        await publish_lead(status, leads.rectification_lead)

    return routes
