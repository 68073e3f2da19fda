"""Rules over a department's file. Pure.

- R-RECTIFY (004 §七(二)): perfunctory, ineffective or refused rectification earns a criticism
  notice (通报批评); repeated within the window, it is reported upward.
"""

from datetime import datetime, timedelta

from schemas.decision import Decision, DecisionKind, EscalationTarget
from schemas.rectification import RectificationStatusReceived
from services.escalation.conduct import ConductFile, decide
from services.escalation.rulebook import RuleBook
from services.escalation.rules.leads import RECTIFY


def rectification_notices(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    rule = book.rectify
    window = timedelta(days=rule.window_days)
    failures = [
        status
        for status in file.of_type(RectificationStatusReceived)
        if status.status in rule.opens_case
    ]
    decisions = []
    for index, status in enumerate(failures):
        decisions.append(
            decide(
                book,
                rule_id=RECTIFY,
                key=f"status:{status.event_id}",
                kind=DecisionKind.NOTICE,
                subject=file,
                as_of=status.occurred_at,
                sources=[status],
                facts={"item": status.item, "status": status.status},
                explanation_zh=(
                    f"{file.subject_id}整改事项“{status.item}”{status.status.label_zh}，通报批评。"
                ),
                explanation_en=(
                    f"Department {file.subject_id}: rectification of {status.item!r} was found "
                    f"{status.status}; a criticism notice is issued."
                ),
                now=now,
            )
        )
        within = [s for s in failures[: index + 1] if status.occurred_at - s.occurred_at <= window]
        if len(within) == rule.report_upward_at:
            decisions.append(
                decide(
                    book,
                    rule_id=RECTIFY,
                    key=f"status:{status.event_id}:upward",
                    kind=DecisionKind.ESCALATION,
                    escalate_to=EscalationTarget.SUPERIOR_HEALTH_AUTHORITY,
                    subject=file,
                    as_of=status.occurred_at,
                    sources=within,
                    facts={"failures": len(within), "window_days": rule.window_days},
                    explanation_zh=(
                        f"{file.subject_id}{rule.window_days}日内{len(within)}次整改不到位，"
                        "按上级卫生行政部门的有关规定上报处理。"
                    ),
                    explanation_en=(
                        f"Department {file.subject_id} failed rectification {len(within)} times "
                        f"within {rule.window_days} days: reported upward."
                    ),
                    now=now,
                )
            )
    return decisions
