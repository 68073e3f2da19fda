"""Consume routed cases, apply the rules, store and publish the decisions."""

from datetime import UTC, datetime

from faststream.kafka import KafkaResponse, KafkaRouter
from prometheus_client import CollectorRegistry, Counter

from schemas import topics
from schemas.case import CaseRouted, DeadlineSet
from services.common.broker import subscribe
from services.escalation.domain import RuleBook, investigation_deadline
from services.escalation.repository import DecisionRepository


def build_routes(
    decisions: DecisionRepository, rules: RuleBook, registry: CollectorRegistry, *, group_id: str
) -> KafkaRouter:
    routes = KafkaRouter()
    decided = Counter(
        "qinglian_decisions", "Decisions published, by rule.", ["rule_id"], registry=registry
    )

    @routes.publisher(topics.CASE_DEADLINES, schema=DeadlineSet)
    @subscribe(routes, topics.CASES_ROUTED, group_id=group_id)
    async def set_deadline(case: CaseRouted) -> KafkaResponse:
        decision = await decisions.record_deadline(
            investigation_deadline(case, rules, now=datetime.now(UTC))
        )
        decided.labels(decision.rule_id).inc()
        return KafkaResponse(decision, key=decision.case_id.encode())

    return routes
