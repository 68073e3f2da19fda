"""R-MONTHLY-STUDY (000 §三(三)): the months in which a department held no study session.
Pure; the monthly report lists the departments under 存在问题. Which sessions count is data
(``study.toml``)."""

from collections.abc import Iterable
from pathlib import Path

from pydantic import Field

from schemas.training import TrainingHeldReceived, TrainingKind
from services.common.datafile import DataFile

STUDY_FILE = Path(__file__).with_name("study.toml")


class StudyRule(DataFile):
    """Which sessions count as the month's study."""

    counting_kinds: tuple[TrainingKind, ...] = Field(min_length=1)


def months_without_study(
    sessions: Iterable[TrainingHeldReceived], months: Iterable[str], rule: StudyRule
) -> list[str]:
    """Those of ``months`` (YYYY-MM) with no counting session among ``sessions``."""
    held = {
        session.held_on.strftime("%Y-%m")
        for session in sessions
        if session.kind in rule.counting_kinds
    }
    return sorted(set(months) - held)
