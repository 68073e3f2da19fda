"""The HTTP surface every service has: /healthz, /metrics, and a lifespan that runs the broker."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pymongo import AsyncMongoClient

from services.common.broker import ensure_topics
from services.common.docs import app_with_offline_docs
from services.common.lag import BrokerOffsets, ConsumerLag
from services.common.logs import configure_logging
from services.common.settings import ServiceSettings
from services.common.store import Document

Hook = Callable[[], Coroutine[Any, Any, None]]
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


async def _nothing() -> None:
    return None


def service_app(
    *,
    title: str,
    settings: ServiceSettings,
    broker: KafkaBroker,
    mongo: AsyncMongoClient[Document],
    registry: CollectorRegistry,
    topics: tuple[str, ...],
    on_start: Hook = _nothing,
    background: Hook | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan creates topics, runs ``on_start``, then starts the broker,
    the ``background`` task (a periodic check) and the consumer lag gauge's refresh.

    On shutdown the background tasks are cancelled, the broker stops (in-flight handlers finish
    and commit), then the store client closes.
    """

    lag = ConsumerLag(broker, registry, BrokerOffsets(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, topics)
        await on_start()
        await broker.start()
        tasks = [asyncio.create_task(lag.run())]
        if background is not None:
            tasks.append(asyncio.create_task(background()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await broker.stop()
            await mongo.close()

    app = app_with_offline_docs(title=title, lifespan=lifespan)
    app.state.broker = broker  # for the AsyncAPI document (tools/generate_contracts.py)

    @app.get("/healthz", tags=["operations"], summary="Broker and store reachable")
    async def healthz() -> JSONResponse:
        kafka_ok = await broker.ping(timeout=2.0)
        try:
            await mongo.admin.command("ping")
            store_ok = True
        except Exception:  # any failure means "not healthy"; the reason is in the store's log
            store_ok = False
        healthy = kafka_ok and store_ok
        return JSONResponse(
            {"status": "ok" if healthy else "unavailable", "kafka": kafka_ok, "store": store_ok},
            status_code=200 if healthy else 503,
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(
    service: str, settings_type: type[SettingsT], create_app: Callable[[SettingsT], FastAPI]
) -> None:
    """Run a service until SIGTERM or SIGINT, then shut down gracefully. Logging is set up
    first, so that even what reading the settings says is a JSON line."""
    configure_logging(service, "INFO")
    settings = settings_type()
    logging.getLogger().setLevel(settings.log_level)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's lines go through the JSON handler too
        timeout_graceful_shutdown=30,
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 unless told otherwise.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
    )
