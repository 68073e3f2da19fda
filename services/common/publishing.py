"""Publishing for a service that answers requests: each topic through a publisher declared on
the broker (so the AsyncAPI document shows who writes what), and a quick look at Kafka first.

A record handed to the idempotent producer during an outage is never given up: its publish
would hold the request until Kafka is back, or go out after an answer that said nothing was
accepted. So a request handler asks ``kafka_reachable`` first and answers 503 when it is not.
"""

from collections.abc import Awaitable, Callable, Mapping

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

Publish = Callable[[BaseModel, str, bytes], Awaitable[None]]
"""Publish a message on a topic with a key; returns once Kafka acknowledged it."""


class Publishing:
    def __init__(
        self,
        broker: KafkaBroker,
        messages: Mapping[str, type[BaseModel]],
        *,
        kafka_check_seconds: float,
    ) -> None:
        """``messages``: what each topic the service writes carries."""
        self.broker = broker
        self.kafka_check_seconds = kafka_check_seconds
        self.publishers = {
            topic: broker.publisher(topic, title=topic, schema=message)
            for topic, message in messages.items()
        }

    async def __call__(self, message: BaseModel, topic: str, key: bytes) -> None:
        """Publish; returns once Kafka acknowledged (acks=all)."""
        await self.publishers[topic].publish(message, key=key)

    async def kafka_reachable(self) -> bool:
        """Whether Kafka answers within ``kafka_check_seconds``."""
        return await self.broker.ping(timeout=self.kafka_check_seconds)
