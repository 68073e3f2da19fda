"""Kafka: what the portal learns, a batch at a time — the follow-up codes intake gave (as
their digests), the cases as they change, and the conduct office's replies."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from faststream.kafka import KafkaRouter
from pydantic import BaseModel

from schemas import topics
from schemas.case import CaseUpdated
from schemas.follow_up import FollowUpCodeIssued, ReporterReply
from services.common.consuming import Received, bound, consume, parse_model
from services.portal.follow_ups import FollowUps

M = TypeVar("M", bound=BaseModel)


async def learn_codes(follow_ups: FollowUps, batch: list[Received[FollowUpCodeIssued]]) -> None:
    """Know each follow-up code intake gave, by its digest."""
    await follow_ups.learn_codes([record.value for record in batch])


async def follow_cases(follow_ups: FollowUps, batch: list[Received[CaseUpdated]]) -> None:
    """Keep the state of each complaint case, at its highest revision."""
    await follow_ups.follow_cases([record.value for record in batch])


async def keep_replies(follow_ups: FollowUps, batch: list[Received[ReporterReply]]) -> None:
    """Keep the conduct office's replies, for the reporter of each case."""
    await follow_ups.keep_replies([record.value for record in batch])


HandlerOf = Callable[[FollowUps, list[Received[M]]], Awaitable[None]]


def routes(group_id: str, follow_ups: FollowUps) -> KafkaRouter:
    router = KafkaRouter()

    def subscribe(topic: str, model: type[M], handler: HandlerOf[M]) -> None:
        consume(router, topic, group_id=group_id, parse=parse_model(model))(
            bound(handler, follow_ups)
        )

    subscribe(topics.FOLLOW_UP_CODES, FollowUpCodeIssued, learn_codes)
    subscribe(topics.CASES, CaseUpdated, follow_cases)
    subscribe(topics.REPORTER_REPLIES, ReporterReply, keep_replies)
    return router
