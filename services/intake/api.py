"""HTTP, the machines' front door: one POST per event type, a batch POST, and the conduct
office's replies to reporters (which the reporters read on the portal).

Validation is the schemas'; the rules are acceptance's and domain's; this module adapts.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, Field, JsonValue, ValidationError

from schemas import topics
from schemas.base import Contract, Flag, Submission
from schemas.case import CaseId
from schemas.catalogue import ANY_SUBMISSION, CATALOGUE, EventKind
from schemas.dead_letter import DeadLetter, Problem, problems_of
from schemas.follow_up import FollowUpCodeIssued, FollowUpText, ReporterReply
from services.common.credentials import Credentials
from services.common.publishing import Publishing
from services.common.service import Clock, wired
from services.intake.acceptance import Acceptance, Result
from services.intake.auth import FOLLOW_UP_REPLY_SCOPE, Caller, CallerDep
from services.intake.domain import SubmissionStatus
from services.intake.metrics import IntakeMetrics

MAX_BATCH_EVENTS = 500
PUBLISHED: dict[str, type[BaseModel]] = {
    **{kind.topic: kind.event for kind in CATALOGUE},
    topics.FOLLOW_UP_CODES: FollowUpCodeIssued,
    topics.REPORTER_REPLIES: ReporterReply,
    topics.DEAD_LETTERS: DeadLetter,
}
"""What intake publishes where: the accepted events on their fact topics, the follow-up codes'
digests, the office's replies to reporters, and the raw records it refused."""


@dataclass(frozen=True)
class IntakeApi:
    """What the routes work with (``app.state.intake``, set by main.py)."""

    acceptance: Acceptance
    keys: Credentials
    publish: Publishing
    metrics: IntakeMetrics
    clock: Clock


IntakeDep = Annotated[IntakeApi, Depends(wired(IntakeApi, "intake"))]


class Receipt(BaseModel):
    event_id: uuid.UUID
    status: SubmissionStatus
    follow_up_code: str | None = Field(
        default=None,
        description="Complaints only: give it to the reporter; it is their only way to follow "
        "the case. Kept sealed by intake and given again only to the same source system.",
    )


class ErrorDetail(BaseModel):
    detail: str | list[Problem]


class BatchRequest(BaseModel):
    events: list[dict[str, JsonValue]] = Field(
        min_length=1,
        max_length=MAX_BATCH_EVENTS,
        description="Each item is one submission of any event type, with its event_type "
        "(see the per-type POST endpoints for each type's fields).",
    )


class BatchItemResult(BaseModel):
    index: int
    status: SubmissionStatus
    event_id: uuid.UUID | None = None
    follow_up_code: str | None = None
    problems: list[Problem] = []


class BatchResult(BaseModel):
    results: list[BatchItemResult]


class ReplyRequest(Contract):
    case_id: CaseId
    text: FollowUpText
    shares_outcome: Flag = Field(
        default=False, description="The text is the outcome of the case, shared as such."
    )


_RECEIPT_STATUS = {
    SubmissionStatus.ACCEPTED: status.HTTP_202_ACCEPTED,
    SubmissionStatus.DUPLICATE: status.HTTP_200_OK,
}
_UNAVAILABLE = "the event bus or store is unavailable; nothing was accepted, retry later"
_REFUSALS = {
    SubmissionStatus.CONFLICT: (
        status.HTTP_409_CONFLICT,
        "this source_ref was already used for different content; send a new source_ref",
    ),
    SubmissionStatus.UNAVAILABLE: (status.HTTP_503_SERVICE_UNAVAILABLE, _UNAVAILABLE),
}
_ERROR_DESCRIPTIONS = {
    400: "The body is not UTF-8, not readable as JSON, or nested too deeply.",
    401: "Missing, unknown or revoked API key.",
    403: "The key may not send this event type, or belongs to another source system.",
    409: "The source_ref was already used for different content.",
    413: "The body is larger than allowed.",
    422: "Invalid: each problem names the field and the reason.",
    503: "Kafka or the store is unavailable; nothing was accepted.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give."""
    return {
        code: {"model": ErrorDetail, "description": _ERROR_DESCRIPTIONS[code]} for code in codes
    }


router = APIRouter(prefix="/v1")


def _answer(result: Result, response: Response) -> Receipt:
    if result.status in _RECEIPT_STATUS:
        response.status_code = _RECEIPT_STATUS[result.status]
        assert result.event_id is not None  # noqa: S101 (accepted and duplicate results carry one)
        return Receipt(
            event_id=result.event_id, status=result.status, follow_up_code=result.follow_up_code
        )
    if result.status is SubmissionStatus.INVALID:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"field": f"body.{p.field}", "reason": p.reason} for p in result.problems],
        )
    code, message = _REFUSALS[result.status]
    raise HTTPException(code, message)


async def _submit_one(
    intake: IntakeApi, kind: EventKind, submission: Submission, caller: Caller
) -> Result:
    refusal = caller.may_send(kind.event_type, submission.source_system)
    if refusal is not None:
        intake.metrics.submissions.labels(kind.event_type, SubmissionStatus.FORBIDDEN).inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
    (result,) = await intake.acceptance.submit([submission], now=intake.clock())
    intake.metrics.submissions.labels(kind.event_type, result.status).inc()
    return result


def _submit_route(kind: EventKind) -> Callable[..., Awaitable[Receipt]]:
    """The POST of one event type, taking that type's submission."""
    model = kind.submission

    async def submit(
        submission: model,  # type: ignore[valid-type]
        caller: CallerDep,
        intake: IntakeDep,
        response: Response,
    ) -> Receipt:
        return _answer(await _submit_one(intake, kind, submission, caller), response)

    return submit


for _kind in CATALOGUE:
    router.add_api_route(
        f"/{_kind.topic.split('.')[1]}",
        _submit_route(_kind),
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        summary=f"Submit a {_kind.label_en} ({_kind.label_zh})",
        responses=_errors(400, 401, 403, 409, 413, 422, 503)
        | {200: {"model": Receipt, "description": "A duplicate: already accepted."}},
        response_model=Receipt,
        name=f"submit_{_kind.event_type}",
    )


def _screened(
    batch: BatchRequest, caller: Caller
) -> tuple[dict[int, BatchItemResult], list[tuple[int, Submission]]]:
    """The batch's items refused at once (invalid, forbidden), and the others, by index."""
    refused: dict[int, BatchItemResult] = {}
    valid: list[tuple[int, Submission]] = []
    for index, item in enumerate(batch.events):
        try:
            submission: Submission = ANY_SUBMISSION.validate_python(item)
        except ValidationError as error:
            problems = problems_of(error.errors(include_input=False))
            refused[index] = BatchItemResult(
                index=index, status=SubmissionStatus.INVALID, problems=problems
            )
            continue
        refusal = caller.may_send(submission.event_type, submission.source_system)  # type: ignore[attr-defined]
        if refusal is not None:
            refused[index] = BatchItemResult(
                index=index,
                status=SubmissionStatus.FORBIDDEN,
                problems=[Problem(field="event_type", reason=refusal)],
            )
            continue
        valid.append((index, submission))
    return refused, valid


@router.post(
    "/batch",
    summary="Submit up to 500 events of any types at once",
    responses=_errors(400, 401, 413, 422),
)
async def submit_batch(batch: BatchRequest, caller: CallerDep, intake: IntakeDep) -> BatchResult:
    results, valid = _screened(batch, caller)
    accepted = await intake.acceptance.submit([s for _, s in valid], now=intake.clock())
    for (index, submission), result in zip(valid, accepted, strict=True):
        intake.metrics.submissions.labels(submission.event_type, result.status).inc()  # type: ignore[attr-defined]
        results[index] = BatchItemResult(
            index=index,
            status=result.status,
            event_id=result.event_id,
            follow_up_code=result.follow_up_code,
            problems=list(result.problems),
        )
    return BatchResult(results=[results[index] for index in sorted(results)])


@router.post(
    "/follow-up/replies",
    status_code=status.HTTP_202_ACCEPTED,
    summary="The conduct office replies to a reporter (回复举报人)",
    description="Published on qinglian.reporter-replies.v1; the reporter reads it on the "
    "portal with their follow-up code, once the case is the reporter's complaint's.",
    responses=_errors(400, 401, 403, 413, 422, 503),
)
async def reply(request: ReplyRequest, caller: CallerDep, intake: IntakeDep) -> dict[str, str]:
    if FOLLOW_UP_REPLY_SCOPE not in caller.scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key may not reply to reporters")
    event = ReporterReply(
        event_id=uuid.uuid4(),
        case_id=request.case_id,
        text=request.text,
        sent_by=caller.source_system,
        sent_at=intake.clock(),
        shares_outcome=request.shares_outcome,
    )
    if not await intake.publish.kafka_reachable():
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, _UNAVAILABLE)
    try:
        await intake.publish(event, topics.REPORTER_REPLIES, request.case_id.encode())
    except KafkaError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, _UNAVAILABLE) from None
    return {"status": "sent"}
