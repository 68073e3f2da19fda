"""Wiring: departments and routing table, store, broker, metrics."""

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common.broker import make_broker
from services.common.kafka_access import SERVICES
from services.common.store import connect, database
from services.common.web import service_app
from services.router.desk import CaseDesk
from services.router.domain import Routing
from services.router.handlers import build_routes
from services.router.repository import CaseRepository
from services.router.settings import RouterSettings


def create_app(settings: RouterSettings) -> FastAPI:
    # A bad catalogue or table stops the service here, before it consumes anything.
    routing = Routing.load(settings.departments, settings.routing_table)
    registry = CollectorRegistry()
    mongo = connect(settings)
    desk = CaseDesk(CaseRepository(database(mongo, settings)), routing)
    broker = make_broker(settings, service="router", registry=registry)
    broker.include_router(
        build_routes(desk, routing, registry, group_id=settings.consumer_group("router"))
    )
    return service_app(
        title="Qinglian router",
        settings=settings,
        broker=broker,
        mongo=mongo,
        registry=registry,
        topics=SERVICES["router"].topics,
    )
