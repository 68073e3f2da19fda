"""Wiring: routing table, store, broker, metrics."""

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from schemas import topics
from services.common.broker import make_broker
from services.common.store import connect, database
from services.common.web import service_app
from services.router.domain import RoutingTable
from services.router.handlers import build_routes
from services.router.repository import CaseRepository
from services.router.settings import RouterSettings


def create_app(settings: RouterSettings) -> FastAPI:
    # A bad table stops the service here, before it consumes anything.
    table = RoutingTable.from_toml(
        settings.routing_table.read_text(encoding="utf-8"), source=str(settings.routing_table)
    )
    registry = CollectorRegistry()
    mongo = connect(settings)
    cases = CaseRepository(database(mongo, settings))
    broker = make_broker(settings, service="router", registry=registry)
    broker.include_router(
        build_routes(cases, table, registry, group_id=settings.consumer_group("router"))
    )
    return service_app(
        title="Qinglian router",
        settings=settings,
        broker=broker,
        mongo=mongo,
        registry=registry,
        topics=(topics.COMPLAINTS, topics.CASES_ROUTED),
        on_start=cases.ensure_indexes,
    )
