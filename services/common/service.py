"""What every service starts with, made once: settings, store, broker and its delivery policy,
metrics, the clock, periodic work, and the HTTP app (/healthz, /metrics, offline /docs).

A service's ``main.py`` wires with it and nothing else::

    service = Service("router", settings, clock=clock)
    cases = Cases(RouterStore(service.documents), ...)
    handling = Handling(cases, ...)
    return service.app(title="Qinglian router", consumes={topics.LEADS: handling.open_for_leads})

and its ``__main__.py`` runs it: ``serve("router", RouterSettings, create_app)``.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaRouter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.common.broker import ensure_topics, make_broker
from services.common.consuming import DELIVERY, Delivery, Take, consumers
from services.common.docs import app_with_offline_docs
from services.common.documents import Documents, MongoDocuments
from services.common.kafka_access import SERVICES
from services.common.lag import REFRESH_SECONDS, BrokerOffsets, ConsumerLag
from services.common.logs import configure_logging
from services.common.settings import ServiceSettings
from services.common.store import connect, database

logger = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]
Task = Callable[[], Awaitable[None]]


def wired(kind: type[T], name: str) -> Callable[[Request], T]:
    """A FastAPI dependency: the ``kind`` that ``main.py`` put on the app's state as ``name``
    (``kind`` is for the type checker)."""

    def from_state(request: Request) -> T:
        found: T = getattr(request.app.state, name)
        return found

    return from_state


def system_clock() -> datetime:
    """The time, in UTC. Services take a ``Clock`` so that tests can set it."""
    return datetime.now(UTC)


async def run_every(seconds: float, task: Task, *, what: str) -> None:
    """Run ``task`` now and every ``seconds`` after, until cancelled. A round that fails is
    logged (once until one succeeds again) and the next round tries again."""
    failing = False
    while True:
        try:
            await task()
        except Exception:
            if not failing:
                logger.exception("%s failed; trying again every %.0f s", what, seconds)
            failing = True
        else:
            if failing:
                logger.info("%s works again", what)
            failing = False
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Periodic:
    seconds: float
    task: Task
    what: str


class Service:
    """One running service: made from its settings, wired in its ``main.py``."""

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        clock: Clock = system_clock,
        documents: Documents | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock
        self.registry = CollectorRegistry()
        self.mongo = connect(settings)
        self.documents = documents or MongoDocuments(database(self.mongo, settings))
        self.broker = make_broker(settings, service=name, registry=self.registry)
        self.delivery: Delivery = self.broker.context.get(DELIVERY)
        self.group_id = settings.consumer_group(name)
        self.periodic: list[Periodic] = []
        self.on_start: list[Task] = [self.documents.prepare]
        self.on_stop: list[Task] = []
        """Run at shutdown once the periodic tasks stopped, before the broker stops."""

    def context(self, **values: Any) -> None:
        """Put values in the broker's context, where handlers ask for them by name."""
        for name, value in values.items():
            self.broker.context.set_global(name, value)

    def every(self, seconds: float, task: Task, *, what: str) -> None:
        """Run ``task`` every ``seconds`` while the service runs."""
        self.periodic.append(Periodic(seconds, task, what))

    def app(
        self,
        *,
        title: str,
        topics: Iterable[str] | None = None,
        consumes: Mapping[str, Take] | None = None,
        routers: Sequence[KafkaRouter] = (),
        apis: Sequence[APIRouter] = (),
    ) -> FastAPI:
        """The service's HTTP app; its lifespan creates the ``topics`` (by default the
        service's own, ``SERVICES``), runs the start hooks, starts the broker and the periodic
        tasks, and on shutdown stops them in reverse (in-flight handlers finish and commit
        before the store client closes). ``consumes``: each topic the service consumes, with
        the method the values of its batches go to."""
        if topics is None:
            topics = SERVICES[self.name].topics
        if consumes:
            routers = [*routers, consumers(consumes, group_id=self.group_id)]
        for router in routers:
            self.broker.include_router(router)
        lag = ConsumerLag(self.broker, self.registry, BrokerOffsets(self.settings))
        every = [*self.periodic, Periodic(REFRESH_SECONDS, lag.round, "reading the consumer lag")]
        lifespan = self._lifespan(tuple(topics), every, stop=lag.offsets.close)
        app = app_with_offline_docs(title=title, lifespan=lifespan)
        app.state.broker = self.broker  # for the AsyncAPI document (tools/generate_contracts.py)
        app.state.service = self
        app.include_router(self._operations())
        for api in apis:
            app.include_router(api)
        return app

    def _lifespan(
        self, topics: tuple[str, ...], every: list[Periodic], *, stop: Task
    ) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await ensure_topics(self.settings, topics)
            for hook in self.on_start:
                await hook()
            await self.broker.start()
            tasks = [asyncio.create_task(run_every(p.seconds, p.task, what=p.what)) for p in every]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await stop()
                for hook in self.on_stop:
                    await hook()
                await self.broker.stop()
                await self.mongo.close()

        return lifespan

    def _operations(self) -> APIRouter:
        operations = APIRouter(tags=["operations"])

        @operations.get("/healthz", summary="Broker and store reachable")
        async def healthz() -> JSONResponse:
            kafka_ok = await self.broker.ping(timeout=2.0)
            try:
                await self.mongo.admin.command("ping")
                store_ok = True
            except Exception:  # any failure means "not healthy"; the store's log says why
                store_ok = False
            healthy = kafka_ok and store_ok
            return JSONResponse(
                {
                    "status": "ok" if healthy else "unavailable",
                    "kafka": kafka_ok,
                    "store": store_ok,
                },
                status_code=200 if healthy else 503,
            )

        @operations.get("/metrics", summary="Prometheus metrics")
        async def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        return operations


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


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
