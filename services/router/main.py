"""Wiring: the departments and routing table, the cases on the store, the routes, metrics."""

from fastapi import FastAPI

from services.common.kafka_access import SERVICES
from services.common.service import Service
from services.router.cases import Cases
from services.router.handlers import RouterMetrics, routes
from services.router.routing import Routing
from services.router.settings import RouterSettings
from services.router.store import CaseStore


def create_app(settings: RouterSettings) -> FastAPI:
    # A bad catalogue or table stops the service here, before it consumes anything.
    routing = Routing.load(settings.departments, settings.routing_table)
    service = Service("router", settings)
    cases = Cases(CaseStore.on(service.documents), routing)
    metrics = RouterMetrics.on(service.registry, routing)
    return service.app(
        title="Qinglian router",
        topics=SERVICES["router"].topics,
        routers=[routes(service.group_id, cases, metrics, service.clock)],
    )
