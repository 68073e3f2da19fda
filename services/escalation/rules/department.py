"""Rules over a department's file. Pure.

- R-RECTIFY (004 §七(二)): perfunctory, ineffective or refused rectification earns a criticism
  notice (通报批评); repeated within the window, it is reported upward.
"""

from datetime import datetime, timedelta
from operator import attrgetter

from schemas.rectification import RectificationStatusReceived
from services.escalation.conduct import ConductFile
from services.escalation.outcomes import CriticismNotice, RectificationReportedUpward
from services.escalation.rulebook import RuleBook
from services.escalation.rules.windows import trailing


def rectification_notices(
    file: ConductFile, book: RuleBook, *, now: datetime
) -> list[CriticismNotice]:
    rule = book.rectify
    window = timedelta(days=rule.window_days)
    failures = [
        status
        for status in file.of_type(RectificationStatusReceived)
        if status.status in rule.opens_case
    ]
    notices: list[CriticismNotice] = []
    for status, within in trailing(failures, window, attrgetter("occurred_at")):
        notices.append(CriticismNotice(status))
        if len(within) == rule.report_upward_at:
            notices.append(RectificationReportedUpward(status, within, rule.window_days))
    return notices
