"""R-MONTHLY-STUDY (000 §三(三)): the months in which a department held no study session.
Pure; reporting lists them under 存在问题 in the monthly report."""

from collections.abc import Iterable

from schemas.training import TrainingHeldReceived
from services.escalation.rulebook import RuleBook


def months_without_study(
    sessions: Iterable[TrainingHeldReceived], months: Iterable[str], book: RuleBook
) -> list[str]:
    """Those of ``months`` (YYYY-MM) with no counting session among ``sessions``."""
    held = {
        session.held_on.strftime("%Y-%m")
        for session in sessions
        if session.kind in book.monthly_study.counting_kinds
    }
    return sorted(set(months) - held)
