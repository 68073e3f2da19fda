"""Intake's rules: what makes a submission acceptable beyond its schema, and how a repeat is
judged. Pure: no Kafka, no database, no clock."""

from datetime import date, datetime, timedelta
from enum import StrEnum

from schemas.base import HOSPITAL_TIME_ZONE, Submission
from schemas.dead_letter import Problem


class SubmissionStatus(StrEnum):
    """What became of one submission: the ``status`` of intake's answer."""

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


def judge_repeat(*, stored_fingerprint: str, fingerprint: str) -> SubmissionStatus:
    if stored_fingerprint == fingerprint:
        return SubmissionStatus.DUPLICATE
    return SubmissionStatus.CONFLICT


def canonical(submission: Submission) -> bytes:
    """The bytes a submission's fingerprint is taken over: equal content, equal bytes."""
    return submission.model_dump_json().encode()
