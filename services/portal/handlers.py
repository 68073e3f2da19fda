"""Kafka: what the portal learns, a batch at a time — the follow-up codes intake gave (as
their digests), the cases as they change, and the conduct office's replies."""

from faststream.kafka import KafkaRouter

from schemas import topics
from schemas.case import CaseUpdated
from schemas.follow_up import FollowUpCodeIssued, ReporterReply
from services.common.consuming import Input, Received, consume_each
from services.portal.follow_ups import FollowUps


async def learn_codes(follow_ups: FollowUps, batch: list[Received[FollowUpCodeIssued]]) -> None:
    """Know each follow-up code intake gave, by its digest."""
    await follow_ups.learn_codes([record.value for record in batch])


async def follow_cases(follow_ups: FollowUps, batch: list[Received[CaseUpdated]]) -> None:
    """Keep the state of each complaint case, at its highest revision."""
    await follow_ups.follow_cases([record.value for record in batch])


async def keep_replies(follow_ups: FollowUps, batch: list[Received[ReporterReply]]) -> None:
    """Keep the conduct office's replies, for the reporter of each case."""
    await follow_ups.keep_replies([record.value for record in batch])


def routes(group_id: str, follow_ups: FollowUps) -> KafkaRouter:
    router = KafkaRouter()

    inputs: list[Input] = [
        (topics.FOLLOW_UP_CODES, FollowUpCodeIssued, learn_codes),
        (topics.CASES, CaseUpdated, follow_cases),
        (topics.REPORTER_REPLIES, ReporterReply, keep_replies),
    ]
    consume_each(router, inputs, follow_ups, group_id=group_id)
    return router
