"""The notifier's subscribers: decisions (what to tell whom), cases (whose a case is, whom it
accuses) and acknowledgements, each consumed in batches and handed to the application layer
(``outbox.Notifier``). Offsets are committed once a batch's notifications are recorded;
sending is the outbox's own periodic round, apart from consuming."""

from faststream.kafka import KafkaRouter

from schemas import topics
from schemas.acknowledgement import NotificationAcknowledged
from schemas.case import CaseUpdated
from schemas.decision import Decision
from services.common.consuming import Input, Received, consume_each
from services.notifier.outbox import Notifier


async def notify_decisions(notifier: Notifier, batch: list[Received[Decision]]) -> None:
    """Escalation's decisions: the notifications each makes, recorded in the outbox."""
    await notifier.take_decisions([received.value for received in batch])


async def know_cases(notifier: Notifier, batch: list[Received[CaseUpdated]]) -> None:
    """Cases as the router publishes them: whose each is and whom it accuses."""
    await notifier.take_cases([received.value for received in batch])


async def take_acknowledgements(
    notifier: Notifier, batch: list[Received[NotificationAcknowledged]]
) -> None:
    """Acknowledgements made on the desk: no more reminders."""
    await notifier.take_acknowledgements([received.value for received in batch])


def routes(group_id: str, notifier: Notifier) -> KafkaRouter:
    kafka_routes = KafkaRouter()
    inputs: list[Input] = [
        (topics.DECISIONS, Decision, notify_decisions),
        (topics.CASES, CaseUpdated, know_cases),
        (topics.ACKNOWLEDGEMENTS, NotificationAcknowledged, take_acknowledgements),
    ]
    consume_each(kafka_routes, inputs, notifier, group_id=group_id)
    return kafka_routes
