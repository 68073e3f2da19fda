"""Consume the topics into report facts."""

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaMessage, KafkaRouter

from schemas import topics
from schemas.case import CaseUpdated
from schemas.catalogue import AnyEvent
from schemas.dead_letter import DeadLetter
from schemas.decision import Decision
from services.common.broker import RecordPosition, subscribe
from services.reporting.facts import report_month
from services.reporting.ingest import Ingest


# A parameter annotated KafkaMessage receives the message being handled (FastStream's context).
def _position(message: KafkaMessage) -> RecordPosition:
    record: ConsumerRecord[bytes, bytes] = message.raw_message
    return (record.topic, record.partition, record.offset)


def build_routes(ingest: Ingest, *, group_id: str) -> KafkaRouter:
    routes = KafkaRouter()

    @subscribe(routes, *topics.FACTS, group_id=group_id)
    async def count_fact(event: AnyEvent, message: KafkaMessage) -> None:
        await ingest.fact(event, _position(message))

    @subscribe(routes, topics.DEAD_LETTERS, group_id=group_id)
    async def count_dead_letter(letter: DeadLetter, message: KafkaMessage) -> None:
        await ingest.dead_letter(report_month(letter.dead_lettered_at), _position(message))

    @subscribe(routes, topics.CASES, group_id=group_id)
    async def record_case(case: CaseUpdated) -> None:
        await ingest.case(case)

    @subscribe(routes, topics.DECISIONS, group_id=group_id)
    async def record_decision(decision: Decision) -> None:
        await ingest.decision(decision)

    return routes
