"""Wiring: rule book, store, broker, metrics, the periodic clock check."""

import asyncio
import logging

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common.broker import make_broker
from services.common.kafka_access import SERVICES
from services.common.store import connect, database
from services.common.web import service_app
from services.escalation.handlers import Clock, build_routes, system_clock
from services.escalation.repository import ConductFiles
from services.escalation.rulebook import RuleBook
from services.escalation.settings import EscalationSettings

logger = logging.getLogger(__name__)


def create_app(settings: EscalationSettings, *, clock: Clock = system_clock) -> FastAPI:
    """``clock`` tells the time to the overdue and cut-off checks; tests set it."""
    # A bad rule book stops the service here, before it consumes anything.
    book = RuleBook.from_file(settings.rules)
    registry = CollectorRegistry()
    mongo = connect(settings)
    files = ConductFiles(database(mongo, settings))
    broker = make_broker(settings, service="escalation", registry=registry)
    routes, desk = build_routes(
        files, book, registry, group_id=settings.consumer_group("escalation"), clock=clock
    )
    broker.include_router(routes)

    async def check_the_clock() -> None:
        while True:
            try:
                await desk.recheck_watched(now=clock())
            except Exception:  # the next round tries again; the reason is logged
                logger.exception("periodic check of overdue cases and cut-offs failed")
            await asyncio.sleep(settings.clock_check_seconds)

    return service_app(
        title="Qinglian escalation",
        settings=settings,
        broker=broker,
        mongo=mongo,
        registry=registry,
        topics=SERVICES["escalation"].topics,
        background=check_the_clock,
    )
