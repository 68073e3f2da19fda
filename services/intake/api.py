"""HTTP: one POST per event type, a batch POST, and the reporter's follow-up channel.

Validation is the schemas'; the rules are acceptance's and domain's; this module adapts.
"""

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, Field, JsonValue, ValidationError

from schemas import topics
from schemas.base import Contract, Submission
from schemas.case import CaseId
from schemas.catalogue import ANY_SUBMISSION, CATALOGUE, EventKind
from schemas.dead_letter import Problem
from schemas.follow_up import FollowUpText, ReporterAddition, ReporterReply
from services.common.tokens import token_digest
from services.intake.acceptance import Acceptance, Result
from services.intake.auth import FOLLOW_UP_REPLY_SCOPE, CallerDep
from services.intake.domain import Outcome, problems_of
from services.intake.repository import IntakeStore
from services.intake.wrong_codes import WrongCodeLimit

MAX_BATCH_EVENTS = 500


class Receipt(BaseModel):
    event_id: uuid.UUID
    status: Outcome
    follow_up_code: str | None = Field(
        default=None,
        description="Complaints only: give it to the reporter; it is their only way to follow "
        "the case. Kept sealed by intake and given again only to the same source system.",
    )


class ErrorDetail(BaseModel):
    detail: str | list[Problem]


_RECEIPT_STATUS = {
    Outcome.ACCEPTED: status.HTTP_202_ACCEPTED,
    Outcome.DUPLICATE: status.HTTP_200_OK,
}
_REFUSALS = {
    Outcome.CONFLICT: (
        status.HTTP_409_CONFLICT,
        "this source_ref was already used for different content; send a new source_ref",
    ),
    Outcome.UNAVAILABLE: (
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "the event bus or store is unavailable; nothing was accepted, retry later",
    ),
}
_ERROR_DESCRIPTIONS = {
    400: "The body is not UTF-8, not readable as JSON, or nested too deeply.",
    401: "Missing, unknown or revoked API key.",
    403: "The key may not send this event type, or belongs to another source system.",
    409: "The source_ref was already used for different content.",
    413: "The body is larger than allowed.",
    422: "Invalid: each problem names the field and the reason.",
    503: "Kafka or the store is unavailable; nothing was accepted.",
    404: "Not found.",
    429: "Too many wrong follow-up codes from this address for codes of this code's group.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give."""
    return {
        code: {"model": ErrorDetail, "description": _ERROR_DESCRIPTIONS[code]} for code in codes
    }


def _answer(result: Result, response: Response) -> Receipt:
    if result.outcome in _RECEIPT_STATUS:
        response.status_code = _RECEIPT_STATUS[result.outcome]
        assert result.event_id is not None  # noqa: S101 (accepted and duplicate results carry one)
        return Receipt(
            event_id=result.event_id, status=result.outcome, follow_up_code=result.follow_up_code
        )
    if result.outcome is Outcome.INVALID:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"field": f"body.{p.field}", "reason": p.reason} for p in result.problems],
        )
    code, message = _REFUSALS[result.outcome]
    raise HTTPException(code, message)


class BatchRequest(BaseModel):
    events: list[dict[str, JsonValue]] = Field(
        min_length=1,
        max_length=MAX_BATCH_EVENTS,
        description="Each item is one submission of any event type, with its event_type "
        "(see the per-type POST endpoints for each type's fields).",
    )


class BatchItemResult(BaseModel):
    index: int
    status: Outcome
    event_id: uuid.UUID | None = None
    follow_up_code: str | None = None
    problems: list[Problem] = []


class BatchResult(BaseModel):
    results: list[BatchItemResult]


class FollowUpView(BaseModel):
    """What a reporter may see: the case's status and the replies sent to them. Nothing else."""

    status: str
    updated_at: datetime
    replies: list[dict[str, Any]]


class Addition(Contract):
    text: FollowUpText


class ReplyRequest(Contract):
    case_id: CaseId
    text: FollowUpText


Publish = Callable[[BaseModel, str, bytes], Awaitable[None]]


def build_api(
    *,
    acceptance: Acceptance,
    store: IntakeStore,
    publish: Publish,
    wrong_codes: WrongCodeLimit,
    registry: CollectorRegistry,
) -> APIRouter:
    api = APIRouter(prefix="/v1")
    outcomes = Counter(
        "qinglian_intake_submissions",
        "Submissions received over HTTP, by event type and outcome.",
        ["event_type", "outcome"],
        registry=registry,
    )

    async def submit_one(kind: EventKind, submission: Submission, caller: CallerDep) -> Result:
        refusal = caller.may_send(kind.event_type, submission.source_system)
        if refusal is not None:
            outcomes.labels(kind.event_type, Outcome.FORBIDDEN).inc()
            raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
        (result,) = await acceptance.submit([submission], now=datetime.now(UTC))
        outcomes.labels(kind.event_type, result.outcome).inc()
        return result

    for kind in CATALOGUE:
        _add_submit_route(api, kind, submit_one)

    @api.post(
        "/batch",
        summary="Submit up to 500 events of any types at once",
        responses=_errors(400, 401, 413, 422),
    )
    async def submit_batch(batch: BatchRequest, caller: CallerDep) -> BatchResult:
        results: list[BatchItemResult | None] = [None] * len(batch.events)
        valid: list[tuple[int, Submission]] = []
        for index, item in enumerate(batch.events):
            try:
                submission: Submission = ANY_SUBMISSION.validate_python(item)
            except ValidationError as error:
                problems = problems_of(error.errors(include_input=False))
                results[index] = BatchItemResult(
                    index=index, status=Outcome.INVALID, problems=problems
                )
                continue
            refusal = caller.may_send(submission.event_type, submission.source_system)  # type: ignore[attr-defined]
            if refusal is not None:
                results[index] = BatchItemResult(
                    index=index,
                    status=Outcome.FORBIDDEN,
                    problems=[Problem(field="event_type", reason=refusal)],
                )
                continue
            valid.append((index, submission))
        accepted = await acceptance.submit([s for _, s in valid], now=datetime.now(UTC))
        for (index, submission), result in zip(valid, accepted, strict=True):
            outcomes.labels(submission.event_type, result.outcome).inc()  # type: ignore[attr-defined]
            results[index] = BatchItemResult(
                index=index,
                status=result.outcome,
                event_id=result.event_id,
                follow_up_code=result.follow_up_code,
                problems=list(result.problems),
            )
        return BatchResult(results=[r for r in results if r is not None])

    follow_up_code_header = Annotated[
        str, Header(alias="X-Follow-Up-Code", description="The code given with the complaint.")
    ]

    def too_many() -> HTTPException:
        return HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many wrong follow-up codes; try again later",
            headers={"Retry-After": str(int(wrong_codes.window.total_seconds()))},
        )

    async def find_follow_up(request: Request, code: str) -> dict[str, Any]:
        """The follow-up for a code. Past the wrong codes allowed, a client gets 429 for the
        codes of that group, whether or not the next one is right, so guessing learns nothing.
        The client is the connecting address (or what a trusted proxy says it is)."""
        key = wrong_codes.key(request.client.host if request.client else "unknown", code)
        now = datetime.now(UTC)
        if await wrong_codes.exhausted(key, now=now):
            raise too_many()
        follow_up = await store.follow_up(token_digest(code))
        if follow_up is not None:
            return follow_up
        if not await wrong_codes.still_allowed_after(key, now=now):
            raise too_many()
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint has this follow-up code")

    @api.get(
        "/follow-up",
        summary="A reporter follows their complaint (举报人查询)",
        responses=_errors(400, 404, 413, 422, 429),
    )
    async def follow_up(request: Request, code: follow_up_code_header) -> FollowUpView:
        record = await find_follow_up(request, code)
        return FollowUpView(
            status=record["status"],
            updated_at=record["updated_at"],
            replies=[{"at": r["at"], "text": r["text"]} for r in record.get("replies", [])],
        )

    @api.post(
        "/follow-up/additions",
        status_code=status.HTTP_202_ACCEPTED,
        summary="A reporter adds information to their complaint (补充材料)",
        responses=_errors(400, 404, 413, 422, 429),
    )
    async def add_information(
        request: Request, code: follow_up_code_header, addition: Addition
    ) -> dict[str, str]:
        record = await find_follow_up(request, code)
        now = datetime.now(UTC)
        event = ReporterAddition(
            event_id=uuid.uuid4(),
            complaint_event_id=uuid.UUID(record["_id"]),
            text=addition.text,
            received_at=now,
        )
        await publish(event, topics.REPORTER_ADDITIONS, event.complaint_event_id.bytes)
        await store.add_addition(
            event_id=record["_id"], addition={"at": now, "event_id": str(event.event_id)}
        )
        return {"status": "received"}

    @api.post(
        "/follow-up/replies",
        status_code=status.HTTP_202_ACCEPTED,
        summary="The conduct office replies to a reporter (回复举报人)",
        responses=_errors(400, 401, 403, 404, 413, 422),
    )
    async def reply(request: ReplyRequest, caller: CallerDep) -> dict[str, str]:
        if FOLLOW_UP_REPLY_SCOPE not in caller.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this key may not reply to reporters")
        now = datetime.now(UTC)
        event = ReporterReply(
            event_id=uuid.uuid4(),
            case_id=request.case_id,
            text=request.text,
            sent_by=caller.source_system,
            sent_at=now,
        )
        event_id = await store.complaint_of_case(request.case_id)
        if event_id is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint case with this id")
        # Kafka first: it carries every fact; the store's copy is what the reporter reads.
        await publish(event, topics.REPORTER_REPLIES, request.case_id.encode())
        await store.add_reply(
            event_id=event_id,
            reply={"at": now, "text": request.text, "event_id": str(event.event_id)},
        )
        return {"status": "sent"}

    return api


def _add_submit_route(
    api: APIRouter,
    kind: EventKind,
    submit_one: Callable[[EventKind, Submission, Any], Awaitable[Result]],
) -> None:
    model = kind.submission

    async def submit(submission: model, caller: CallerDep, response: Response) -> Receipt:  # type: ignore[valid-type]
        return _answer(await submit_one(kind, submission, caller), response)

    slug = kind.topic.split(".")[1]
    api.add_api_route(
        f"/{slug}",
        submit,
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        summary=f"Submit a {kind.label_en} ({kind.label_zh})",
        responses=_errors(400, 401, 403, 409, 413, 422, 503)
        | {200: {"model": Receipt, "description": "A duplicate: already accepted."}},
        response_model=Receipt,
        name=f"submit_{kind.event_type}",
    )
