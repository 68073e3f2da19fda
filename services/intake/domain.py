"""Intake's rules: what makes a submission acceptable beyond its schema, and how a repeat is
judged. Pure: no Kafka, no database, no clock."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from schemas.base import Submission
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
    """Times a schema cannot judge alone: nothing may have happened in the future."""
    if submission.occurred_at > now + tolerance:
        return [Problem(field="occurred_at", reason="lies in the future")]
    return []


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
