"""Wiring: broker, metrics, HTTP routes."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from schemas import topics
from services.common.broker import make_broker
from services.common.store import connect
from services.common.web import service_app
from services.intake.api import build_api
from services.intake.settings import IntakeSettings


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    """422 naming each field and reason, without echoing the submitted values back."""
    if not isinstance(error, RequestValidationError):
        raise error
    problems = [
        {"field": ".".join(str(part) for part in problem["loc"]), "reason": problem["msg"]}
        for problem in error.errors()
    ]
    return JSONResponse({"detail": problems}, status_code=422)


def create_app(settings: IntakeSettings) -> FastAPI:
    registry = CollectorRegistry()
    broker = make_broker(settings, service="intake", registry=registry)
    app = service_app(
        title="Qinglian intake",
        settings=settings,
        broker=broker,
        mongo=connect(settings),
        registry=registry,
        topics=(topics.COMPLAINTS,),
    )
    app.include_router(build_api(broker, registry))
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app
