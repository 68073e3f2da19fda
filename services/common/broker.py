"""Kafka through FastStream: one delivery policy for every service.

- Producers wait for every in-sync replica (acks=all) and are idempotent, so a retried send
  is written once.
- Consumers take batches and commit after handling them, under one delivery policy
  (``services.common.consuming``: ``consume`` and ``Delivery``, which the broker keeps in its
  context as ``DELIVERY``).
- Every Kafka client a service or command creates (this broker, the admin client creating
  topics, the rebuild and redrive readers) gets its connection and security from
  ``kafka_security`` / ``kafka_client_options``: SASL/SCRAM-SHA-512 when the settings name a
  user and password file, none for local runs.
"""

import contextlib
import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLScram512
from prometheus_client import CollectorRegistry

from schemas.topics import retention_ms
from services.common.consuming import Delivery
from services.common.logs import CorrelationMiddleware
from services.common.settings import ServiceSettings

logger = logging.getLogger(__name__)


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    """FastStream's security for the settings' SASL user, or None (no authentication)."""
    credentials = settings.kafka_credentials()
    if credentials is None:
        return None
    username, password = credentials
    if settings.kafka_sasl_mechanism == "SCRAM-SHA-512":
        return SASLScram512(username=username, password=password.get_secret_value())
    raise ValueError(f"unsupported SASL mechanism {settings.kafka_sasl_mechanism!r}")


def kafka_client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client (admin, consumer, producer): the bootstrap
    servers and the same security the broker gets, translated by FastStream's own
    ``parse_security`` so the two can never differ."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        **parse_security(kafka_security(settings)),
    }


def make_broker(
    settings: ServiceSettings,
    *,
    service: str,
    registry: CollectorRegistry,
) -> KafkaBroker:
    """The service's broker, with its delivery policy (``Delivery``, which puts itself in the
    broker's context as ``DELIVERY``, where ``consume``'s subscribers find it)."""
    broker = KafkaBroker(
        settings.kafka_bootstrap,
        security=kafka_security(settings),
        client_id=f"qinglian-{service}",
        acks="all",
        enable_idempotence=True,
        logger=logging.getLogger(f"qinglian.{service}.kafka"),
        graceful_timeout=30.0,
    )
    Delivery(
        service=service,
        broker=broker,
        max_attempts=settings.max_handler_attempts,
        max_pause=settings.retry_backoff_max_seconds,
        registry=registry,
    )
    broker.add_middleware(CorrelationMiddleware)
    broker.add_middleware(KafkaPrometheusMiddleware(registry=registry, app_name=service))
    return broker


async def ensure_topics(settings: ServiceSettings, topics: tuple[str, ...]) -> None:
    """Create the service's topics if missing, with their retention (``retention_ms``)."""
    admin = AIOKafkaAdminClient(**kafka_client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic,
                num_partitions=settings.kafka_partitions,
                replication_factor=settings.kafka_replication,
                topic_configs={
                    "retention.ms": str(retention_ms(topic)),
                    "min.insync.replicas": "1",
                },
            )
            for topic in topics
            if topic not in existing
        ]
        if missing:
            # Another instance may create a topic between our look and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()
