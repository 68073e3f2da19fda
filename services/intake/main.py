"""Wiring: store, vault, broker, acceptance, HTTP routes, raw-topic consumer."""

from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException

from schemas import topics
from schemas.base import Event
from schemas.catalogue import BY_TYPE, CATALOGUE
from schemas.follow_up import ReporterAddition, ReporterReply
from services.common.broker import make_broker
from services.common.kafka_access import SERVICES
from services.common.raw_senders import RawSenders
from services.common.store import connect, database, is_unreachable
from services.common.web import service_app
from services.intake.acceptance import Acceptance
from services.intake.api import build_api
from services.intake.auth import ApiKeys
from services.intake.body_limit import BodySizeLimit
from services.intake.crypto import Vault
from services.intake.domain import problems_of
from services.intake.handlers import build_routes
from services.intake.repository import IntakeStore
from services.intake.settings import IntakeSettings
from services.intake.wrong_codes import WrongCodeLimit


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    """422 naming each field and reason, without echoing the submitted values back."""
    if not isinstance(error, RequestValidationError):
        raise error
    problems = problems_of(error.errors())
    return JSONResponse({"detail": [p.model_dump() for p in problems]}, status_code=422)


async def _store_unavailable(_: Request, error: Exception) -> JSONResponse:
    """The store did not answer where no route catches it (an API key not remembered any
    more, a follow-up code): 503 like any outage, not a 500."""
    if not (isinstance(error, PyMongoError) and is_unreachable(error)):
        raise error
    return JSONResponse(
        {"detail": "the store is unavailable; nothing was accepted, retry later"},
        status_code=503,
    )


async def _unreadable_body(request: Request, error: Exception) -> Response:
    """FastAPI answers 400 when it cannot read a body as JSON; say why, naming the body."""
    if isinstance(error, HTTPException) and error.status_code == 400:
        if isinstance(error.__cause__, UnicodeDecodeError):
            reason = "the body is not valid UTF-8"
        elif isinstance(error.__cause__, RecursionError):
            reason = "the body is nested too deeply"
        elif isinstance(error.__cause__, ValueError):  # e.g. a number with thousands of digits
            reason = "the body could not be read as JSON"
        else:
            return await http_exception_handler(request, error)
        return JSONResponse({"detail": [{"field": "body", "reason": reason}]}, status_code=400)
    if isinstance(error, HTTPException) and error.status_code == 413:  # a streamed body too long
        return JSONResponse(
            {"detail": [{"field": "body", "reason": error.detail}]}, status_code=413
        )
    if not isinstance(error, HTTPException):
        raise error
    return await http_exception_handler(request, error)


def create_app(settings: IntakeSettings) -> FastAPI:
    # A bad senders file stops the service here, before it consumes anything.
    senders = RawSenders.from_file(settings.raw_senders)
    registry = CollectorRegistry()
    mongo = connect(settings)
    store = IntakeStore(database(mongo, settings))
    vault = Vault(settings.master_key())
    broker = make_broker(settings, service="intake", registry=registry)

    # Declared publishers, so the AsyncAPI document shows what intake publishes where.
    publishers = {
        kind.topic: broker.publisher(kind.topic, title=kind.topic, schema=kind.event)
        for kind in CATALOGUE
    } | {
        topics.REPORTER_ADDITIONS: broker.publisher(
            topics.REPORTER_ADDITIONS, title=topics.REPORTER_ADDITIONS, schema=ReporterAddition
        ),
        topics.REPORTER_REPLIES: broker.publisher(
            topics.REPORTER_REPLIES, title=topics.REPORTER_REPLIES, schema=ReporterReply
        ),
    }

    async def publish(message: BaseModel, topic: str, key: bytes) -> None:
        await publishers[topic].publish(message, key=key)

    async def publish_event(event: Event) -> None:
        kind = BY_TYPE[event.event_type]  # type: ignore[attr-defined]
        await publish(event, kind.topic, kind.key(event))

    async def kafka_reachable() -> bool:
        return await broker.ping(timeout=settings.kafka_check_seconds)

    acceptance = Acceptance(
        store=store,
        vault=vault,
        publish=publish_event,
        future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
        kafka_reachable=kafka_reachable,
    )
    broker.include_router(
        build_routes(
            acceptance=acceptance,
            vault=vault,
            store=store,
            senders=senders,
            registry=registry,
            group_id=settings.consumer_group("intake"),
        )
    )
    app = service_app(
        title="Qinglian intake",
        settings=settings,
        broker=broker,
        mongo=mongo,
        registry=registry,
        topics=(*senders.topics(), *SERVICES["intake"].topics),
        on_start=store.ensure_indexes,
    )
    app.state.api_keys = ApiKeys(store, cache_seconds=settings.api_key_cache_seconds)
    wrong_codes = WrongCodeLimit(
        store,
        vault,
        allowed=settings.follow_up_failures_allowed,
        window=timedelta(seconds=settings.follow_up_failure_window_seconds),
    )
    app.include_router(
        build_api(
            acceptance=acceptance,
            store=store,
            publish=publish,
            wrong_codes=wrong_codes,
            registry=registry,
        )
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _unreadable_body)
    app.add_exception_handler(PyMongoError, _store_unavailable)
    app.add_middleware(
        BodySizeLimit,
        limit=settings.max_event_bytes,
        by_path={"/v1/batch": settings.max_batch_bytes},
    )
    return app
