"""HTTP routes: one POST per event type. Validation is the schema's; this only adapts."""

from datetime import UTC, datetime

from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, status
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, Field

from schemas import topics
from schemas.complaint import ComplaintReceived, ComplaintSubmission


class Accepted(BaseModel):
    event_id: str
    status: str = Field(examples=["accepted"])


def build_api(broker: KafkaBroker, registry: CollectorRegistry) -> APIRouter:
    api = APIRouter(prefix="/v1")
    accepted = Counter(
        "qinglian_intake_accepted",
        "Events accepted and published, by event type.",
        ["event_type"],
        registry=registry,
    )

    @api.post(
        "/complaints",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Submit a complaint or whistleblower report (投诉举报)",
        responses={503: {"description": "The event bus is unavailable; retry later."}},
    )
    async def submit_complaint(submission: ComplaintSubmission) -> Accepted:
        event = ComplaintReceived.accept(submission, received_at=datetime.now(UTC))
        try:
            await broker.publish(event, topics.COMPLAINTS, key=event.event_id.bytes)
        except KafkaError as error:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "event bus unavailable; retry later"
            ) from error
        accepted.labels("complaint").inc()
        return Accepted(event_id=str(event.event_id), status="accepted")

    return api
