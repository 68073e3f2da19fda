"""Rules over a company's conduct file. Pure.

- R-VENDOR-CUTOFF (000 §二, §六(十二)): a company in a substantiated benefit transfer is
  referred to the regulator and cut off for the configured years; its visits meanwhile are
  flagged; the cut-off is lifted when it ends.
- R-REP-VISIT (000 §六(十五)): a rep in a clinical area is removed at once (驱离).
- R-REP-REPEAT (derived): repeated visit breaches within the window go to the leadership group.
"""

from datetime import datetime, timedelta
from functools import partial

from schemas.base import HOSPITAL_TIME_ZONE, hospital_day
from schemas.decision import Decision, DecisionKind, EscalationTarget
from schemas.visitor_log import VisitorLogReceived
from services.escalation.conduct import ConductFile, decide
from services.escalation.rulebook import RuleBook
from services.escalation.rules.leads import REP_VISIT, visit_breaches
from services.escalation.rules.staff import add_years

VENDOR_CUTOFF = "R-VENDOR-CUTOFF"
REP_REPEAT = "R-REP-REPEAT"


def vendor_cutoffs(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    rule = book.vendor_cutoff
    today = hospital_day(now)
    decisions = []
    for finding in file.standing_findings():
        confirmed = [c for c in finding.confirmed_categories if c in rule.categories]
        if not (finding.substantiated and finding.company_code == file.subject_id and confirmed):
            continue
        start = hospital_day(finding.occurred_at)
        until = add_years(start, rule.years) - timedelta(days=1)
        name = finding.company_name
        decide_for_case = partial(
            decide,
            book,
            rule_id=VENDOR_CUTOFF,
            subject=file,
            case_id=finding.case_id,
            sources=[finding],
            now=now,
        )
        decisions.append(
            decide_for_case(
                key=f"case:{finding.case_id}",
                kind=DecisionKind.VENDOR_CUTOFF,
                in_force_from=start,
                in_force_until=until,
                as_of=finding.occurred_at,
                facts={"categories": ",".join(confirmed), "years": rule.years},
                explanation_zh=(
                    f"案件{finding.case_id}查实{name}（{file.subject_id}）存在利益输送，"
                    f"切断业务往来至{until}。"
                ),
                explanation_en=(
                    f"Case {finding.case_id}: company {file.subject_id} transferred benefits; "
                    f"business with it is cut off until {until} inclusive."
                ),
            )
        )
        decisions.append(
            decide_for_case(
                key=f"case:{finding.case_id}:regulator",
                kind=DecisionKind.ESCALATION,
                escalate_to=EscalationTarget.REGULATOR,
                as_of=finding.occurred_at,
                facts={"categories": ",".join(confirmed)},
                explanation_zh=f"案件{finding.case_id}涉及企业{name}（{file.subject_id}），移交监管部门。",
                explanation_en=(
                    f"Case {finding.case_id}: company {file.subject_id} is referred to the "
                    "regulator."
                ),
            )
        )
        if today > until:
            lifted_on = until + timedelta(days=1)
            decisions.append(
                decide_for_case(
                    key=f"case:{finding.case_id}:lifted",
                    kind=DecisionKind.VENDOR_CUTOFF_LIFTED,
                    in_force_from=lifted_on,
                    # Midnight starting the hospital day, whatever zone ``now`` is given in.
                    as_of=datetime.combine(lifted_on, datetime.min.time(), HOSPITAL_TIME_ZONE),
                    facts={"cut_off_until": until},
                    explanation_zh=f"{name}（{file.subject_id}）切断业务往来期满，自{lifted_on}起恢复。",
                    explanation_en=(
                        f"The cut-off of company {file.subject_id} ended; business may resume "
                        f"from {lifted_on}."
                    ),
                )
            )
    return decisions


def visit_alerts(
    file: ConductFile, cutoffs: list[Decision], book: RuleBook, *, now: datetime
) -> list[Decision]:
    """A rep in a clinical area is removed at once; a rep of a cut-off company is flagged."""
    decisions = []
    for visit in file.of_type(VisitorLogReceived):
        day = hospital_day(visit.started_at)
        if visit.place_kind in book.rep_visit.clinical_place_kinds:
            decisions.append(
                decide(
                    book,
                    rule_id=REP_VISIT,
                    key=f"visit:{visit.event_id}",
                    kind=DecisionKind.REMOVAL_ALERT,
                    subject=file,
                    as_of=visit.started_at,
                    sources=[visit],
                    facts={"place": visit.place_code, "place_kind": visit.place_kind},
                    explanation_zh=(
                        f"医药代表{visit.rep_name}（{visit.company_name}）出现在"
                        f"{visit.place_kind.label_zh}{visit.place_code}，与诊疗活动无关，立即驱离。"
                    ),
                    explanation_en=(
                        f"Rep {visit.rep_id} of {file.subject_id} is in a {visit.place_kind} "
                        f"({visit.place_code}) on no clinical business: remove at once."
                    ),
                    now=now,
                )
            )
        for cutoff in cutoffs:
            if cutoff.kind is not DecisionKind.VENDOR_CUTOFF:
                continue
            if not (cutoff.in_force_from and cutoff.in_force_until):
                continue
            if cutoff.in_force_from <= day <= cutoff.in_force_until:
                decisions.append(
                    decide(
                        book,
                        rule_id=VENDOR_CUTOFF,
                        key=f"visit:{visit.event_id}:cut-off",
                        kind=DecisionKind.REMOVAL_ALERT,
                        subject=file,
                        case_id=cutoff.case_id,
                        as_of=visit.started_at,
                        sources=[visit],
                        facts={"cut_off_until": cutoff.in_force_until},
                        explanation_zh=(
                            f"{visit.company_name}已被切断业务往来（至{cutoff.in_force_until}），"
                            f"其代表{visit.rep_name}来访，应予拒绝。"
                        ),
                        explanation_en=(
                            f"Company {file.subject_id} is cut off until {cutoff.in_force_until}; "
                            f"its rep {visit.rep_id} must be turned away."
                        ),
                        now=now,
                    )
                )
                break
    return decisions


def repeated_visit_breaches(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    rule = book.rep_repeat
    window = timedelta(days=rule.window_days)
    breaches = [v for v in file.of_type(VisitorLogReceived) if visit_breaches(v, book)]
    breaches.sort(key=lambda visit: (visit.started_at, str(visit.event_id)))
    decisions = []
    for index, visit in enumerate(breaches):
        within = [v for v in breaches[: index + 1] if visit.started_at - v.started_at <= window]
        if len(within) != rule.at:
            continue
        decisions.append(
            decide(
                book,
                rule_id=REP_REPEAT,
                key=f"visit:{visit.event_id}",
                kind=DecisionKind.ESCALATION,
                escalate_to=EscalationTarget.LEADERSHIP_GROUP,
                subject=file,
                as_of=visit.started_at,
                sources=within,
                facts={"breaches": len(within), "window_days": rule.window_days},
                explanation_zh=(
                    f"{visit.company_name}的医药代表{rule.window_days}日内违规来访{len(within)}次，"
                    "上报领导小组。"
                ),
                explanation_en=(
                    f"Reps of company {file.subject_id} broke the visiting rules {len(within)} "
                    f"times within {rule.window_days} days: escalated to the leadership group."
                ),
                now=now,
            )
        )
    return decisions


def company_decisions(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    cutoffs = vendor_cutoffs(file, book, now=now)
    return [
        *cutoffs,
        *visit_alerts(file, cutoffs, book, now=now),
        *repeated_visit_breaches(file, book, now=now),
    ]
