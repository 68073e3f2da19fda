"""Wiring: rule book, store, broker, metrics."""

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from schemas import topics
from services.common.broker import make_broker
from services.common.store import connect, database
from services.common.web import service_app
from services.escalation.handlers import build_routes
from services.escalation.repository import DecisionRepository
from services.escalation.rulebook import RuleBook
from services.escalation.settings import EscalationSettings


def create_app(settings: EscalationSettings) -> FastAPI:
    # A bad rule book stops the service here, before it consumes anything.
    book = RuleBook.from_file(settings.rules)
    registry = CollectorRegistry()
    mongo = connect(settings)
    decisions = DecisionRepository(database(mongo, settings))
    broker = make_broker(settings, service="escalation", registry=registry)
    broker.include_router(
        build_routes(decisions, book, registry, group_id=settings.consumer_group("escalation"))
    )
    return service_app(
        title="Qinglian escalation",
        settings=settings,
        broker=broker,
        mongo=mongo,
        registry=registry,
        topics=(
            topics.VISITOR_LOGS,
            topics.SATISFACTION_RATINGS,
            topics.RECTIFICATION_STATUSES,
            topics.LEADS,
        ),
    )
