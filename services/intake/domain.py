"""Intake's rules: what makes a submission acceptable beyond its schema, and how a repeat is
judged. Pure: no Kafka, no database, no clock."""

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from schemas.base import HOSPITAL_TIME_ZONE, Submission
from schemas.dead_letter import Problem


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    """The same event again: answered with the original event id, not published again."""
    CONFLICT = "conflict"
    """The same source reference with different content: refused, never overwritten."""
    INVALID = "invalid"
    FORBIDDEN = "forbidden"
    UNAVAILABLE = "unavailable"
    """Kafka or the store did not answer; nothing was accepted, the sender should retry."""


def timing_problems(
    submission: Submission, *, now: datetime, tolerance: timedelta
) -> list[Problem]:
    """What a schema cannot judge alone: no time or date a submission reports may lie in the
    future (beyond ``tolerance``, for other systems' clocks)."""
    latest = now + tolerance
    latest_day = latest.astimezone(HOSPITAL_TIME_ZONE).date()
    problems = []
    for name in type(submission).model_fields:
        value = getattr(submission, name)
        if isinstance(value, datetime):
            late = value > latest
        elif isinstance(value, date):
            late = value > latest_day
        else:
            continue
        if late:
            problems.append(Problem(field=name, reason="lies in the future"))
    return problems


def judge_repeat(*, stored_fingerprint: str, fingerprint: str) -> Outcome:
    return Outcome.DUPLICATE if stored_fingerprint == fingerprint else Outcome.CONFLICT


def canonical(submission: Submission) -> bytes:
    """The bytes a submission's fingerprint is taken over: equal content, equal bytes."""
    return submission.model_dump_json().encode()


def problems_of(errors: Iterable[Any], *, prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    """Pydantic's errors as field + reason, without the submitted values."""
    return [
        Problem(
            field=".".join(str(part) for part in (*prefix, *error["loc"])) or "body",
            reason=error["msg"],
        )
        for error in errors
    ]
