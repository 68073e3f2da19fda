"""Wiring: store, broker, metrics, HTTP routes."""

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from schemas import topics
from services.common.broker import make_broker
from services.common.store import connect, database
from services.common.web import service_app
from services.reporting.api import build_api
from services.reporting.handlers import build_routes
from services.reporting.repository import ReportRepository
from services.reporting.settings import ReportingSettings


def create_app(settings: ReportingSettings) -> FastAPI:
    registry = CollectorRegistry()
    mongo = connect(settings)
    reports = ReportRepository(database(mongo, settings))
    broker = make_broker(settings, service="reporting", registry=registry)
    broker.include_router(build_routes(reports, group_id=settings.consumer_group("reporting")))
    app = service_app(
        title="Qinglian reporting",
        settings=settings,
        broker=broker,
        mongo=mongo,
        registry=registry,
        topics=(topics.CASES,),
        on_start=reports.ensure_indexes,
    )
    app.include_router(build_api(reports))
    return app
