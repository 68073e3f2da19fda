"""The desk's read model from the topics, a batch at a time: cases (highest revision),
complaints with their text (never a contact: intake keeps it), findings, escalation's decisions,
reporters' additions, the replies sent, the notifier's notifications and their
acknowledgements."""

from faststream.kafka import KafkaRouter

from schemas import topics
from schemas.acknowledgement import NotificationAcknowledged
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived
from schemas.decision import Decision
from schemas.finding import InvestigationFindingReceived
from schemas.follow_up import ReporterAddition, ReporterReply
from schemas.notification import NotificationUpdated
from services.common.consuming import Received, bound, consume, parse_model
from services.desk.readmodel import ReadModel


async def keep_cases(batch: list[Received[CaseUpdated]], *, read_model: ReadModel) -> None:
    """Keep each case at its highest revision, and its row in the list."""
    await read_model.cases(record.value for record in batch)


async def keep_complaints(
    batch: list[Received[ComplaintReceived]], *, read_model: ReadModel
) -> None:
    """Keep each complaint as received: its description is what the case page shows."""
    await read_model.complaints(record.value for record in batch)


async def keep_findings(
    batch: list[Received[InvestigationFindingReceived]], *, read_model: ReadModel
) -> None:
    """Keep each finding whole (the case's history has only its gist)."""
    await read_model.findings(record.value for record in batch)


async def keep_decisions(batch: list[Received[Decision]], *, read_model: ReadModel) -> None:
    """Keep escalation's decisions, for the pages of the cases they name."""
    await read_model.decisions(record.value for record in batch)


async def keep_additions(batch: list[Received[ReporterAddition]], *, read_model: ReadModel) -> None:
    """Keep what reporters added to their complaints."""
    await read_model.additions(record.value for record in batch)


async def keep_replies(batch: list[Received[ReporterReply]], *, read_model: ReadModel) -> None:
    """Keep the replies sent to reporters."""
    await read_model.replies(record.value for record in batch)


async def keep_notifications(
    batch: list[Received[NotificationUpdated]], *, read_model: ReadModel
) -> None:
    """Keep who was told of what, and where each notification stands."""
    await read_model.notifications(record.value for record in batch)


async def keep_acknowledgements(
    batch: list[Received[NotificationAcknowledged]], *, read_model: ReadModel
) -> None:
    """Keep who acknowledged each notification, and when (from any desk instance)."""
    await read_model.acknowledgements(record.value for record in batch)


def routes(group_id: str, *, read_model: ReadModel) -> KafkaRouter:
    router = KafkaRouter()
    for topic, model, handler in (
        (topics.CASES, CaseUpdated, keep_cases),
        (topics.COMPLAINTS, ComplaintReceived, keep_complaints),
        (topics.INVESTIGATION_FINDINGS, InvestigationFindingReceived, keep_findings),
        (topics.DECISIONS, Decision, keep_decisions),
        (topics.REPORTER_ADDITIONS, ReporterAddition, keep_additions),
        (topics.REPORTER_REPLIES, ReporterReply, keep_replies),
        (topics.NOTIFICATIONS, NotificationUpdated, keep_notifications),
        (topics.ACKNOWLEDGEMENTS, NotificationAcknowledged, keep_acknowledgements),
    ):
        consume(router, topic, group_id=group_id, parse=parse_model(model))(
            bound(handler, read_model=read_model)
        )
    return router
