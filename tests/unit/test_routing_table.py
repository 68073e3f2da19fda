"""The router's domain (services/router/domain.py) against the seed it encodes, and the data
files it loads (services/router/routing.py, through services/common/datafile.py).

Seed 004 ("小切口"整治"惠民行动"实施方案, 2023) §四 names, for every problem, the 责任部门 and the
协同部门; §二 puts the office that 统筹协调 the whole action in 医务部; §四(三)4 gives the
complaint mailbox to 纪检监察室. The expectations below come from those passages and from the
department heads in departments.toml, not from the routing table.
"""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.base import derive_event_id
from schemas.case import CaseChange, CaseKind, CaseState, CaseUpdated, HistoryEntry
from schemas.case_action import CaseActionKind, CaseActionReceived, CaseActionSubmission
from schemas.complaint import ComplaintCategory, ComplaintChannel, ComplaintReceived
from schemas.finding import InvestigationFindingReceived, InvestigationFindingSubmission
from schemas.follow_up import ReporterAddition, ReporterReply
from schemas.lead import Lead
from services.common.datafile import DataFileError, describe, line_of
from services.common.departments import DepartmentCatalogue
from services.router.domain import (
    ROUTER,
    Opening,
    add_reporter_information,
    has_applied,
    is_related,
    link,
    note_reply,
    open_case,
    record_finding,
    take_action,
)
from services.router.routing import Routing, RoutingTable
from services.router.settings import RouterSettings
from tests.factories import ROUTING, complaint_event, routed_case

CATALOGUE_PATH = RouterSettings().departments
TABLE_PATH = RouterSettings().routing_table
SHIPPED_TABLE = TABLE_PATH.read_text(encoding="utf-8")
SHIPPED_CATALOGUE = CATALOGUE_PATH.read_text(encoding="utf-8")

RECEIVED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
"""When the test complaints reach intake (the case's opening time)."""

# Department heads (科室负责人) as departments.toml lists them.
MEDICAL_AFFAIRS_HEAD = "S0101"
FINANCE_HEAD = "S0201"
DISCIPLINE_HEAD = "S0301"
GENERAL_PSYCHIATRY_HEAD = "S1101"
PHARMACY_HEAD = "S2101"

OFFICER = "S0102"
"""A conduct-office officer who heads no department."""

# 004 §四(三)4 "在医院门诊楼显眼位置设投诉举报信箱，指定专人每周开箱处理 … 责任部门：纪检监察室"
MAILBOX_CITATION = "004 §四(三)4"


# --- Builders ---------------------------------------------------------------------------------


def _complaint(
    ref: str = "C-1", *, received_at: datetime = RECEIVED, **overrides: Any
) -> ComplaintReceived:
    return complaint_event(received_at=received_at, source_ref=ref, **overrides)


def _case(ref: str = "C-1", *, received_at: datetime = RECEIVED, **overrides: Any) -> CaseUpdated:
    return routed_case(_complaint(ref, received_at=received_at, **overrides))


def _lead(
    kind: CaseKind,
    ref: str = "L-1",
    *,
    category: ComplaintCategory | None = None,
    accused_staff_id: str | None = None,
    concerned_department: str | None = "pharmacy",
    received_at: datetime = RECEIVED,
) -> Lead:
    return Lead(
        event_id=derive_event_id("escalation", ref),
        source_event_id=derive_event_id("visitor_log", ref),
        source_event_type="rep_visit",
        rule_id="R-REP-VISIT",
        rules_version="2026-11-26.1",
        case_kind=kind,
        category=category,
        accused_staff_id=accused_staff_id,
        concerned_department=concerned_department,
        company_code="PHARMA-07",
        occurred_at=received_at - timedelta(hours=2),
        received_at=received_at,
        explanation_zh="医药代表未预约进入科室。",
        explanation_en="A representative entered a department without an appointment.",
    )


def _action(
    case: CaseUpdated,
    action: CaseActionKind,
    ref: str = "A-1",
    *,
    at: datetime,
    to_department: str | None = None,
    reason: str | None = None,
    actor: str = OFFICER,
) -> CaseActionReceived:
    if action is CaseActionKind.REASSIGN and reason is None:
        reason = "职责调整"
    submission = CaseActionSubmission.model_validate(
        {
            "source_system": "conduct_office",
            "source_ref": ref,
            "occurred_at": at,
            "case_id": case.case_id,
            "action": action,
            "actor_staff_id": actor,
            "to_department": to_department,
            "reason": reason,
        }
    )
    # Received later than it happened: the history must keep the action's own time.
    return CaseActionReceived.accept(submission, received_at=at + timedelta(minutes=5))


def _finding(
    case: CaseUpdated,
    ref: str = "F-1",
    *,
    at: datetime,
    substantiated: bool = True,
    confirmed: tuple[ComplaintCategory, ...] = (ComplaintCategory.KICKBACK,),
) -> InvestigationFindingReceived:
    submission = InvestigationFindingSubmission.model_validate(
        {
            "source_system": "finance_desk",
            "source_ref": ref,
            "occurred_at": at,
            "case_id": case.case_id,
            "substantiated": substantiated,
            "confirmed_categories": confirmed if substantiated else (),
            "summary": "调查情况说明。",
        }
    )
    return InvestigationFindingReceived.accept(submission, received_at=at + timedelta(minutes=5))


def _addition(case: CaseUpdated, ref: str = "R-1", *, at: datetime) -> ReporterAddition:
    return ReporterAddition(
        event_id=derive_event_id("follow_up", ref),
        complaint_event_id=case.source_event_ids[0],
        text="补充：当天还有一名医药代表在场。",
        received_at=at,
    )


def _reply(case: CaseUpdated, ref: str = "P-1", *, at: datetime) -> ReporterReply:
    return ReporterReply(
        event_id=derive_event_id("reply", ref),
        case_id=case.case_id,
        text="您反映的问题已受理，正在调查。",
        sent_by="conduct_office",
        sent_at=at,
    )


def _codes(case: CaseUpdated) -> list[str]:
    return [department.code for department in case.cooperating_departments]


def _seed_name(name_zh: str) -> str:
    """The department's name as the seed writes it: "医务部（行风办）" -> "医务部"."""
    return re.sub(r"（[^）]*）$", "", name_zh)


def _assigned(case: CaseUpdated) -> HistoryEntry:
    return next(entry for entry in case.history if entry.change is CaseChange.ASSIGNED)


def _investigating(case: CaseUpdated) -> CaseUpdated:
    at = case.opened_at + timedelta(days=1)
    return take_action(
        case, _action(case, CaseActionKind.START_INVESTIGATION, "A-start", at=at), ROUTING, now=at
    )


def _with_finding(case: CaseUpdated) -> CaseUpdated:
    at = case.opened_at + timedelta(days=5)
    return record_finding(_investigating(case), _finding(case, "F-found", at=at), now=at)


def _closed(case: CaseUpdated) -> CaseUpdated:
    at = case.opened_at + timedelta(days=6)
    return take_action(
        _with_finding(case), _action(case, CaseActionKind.CLOSE, "A-close", at=at), ROUTING, now=at
    )


# --- Routing complaints as seed 004 assigns them ----------------------------------------------


@dataclass(frozen=True)
class SeedRoute:
    code: str
    name_zh: str
    """The responsible department as the seed names it."""
    cited: tuple[str, ...]
    """What the case's routing basis must cite: the passage and its 责任部门."""


def _seed(code: str, name_zh: str, passage: str, *, names_department: bool = True) -> SeedRoute:
    cited = (passage, f"责任部门：{name_zh}") if names_department else (passage,)
    return SeedRoute(code=code, name_zh=name_zh, cited=cited)


SEED_ROUTES = [
    # 004 §四(一)1 "集中整治非集采药品、耗材隐性受贿，院外购药，大处方提成，设备采购、工程建设等
    # 领域腐败行为 … 责任部门：财务部"
    pytest.param(
        ComplaintCategory.PROCUREMENT,
        _seed("finance", "财务部", "004 §四(一)1"),
        id="procurement-finance-004-4.1.1",
    ),
    pytest.param(
        ComplaintCategory.KICKBACK,
        _seed("finance", "财务部", "004 §四(一)1"),
        id="kickback-finance-004-4.1.1",
    ),
    # 004 §四(一)2 "凡医务人员安排病患到指定药店或非双通道医保定点药店购药 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.OUTSIDE_PHARMACY,
        _seed("medical_affairs", "医务部", "004 §四(一)2"),
        id="outside_pharmacy-medical_affairs-004-4.1.2",
    ),
    # 004 §四(一)3 "采取增加专家号或出诊时间 … 缓解挂号难问题 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.APPOINTMENT_SCALPING,
        _seed("medical_affairs", "医务部", "004 §四(一)3"),
        id="appointment_scalping-medical_affairs-004-4.1.3",
    ),
    # 004 §四(二) "对发现的重复检查和不合理医疗检查等行为 … 严肃查处 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.DUPLICATE_TEST,
        _seed("medical_affairs", "医务部", "004 §四(二)"),
        id="duplicate_test-medical_affairs-004-4.2",
    ),
    pytest.param(
        ComplaintCategory.UNREASONABLE_TEST,
        _seed("medical_affairs", "医务部", "004 §四(二)"),
        id="unreasonable_test-medical_affairs-004-4.2",
    ),
    # 004 §四(三)1 "医德医风、酒驾和赌博问题做到凡诉必查，凡错必纠 … 整治工作人员服务态度差问题
    # … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.ATTITUDE,
        _seed("medical_affairs", "医务部", "004 §四(三)1"),
        id="attitude-medical_affairs-004-4.3.1",
    ),
    # 004 §四(三)2 "凡存在医患之间不当行为，造成社会影响恶劣者，从严查处 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.IMPROPER_RELATIONSHIP,
        _seed("medical_affairs", "医务部", "004 §四(三)2"),
        id="improper_relationship-medical_affairs-004-4.3.2",
    ),
    # 004 §四(三)3 "全院集中开展医务人员酒驾、赌博问题专项整治行动 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.DRUNK_DRIVING,
        _seed("medical_affairs", "医务部", "004 §四(三)3"),
        id="drunk_driving-medical_affairs-004-4.3.3",
    ),
    pytest.param(
        ComplaintCategory.GAMBLING,
        _seed("medical_affairs", "医务部", "004 §四(三)3"),
        id="gambling-medical_affairs-004-4.3.3",
    ),
    # 004 §二 "下设办公室在医务部，由医务部负责统筹协调"惠民行动"的日常工作。" (§四 names no
    # measure for these; the coordinating office takes them.)
    pytest.param(
        ComplaintCategory.RED_ENVELOPE,
        _seed("medical_affairs", "医务部", "004 §二", names_department=False),
        id="red_envelope-medical_affairs-004-2",
    ),
    pytest.param(
        ComplaintCategory.OTHER,
        _seed("medical_affairs", "医务部", "004 §二", names_department=False),
        id="other-medical_affairs-004-2",
    ),
]


def test_every_complaint_category_has_a_route_from_the_seed() -> None:
    assert {param.values[0] for param in SEED_ROUTES} == set(ComplaintCategory)


@pytest.mark.parametrize(("category", "seed"), SEED_ROUTES)
def test_each_category_goes_to_the_responsible_department_named_in_seed_004(
    category: ComplaintCategory, seed: SeedRoute
) -> None:
    case = _case(category=str(category))

    assert case.responsible_department.code == seed.code
    assert _seed_name(case.responsible_department.name_zh) == seed.name_zh
    assert case.category is category
    assert case.state is CaseState.ASSIGNED
    assert _assigned(case).department == seed.code
    assert case.handlers[0] == ROUTING.catalogue.departments[seed.code].head_staff_id


@pytest.mark.parametrize(("category", "seed"), SEED_ROUTES)
def test_each_case_cites_the_seed_passage_it_was_routed_by(
    category: ComplaintCategory, seed: SeedRoute
) -> None:
    case = _case(category=str(category))

    for citation in seed.cited:
        assert citation in case.routing_basis
    assert MAILBOX_CITATION not in case.routing_basis


@pytest.mark.parametrize("category", list(ComplaintCategory))
def test_a_mailbox_complaint_also_involves_the_discipline_inspection_office(
    category: ComplaintCategory,
) -> None:
    plain = _case(category=str(category))
    mailbox = _case(category=str(category), channel="mailbox")

    assert _codes(plain) == []
    assert _codes(mailbox) == ["discipline_inspection"]
    assert mailbox.cooperating_departments[0].name_zh == "纪检监察室"
    assert mailbox.responsible_department == plain.responsible_department
    assert MAILBOX_CITATION in mailbox.routing_basis
    assert plain.routing_basis in mailbox.routing_basis
    assert DISCIPLINE_HEAD in mailbox.handlers


@pytest.mark.parametrize(
    "channel", [channel for channel in ComplaintChannel if channel is not ComplaintChannel.MAILBOX]
)
def test_complaints_from_other_channels_do_not_involve_the_mailbox_office(
    channel: ComplaintChannel,
) -> None:
    case = _case(category="attitude", channel=str(channel))

    assert "discipline_inspection" not in _codes(case)
    assert MAILBOX_CITATION not in case.routing_basis
    assert case.channel is channel


def test_the_accused_staff_members_department_cooperates() -> None:
    case = _case(category="kickback", accused_department="general_psychiatry")

    assert case.responsible_department.code == "finance"
    assert _codes(case) == ["general_psychiatry"]
    assert case.concerned_department == "general_psychiatry"
    assert case.handlers == (FINANCE_HEAD, GENERAL_PSYCHIATRY_HEAD)


def test_an_accused_department_missing_from_the_catalogue_is_simply_not_added() -> None:
    case = _case(category="kickback", accused_department="cardiology")

    assert _codes(case) == []
    assert case.concerned_department == "cardiology"
    assert case.handlers == (FINANCE_HEAD,)


def test_an_accused_department_that_is_responsible_anyway_is_not_listed_twice() -> None:
    case = _case(category="attitude", accused_department="medical_affairs")

    assert case.responsible_department.code == "medical_affairs"
    assert _codes(case) == []
    assert case.handlers == (MEDICAL_AFFAIRS_HEAD,)


def test_handlers_are_the_heads_of_the_responsible_then_the_cooperating_departments() -> None:
    case = _case(category="kickback", channel="mailbox", accused_department="general_psychiatry")

    assert _codes(case) == ["general_psychiatry", "discipline_inspection"]
    assert case.handlers == (FINANCE_HEAD, GENERAL_PSYCHIATRY_HEAD, DISCIPLINE_HEAD)


@pytest.mark.parametrize("category", list(ComplaintCategory))
def test_the_deadline_is_the_entrys_investigation_days_after_receipt(
    category: ComplaintCategory,
) -> None:
    received_at = datetime(2026, 12, 30, 23, 59, 59, tzinfo=UTC)
    case = _case(category=str(category), received_at=received_at)
    entry = next(route for route in ROUTING.table.complaint if route.category is category)

    assert case.opened_at == received_at
    assert case.deadline == received_at + timedelta(days=entry.investigation_days)


def test_an_opened_case_has_its_opening_and_its_assignment_in_its_history() -> None:
    complaint = _complaint(category="gambling")
    now = RECEIVED + timedelta(seconds=3)

    case = open_case(Opening.of_complaint(complaint), ROUTING, now=now)

    assert case.revision == 1
    assert case.source_event_ids == (complaint.event_id,)
    assert case.accused_staff_id == complaint.accused_staff_id
    assert case.routing_table_version == ROUTING.version
    assert case.updated_at == now
    opened, assigned = case.history
    assert (opened.change, opened.state, opened.by) == (
        CaseChange.OPENED,
        CaseState.OPENED,
        complaint.source_system,
    )
    assert (assigned.change, assigned.state, assigned.by) == (
        CaseChange.ASSIGNED,
        CaseState.ASSIGNED,
        ROUTER,
    )
    assert assigned.department == "medical_affairs"
    assert assigned.note is None
    for entry in case.history:
        assert entry.at == complaint.received_at
        assert entry.source_event_id == complaint.event_id
    assert has_applied(case, complaint.event_id)


def test_opening_the_same_complaint_again_gives_the_same_case_and_event_id() -> None:
    complaint = _complaint(category="gambling")

    first = open_case(Opening.of_complaint(complaint), ROUTING, now=RECEIVED)
    again = open_case(Opening.of_complaint(complaint), ROUTING, now=RECEIVED + timedelta(hours=5))
    other = open_case(Opening.of_complaint(_complaint("C-2")), ROUTING, now=RECEIVED)

    assert (again.case_id, again.event_id) == (first.case_id, first.event_id)
    assert other.case_id != first.case_id
    assert other.event_id != first.event_id


def test_the_case_records_the_version_of_the_table_and_the_catalogue() -> None:
    assert ROUTING.version == f"{ROUTING.table.version}+departments.{ROUTING.catalogue.version}"
    assert _case().routing_table_version == ROUTING.version


# --- Cases from leads: rep visits and rectifications ------------------------------------------


@pytest.mark.parametrize(
    ("kind", "passage"),
    [
        # 000 §六(十五) 医药代表 "定时定点定人、有预约有流程有记录"; 医务部 keeps the
        # visiting rules.
        pytest.param(CaseKind.REP_VISIT, "000 §六(十五)", id="rep_visit-000-6.15"),
        # 004 §七(二) "对敷衍整改、整治不力、拒不整改的，将进行通报批评"; reports go to
        # 医务部（行风办）.
        pytest.param(CaseKind.RECTIFICATION, "004 §七(二)", id="rectification-004-7.2"),
    ],
)
def test_a_lead_opens_a_case_routed_by_its_case_kind_entry(kind: CaseKind, passage: str) -> None:
    lead = _lead(kind)
    now = RECEIVED + timedelta(minutes=1)

    case = open_case(Opening.of_lead(lead), ROUTING, now=now)
    entry = next(route for route in ROUTING.table.case_kind if route.kind is kind)

    assert case.kind is kind
    assert case.category is None
    assert case.responsible_department.code == "medical_affairs"
    assert _codes(case) == ["pharmacy"]
    assert case.handlers == (MEDICAL_AFFAIRS_HEAD, PHARMACY_HEAD)
    assert passage in case.routing_basis
    assert case.deadline == lead.received_at + timedelta(days=entry.investigation_days)
    assert case.company_code == lead.company_code
    assert case.source_event_ids == (lead.source_event_id,)
    opened = case.history[0]
    assert (opened.by, opened.note, opened.at) == (lead.rule_id, lead.explanation_zh, RECEIVED)


def test_an_opening_built_directly_routes_like_one_from_a_lead() -> None:
    lead = _lead(CaseKind.RECTIFICATION, concerned_department=None)
    opening = Opening(
        source_event_id=lead.source_event_id,
        kind=CaseKind.RECTIFICATION,
        category=None,
        channel=None,
        accused_staff_id=None,
        concerned_department=None,
        company_code="PHARMA-07",
        received_at=RECEIVED,
        by=lead.rule_id,
        note=lead.explanation_zh,
    )

    assert open_case(opening, ROUTING, now=RECEIVED) == open_case(
        Opening.of_lead(lead), ROUTING, now=RECEIVED
    )
    assert _codes(open_case(opening, ROUTING, now=RECEIVED)) == []


def test_a_satisfaction_lead_naming_a_category_routes_like_a_complaint_of_that_category() -> None:
    lead = _lead(CaseKind.COMPLAINT, category=ComplaintCategory.RED_ENVELOPE)

    case = open_case(Opening.of_lead(lead), ROUTING, now=RECEIVED)

    assert case.kind is CaseKind.COMPLAINT
    assert case.responsible_department.code == "medical_affairs"
    assert "004 §二" in case.routing_basis


# --- Conflict of interest ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "head", "own_department"),
    [
        pytest.param("kickback", FINANCE_HEAD, "finance", id="finance-head-accused-of-kickback"),
        pytest.param(
            "attitude", MEDICAL_AFFAIRS_HEAD, "medical_affairs", id="medical-affairs-head"
        ),
    ],
)
def test_a_case_against_the_head_of_the_responsible_department_goes_to_discipline_inspection(
    category: str, head: str, own_department: str
) -> None:
    case = _case(category=category, accused_staff_id=head, accused_department=own_department)

    assert case.responsible_department.code == "discipline_inspection"
    assert own_department not in _codes(case)
    assert head not in case.handlers
    assert case.handlers == (DISCIPLINE_HEAD,)
    assigned = _assigned(case)
    assert assigned.department == "discipline_inspection"
    assert assigned.note is not None
    assert "利益冲突" in assigned.note
    assert ROUTING.catalogue.departments[own_department].name_zh in assigned.note


def test_a_redirected_mailbox_case_does_not_list_discipline_inspection_twice() -> None:
    case = _case(category="kickback", channel="mailbox", accused_staff_id=FINANCE_HEAD)

    assert case.responsible_department.code == "discipline_inspection"
    assert _codes(case) == []
    assert case.handlers == (DISCIPLINE_HEAD,)


def test_a_head_accused_in_a_case_their_own_department_cooperates_on_is_kept_out() -> None:
    case = _case(
        category="attitude",
        accused_staff_id=GENERAL_PSYCHIATRY_HEAD,
        accused_department="general_psychiatry",
    )

    assert case.responsible_department.code == "medical_affairs"
    assert _codes(case) == []
    assert case.handlers == (MEDICAL_AFFAIRS_HEAD,)
    assert _assigned(case).note is None


def test_the_head_of_discipline_inspection_accused_in_a_mailbox_case_is_kept_out() -> None:
    case = _case(category="attitude", channel="mailbox", accused_staff_id=DISCIPLINE_HEAD)

    assert case.responsible_department.code == "medical_affairs"
    assert _codes(case) == []
    assert DISCIPLINE_HEAD not in case.handlers


def test_a_head_accused_outside_their_own_department_changes_nothing() -> None:
    plain = _case(category="kickback", accused_department="general_psychiatry")
    case = _case(
        category="kickback", accused_staff_id=PHARMACY_HEAD, accused_department="general_psychiatry"
    )

    assert case.responsible_department == plain.responsible_department
    assert case.cooperating_departments == plain.cooperating_departments
    assert case.handlers == plain.handlers
    assert _assigned(case).note is None


def test_an_accused_who_also_heads_discipline_inspection_never_handles_their_case() -> None:
    # One person heading two departments: the conflict-of-interest office is theirs too.
    catalogue = DepartmentCatalogue.from_toml(
        _edited(
            SHIPPED_CATALOGUE, f'head_staff_id = "{DISCIPLINE_HEAD}"', 'head_staff_id = "S0201"'
        )
    )
    routing = Routing.checked(catalogue, ROUTING.table, table_text=SHIPPED_TABLE)
    complaint = _complaint(
        category="kickback", accused_staff_id=FINANCE_HEAD, accused_department="general_psychiatry"
    )

    case = open_case(Opening.of_complaint(complaint), routing, now=RECEIVED)

    assert case.responsible_department.code == "discipline_inspection"
    assert FINANCE_HEAD not in case.handlers
    assert case.handlers == (GENERAL_PSYCHIATRY_HEAD,)


def test_a_reassignment_to_a_department_the_accused_heads_is_refused() -> None:
    case = _case(category="kickback", accused_staff_id=FINANCE_HEAD, accused_department="finance")
    at = RECEIVED + timedelta(days=1)

    after = take_action(
        case,
        _action(case, CaseActionKind.REASSIGN, at=at, to_department="finance"),
        ROUTING,
        now=at,
    )

    entry = after.history[-1]
    assert entry.change is CaseChange.REFUSED
    assert entry.note is not None
    assert "利益冲突" in entry.note
    assert after.responsible_department == case.responsible_department
    assert after.handlers == case.handlers
    assert after.state is case.state
    assert after.revision == case.revision + 1


def test_a_reassignment_keeps_a_head_accused_in_their_own_department_out_of_the_case() -> None:
    case = _case(
        category="attitude",
        accused_staff_id=GENERAL_PSYCHIATRY_HEAD,
        accused_department="general_psychiatry",
        channel="mailbox",
    )
    at = RECEIVED + timedelta(days=1)

    after = take_action(
        case,
        _action(case, CaseActionKind.REASSIGN, at=at, to_department="finance"),
        ROUTING,
        now=at,
    )

    assert after.responsible_department.code == "finance"
    assert _codes(after) == ["discipline_inspection"]
    assert GENERAL_PSYCHIATRY_HEAD not in after.handlers
    assert after.handlers == (FINANCE_HEAD, DISCIPLINE_HEAD)


# --- Related complaints -----------------------------------------------------------------------

WINDOW = timedelta(days=ROUTING.table.related_complaint_window_days)


@pytest.mark.parametrize(
    ("offset", "related"),
    [
        pytest.param(timedelta(0), True, id="same-moment"),
        pytest.param(WINDOW, True, id="exactly-the-window-later"),
        pytest.param(WINDOW + timedelta(seconds=1), False, id="a-second-beyond-later"),
        pytest.param(WINDOW + timedelta(days=1), False, id="a-day-beyond-later"),
        pytest.param(-WINDOW, True, id="exactly-the-window-earlier"),
        pytest.param(-WINDOW - timedelta(seconds=1), False, id="a-second-beyond-earlier"),
        pytest.param(-WINDOW - timedelta(days=1), False, id="a-day-beyond-earlier"),
    ],
)
def test_a_complaint_against_the_same_staff_in_the_same_category_is_related_within_the_window(
    offset: timedelta, related: bool
) -> None:
    case = _case(category="kickback", accused_staff_id="D1001")
    later = _complaint("C-2", received_at=RECEIVED + offset, accused_staff_id="D1001")

    assert is_related(case, Opening.of_complaint(later), ROUTING) is related


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"category": "gambling"}, id="other-category"),
        pytest.param({"accused_staff_id": "D2002"}, id="other-staff"),
    ],
)
def test_a_complaint_about_another_category_or_staff_member_is_not_related(
    overrides: dict[str, str],
) -> None:
    case = _case(category="kickback", accused_staff_id="D1001")
    fields: dict[str, Any] = {"category": "kickback", "accused_staff_id": "D1001", **overrides}
    other = _complaint("C-2", **fields)

    assert not is_related(case, Opening.of_complaint(other), ROUTING)


def test_a_complaint_is_not_related_to_a_closed_case() -> None:
    case = _case(category="kickback", accused_staff_id="D1001")
    opening = Opening.of_complaint(_complaint("C-2", received_at=RECEIVED + timedelta(days=7)))

    assert is_related(_with_finding(case), opening, ROUTING)
    assert not is_related(_closed(case), opening, ROUTING)


def test_anonymous_complaints_are_never_related() -> None:
    case = _case(category="kickback", accused_staff_id=None)
    other = _complaint("C-2", category="kickback", accused_staff_id=None)

    assert not is_related(case, Opening.of_complaint(other), ROUTING)


def test_a_lead_for_a_rep_visit_is_not_related_to_a_complaint_case() -> None:
    case = _case(category="kickback", accused_staff_id="D1001")
    lead = _lead(CaseKind.REP_VISIT, category=ComplaintCategory.KICKBACK, accused_staff_id="D1001")

    assert not is_related(case, Opening.of_lead(lead), ROUTING)


def test_a_complaint_is_not_related_to_a_rep_visit_case() -> None:
    lead = _lead(CaseKind.REP_VISIT, category=ComplaintCategory.KICKBACK, accused_staff_id="D1001")
    case = open_case(Opening.of_lead(lead), ROUTING, now=RECEIVED)
    complaint = _complaint("C-2", category="kickback", accused_staff_id="D1001")

    assert not is_related(case, Opening.of_complaint(complaint), ROUTING)


def test_a_satisfaction_lead_about_the_same_staff_and_category_is_related() -> None:
    case = _case(category="red_envelope", accused_staff_id="D1001")
    lead = _lead(
        CaseKind.COMPLAINT, category=ComplaintCategory.RED_ENVELOPE, accused_staff_id="D1001"
    )

    assert is_related(case, Opening.of_lead(lead), ROUTING)


@pytest.mark.parametrize(
    "prepare",
    [
        pytest.param(lambda case: case, id="assigned"),
        pytest.param(_investigating, id="investigating"),
        pytest.param(_with_finding, id="finding-recorded"),
    ],
)
def test_linking_adds_the_complaint_to_the_case_and_keeps_its_state(
    prepare: Callable[[CaseUpdated], CaseUpdated],
) -> None:
    case = prepare(_case(category="kickback", accused_staff_id="D1001"))
    later = _complaint("C-2", received_at=RECEIVED + timedelta(days=30), source_system="hotline")
    now = later.received_at + timedelta(seconds=2)

    linked = link(case, Opening.of_complaint(later), now=now)

    assert linked.case_id == case.case_id
    assert linked.source_event_ids == (*case.source_event_ids, later.event_id)
    assert linked.state is case.state
    assert linked.revision == case.revision + 1
    assert linked.event_id != case.event_id
    assert linked.history[:-1] == case.history
    entry = linked.history[-1]
    assert (entry.change, entry.state, entry.by) == (CaseChange.LINKED, case.state, "hotline")
    assert (entry.source_event_id, entry.at) == (later.event_id, later.received_at)
    assert linked.updated_at == now
    assert linked.responsible_department == case.responsible_department
    assert linked.handlers == case.handlers
    assert linked.deadline == case.deadline
    assert has_applied(linked, later.event_id)
    assert not has_applied(case, later.event_id)


# --- The state machine ------------------------------------------------------------------------


def test_a_case_goes_from_assigned_through_investigation_and_finding_to_closed() -> None:
    case = _case(category="kickback")
    t1, t2, t3 = (RECEIVED + timedelta(days=days) for days in (1, 4, 5))

    started = take_action(
        case, _action(case, CaseActionKind.START_INVESTIGATION, "A-1", at=t1), ROUTING, now=t1
    )
    found = record_finding(started, _finding(case, at=t2), now=t2)
    closed = take_action(
        found,
        _action(case, CaseActionKind.CLOSE, "A-2", at=t3, reason="已处理"),
        ROUTING,
        now=t3,
    )

    assert [c.state for c in (case, started, found, closed)] == [
        CaseState.ASSIGNED,
        CaseState.INVESTIGATING,
        CaseState.FINDING_RECORDED,
        CaseState.CLOSED,
    ]
    assert [entry.change for entry in closed.history] == [
        CaseChange.OPENED,
        CaseChange.ASSIGNED,
        CaseChange.INVESTIGATION_STARTED,
        CaseChange.FINDING_RECORDED,
        CaseChange.CLOSED,
    ]
    assert closed.revision == 4
    assert closed.history[-1].note == "已处理"


@pytest.mark.parametrize(
    ("substantiated", "note"),
    [
        pytest.param(True, "查实：回扣、红包", id="substantiated"),
        pytest.param(False, "经调查未查实", id="not-substantiated"),
    ],
)
def test_a_finding_is_recorded_with_what_it_confirmed(substantiated: bool, note: str) -> None:
    case = _investigating(_case())
    at = RECEIVED + timedelta(days=3)
    finding = _finding(
        case,
        at=at,
        substantiated=substantiated,
        confirmed=(ComplaintCategory.KICKBACK, ComplaintCategory.RED_ENVELOPE),
    )

    after = record_finding(case, finding, now=at)

    assert after.state is CaseState.FINDING_RECORDED
    assert after.history[-1].note == note


def test_a_reassignment_hands_the_case_to_the_new_department_in_the_same_state() -> None:
    case = _investigating(_case(category="kickback", accused_department="general_psychiatry"))
    at = RECEIVED + timedelta(days=2)

    after = take_action(
        case,
        _action(case, CaseActionKind.REASSIGN, at=at, to_department="pharmacy", reason="涉及药品"),
        ROUTING,
        now=at,
    )

    assert after.responsible_department.code == "pharmacy"
    assert _codes(after) == ["general_psychiatry"]
    assert after.handlers == (PHARMACY_HEAD, GENERAL_PSYCHIATRY_HEAD)
    assert after.state is CaseState.INVESTIGATING
    entry = after.history[-1]
    assert (entry.change, entry.department, entry.note) == (
        CaseChange.REASSIGNED,
        "pharmacy",
        "涉及药品",
    )


def test_a_reassignment_to_a_cooperating_department_makes_it_responsible_only() -> None:
    case = _case(category="kickback", accused_department="general_psychiatry")
    at = RECEIVED + timedelta(days=2)

    after = take_action(
        case,
        _action(case, CaseActionKind.REASSIGN, at=at, to_department="general_psychiatry"),
        ROUTING,
        now=at,
    )

    assert after.responsible_department.code == "general_psychiatry"
    assert _codes(after) == []
    assert after.handlers == (GENERAL_PSYCHIATRY_HEAD,)


@dataclass(frozen=True)
class Refusal:
    prepare: Callable[[CaseUpdated], CaseUpdated]
    action: CaseActionKind
    to_department: str | None = None


REFUSALS = [
    pytest.param(Refusal(lambda c: c, CaseActionKind.CLOSE), id="close-without-a-finding"),
    pytest.param(Refusal(_investigating, CaseActionKind.CLOSE), id="close-while-investigating"),
    pytest.param(Refusal(_investigating, CaseActionKind.START_INVESTIGATION), id="start-twice"),
    pytest.param(
        Refusal(_with_finding, CaseActionKind.START_INVESTIGATION), id="start-after-a-finding"
    ),
    pytest.param(Refusal(_closed, CaseActionKind.CLOSE), id="close-a-closed-case"),
    pytest.param(Refusal(_closed, CaseActionKind.START_INVESTIGATION), id="start-on-a-closed-case"),
    pytest.param(
        Refusal(_closed, CaseActionKind.REASSIGN, "medical_affairs"), id="reassign-a-closed-case"
    ),
    pytest.param(
        Refusal(lambda c: c, CaseActionKind.REASSIGN, "cardiology"), id="reassign-to-unknown"
    ),
    pytest.param(
        Refusal(lambda c: c, CaseActionKind.REASSIGN, "finance"), id="reassign-to-the-same"
    ),
]


@pytest.mark.parametrize("refusal", REFUSALS)
def test_an_action_that_does_not_fit_the_case_is_refused_and_recorded(refusal: Refusal) -> None:
    case = refusal.prepare(_case(category="kickback"))
    at = RECEIVED + timedelta(days=20)
    action = _action(case, refusal.action, "A-refused", at=at, to_department=refusal.to_department)

    after = take_action(case, action, ROUTING, now=at)

    entry = after.history[-1]
    assert entry.change is CaseChange.REFUSED
    assert entry.state is case.state
    assert (entry.by, entry.source_event_id, entry.at) == (OFFICER, action.event_id, at)
    assert entry.note is not None
    assert entry.note.startswith(refusal.action.label_zh)
    assert after.state is case.state
    assert after.responsible_department == case.responsible_department
    assert after.cooperating_departments == case.cooperating_departments
    assert after.handlers == case.handlers
    assert after.history[:-1] == case.history
    assert after.revision == case.revision + 1
    assert has_applied(after, action.event_id)


def test_a_finding_on_a_closed_case_is_refused_and_recorded() -> None:
    case = _closed(_case(category="kickback"))
    at = RECEIVED + timedelta(days=30)
    finding = _finding(case, "F-late", at=at, substantiated=False)

    after = record_finding(case, finding, now=at)

    entry = after.history[-1]
    assert entry.change is CaseChange.REFUSED
    assert (entry.state, after.state) == (CaseState.CLOSED, CaseState.CLOSED)
    assert (entry.by, entry.source_event_id) == (finding.source_system, finding.event_id)
    assert entry.note is not None
    assert after.revision == case.revision + 1


SHANGHAI = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("received_at", "finding_at"),
    [
        pytest.param(
            datetime(2026, 11, 30, 17, 0, tzinfo=SHANGHAI),
            datetime(2026, 11, 29, 23, 59, tzinfo=SHANGHAI),
            id="the-evening-before",
        ),
        pytest.param(
            datetime(2026, 11, 30, 17, 0, tzinfo=SHANGHAI),
            datetime(2026, 10, 8, 9, 0, tzinfo=SHANGHAI),
            id="weeks-before",
        ),
        # 2026-11-30 21:00 UTC is already 1 December in the hospital: the day before in UTC
        # terms is not what counts, the hospital's calendar is.
        pytest.param(
            datetime(2026, 11, 30, 21, 0, tzinfo=UTC),
            datetime(2026, 11, 30, 22, 0, tzinfo=SHANGHAI),
            id="before-in-hospital-time-same-utc-day",
        ),
    ],
)
def test_a_finding_dated_before_its_case_was_received_is_refused_with_the_reason(
    received_at: datetime, finding_at: datetime
) -> None:
    case = _investigating(_case(category="kickback", received_at=received_at))
    finding = _finding(case, "F-early", at=finding_at)

    after = record_finding(case, finding, now=received_at + timedelta(days=3))

    entry = after.history[-1]
    assert entry.change is CaseChange.REFUSED
    assert (entry.state, after.state) == (CaseState.INVESTIGATING, CaseState.INVESTIGATING)
    assert (entry.by, entry.source_event_id) == (finding.source_system, finding.event_id)
    finding_day = finding_at.astimezone(SHANGHAI).date().isoformat()
    received_day = received_at.astimezone(SHANGHAI).date().isoformat()
    assert entry.note == (
        f"调查结论日期 {finding_day} 早于案件受理日期 {received_day}，调查结论未计入"
    )
    assert after.history[:-1] == case.history
    assert has_applied(after, finding.event_id)


@pytest.mark.parametrize(
    ("received_at", "finding_at"),
    [
        # A department that records only the day sends midnight: the same day as the receipt.
        pytest.param(
            datetime(2026, 11, 30, 17, 0, tzinfo=SHANGHAI),
            datetime(2026, 11, 30, 0, 0, tzinfo=SHANGHAI),
            id="same-day-at-midnight",
        ),
        pytest.param(
            datetime(2026, 11, 30, 17, 0, tzinfo=SHANGHAI),
            datetime(2026, 11, 30, 17, 30, tzinfo=SHANGHAI),
            id="same-day-later",
        ),
        # 2026-11-29 16:30 UTC is 00:30 on 30 November in the hospital.
        pytest.param(
            datetime(2026, 11, 30, 17, 0, tzinfo=SHANGHAI),
            datetime(2026, 11, 29, 16, 30, tzinfo=UTC),
            id="same-hospital-day-earlier-utc-day",
        ),
        pytest.param(
            datetime(2026, 11, 30, 17, 0, tzinfo=SHANGHAI),
            datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI),
            id="days-after",
        ),
    ],
)
def test_a_finding_dated_on_or_after_the_day_its_case_was_received_is_recorded(
    received_at: datetime, finding_at: datetime
) -> None:
    case = _investigating(_case(category="kickback", received_at=received_at))

    after = record_finding(case, _finding(case, at=finding_at), now=received_at + timedelta(days=3))

    assert after.history[-1].change is CaseChange.FINDING_RECORDED
    assert after.state is CaseState.FINDING_RECORDED


@pytest.mark.parametrize(
    "prepare",
    [pytest.param(_closed, id="closed"), pytest.param(_investigating, id="investigating")],
)
def test_reporter_messages_are_recorded_whatever_the_state(
    prepare: Callable[[CaseUpdated], CaseUpdated],
) -> None:
    case = prepare(_case())
    at = RECEIVED + timedelta(days=40)

    added = add_reporter_information(case, _addition(case, at=at), now=at)
    replied = note_reply(added, _reply(case, at=at), now=at)

    assert [entry.change for entry in replied.history[-2:]] == [
        CaseChange.REPORTER_ADDED,
        CaseChange.REPORTER_REPLIED,
    ]
    assert replied.state is case.state


# --- What every change does -------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    case: CaseUpdated
    """The case after the change."""
    event_id: uuid.UUID
    """The event that made the change."""
    by: str
    at: datetime
    """The event's own time (occurred_at, received_at or sent_at)."""


Change = Callable[[CaseUpdated, datetime, datetime], Applied]


def _start(case: CaseUpdated, at: datetime, now: datetime) -> Applied:
    action = _action(case, CaseActionKind.START_INVESTIGATION, at=at)
    return Applied(take_action(case, action, ROUTING, now=now), action.event_id, OFFICER, at)


def _refused_close(case: CaseUpdated, at: datetime, now: datetime) -> Applied:
    action = _action(case, CaseActionKind.CLOSE, at=at)
    return Applied(take_action(case, action, ROUTING, now=now), action.event_id, OFFICER, at)


def _reassign(case: CaseUpdated, at: datetime, now: datetime) -> Applied:
    action = _action(case, CaseActionKind.REASSIGN, at=at, to_department="medical_affairs")
    return Applied(take_action(case, action, ROUTING, now=now), action.event_id, OFFICER, at)


def _find(case: CaseUpdated, at: datetime, now: datetime) -> Applied:
    finding = _finding(case, at=at)
    return Applied(record_finding(case, finding, now=now), finding.event_id, "finance_desk", at)


def _add(case: CaseUpdated, at: datetime, now: datetime) -> Applied:
    addition = _addition(case, at=at)
    after = add_reporter_information(case, addition, now=now)
    return Applied(after, addition.event_id, "reporter", at)


def _answer(case: CaseUpdated, at: datetime, now: datetime) -> Applied:
    reply = _reply(case, at=at)
    return Applied(note_reply(case, reply, now=now), reply.event_id, "conduct_office", at)


def _link(case: CaseUpdated, at: datetime, now: datetime) -> Applied:
    complaint = _complaint("C-linked", received_at=at, source_system="hotline")
    after = link(case, Opening.of_complaint(complaint), now=now)
    return Applied(after, complaint.event_id, "hotline", at)


CHANGES = [
    pytest.param(_start, id="start-investigation"),
    pytest.param(_refused_close, id="refused-close"),
    pytest.param(_reassign, id="reassign"),
    pytest.param(_find, id="finding"),
    pytest.param(_add, id="reporter-addition"),
    pytest.param(_answer, id="reply-to-reporter"),
    pytest.param(_link, id="linked-complaint"),
]


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_adds_one_revision_and_one_history_entry_naming_its_event(
    change: Change,
) -> None:
    case = _case(category="kickback")
    at = RECEIVED + timedelta(days=2)
    now = at + timedelta(minutes=9)

    applied = change(case, at, now)
    after = applied.case

    assert after.case_id == case.case_id
    assert after.revision == case.revision + 1
    assert after.event_id != case.event_id
    assert after.history[:-1] == case.history
    entry = after.history[-1]
    assert (entry.by, entry.source_event_id, entry.at) == (applied.by, applied.event_id, at)
    assert entry.state is after.state
    assert after.updated_at == now
    assert after.opened_at == case.opened_at
    assert has_applied(after, applied.event_id)
    assert not has_applied(case, applied.event_id)


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_is_the_same_when_computed_again(change: Change) -> None:
    case = _case(category="kickback")
    at = RECEIVED + timedelta(days=2)
    now = at + timedelta(minutes=9)

    first = change(case, at, now).case
    again = change(case, at, now).case
    replayed_later = change(case, at, now + timedelta(days=3)).case

    assert again == first
    assert replayed_later.event_id == first.event_id
    assert replayed_later.history == first.history


STEP_KINDS = ("start", "close", "reassign", "finding", "addition", "reply")
TARGETS = (*sorted(ROUTING.catalogue.departments), "nowhere")


def _step(
    case: CaseUpdated, kind: str, department: str, substantiated: bool, number: int
) -> tuple[CaseUpdated, uuid.UUID]:
    at = RECEIVED + timedelta(hours=number + 1)
    ref = f"step-{number}"
    if kind == "finding":
        finding = _finding(case, ref, at=at, substantiated=substantiated)
        return record_finding(case, finding, now=at), finding.event_id
    if kind == "addition":
        addition = _addition(case, ref, at=at)
        return add_reporter_information(case, addition, now=at), addition.event_id
    if kind == "reply":
        reply = _reply(case, ref, at=at)
        return note_reply(case, reply, now=at), reply.event_id
    action_kind = {
        "start": CaseActionKind.START_INVESTIGATION,
        "close": CaseActionKind.CLOSE,
        "reassign": CaseActionKind.REASSIGN,
    }[kind]
    to_department = department if action_kind is CaseActionKind.REASSIGN else None
    action = _action(case, action_kind, ref, at=at, to_department=to_department)
    return take_action(case, action, ROUTING, now=at), action.event_id


@settings(max_examples=75, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(STEP_KINDS), st.sampled_from(TARGETS), st.booleans()),
        max_size=15,
    )
)
def test_any_sequence_of_changes_keeps_one_revision_per_entry_and_a_closed_case_closed(
    steps: list[tuple[str, str, bool]],
) -> None:
    # The accused heads their own department: some reassignments are conflicts of interest.
    case = _case(
        category="attitude",
        channel="mailbox",
        accused_staff_id=GENERAL_PSYCHIATRY_HEAD,
        accused_department="general_psychiatry",
    )
    assert (case.revision, len(case.history)) == (1, 2)
    event_ids = {case.event_id}

    for number, (kind, department, substantiated) in enumerate(steps):
        after, source_event_id = _step(case, kind, department, substantiated, number)

        assert after.revision == case.revision + 1 == len(after.history) - 1
        assert after.state is after.history[-1].state
        assert has_applied(after, source_event_id)
        assert after.event_id not in event_ids
        assert GENERAL_PSYCHIATRY_HEAD not in after.handlers
        assert after.responsible_department.code != "general_psychiatry"
        if case.state is CaseState.CLOSED:
            assert after.state is CaseState.CLOSED
        event_ids.add(after.event_id)
        case = after


# --- The data files ---------------------------------------------------------------------------


KICKBACK_ENTRY = (
    '[[complaint]]\ncategory = "kickback"\nresponsible = "finance"\n'
    "with_concerned_department = true\ninvestigation_days = 15\n"
)


def _edited(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} should be in the text exactly once"
    return text.replace(old, new)


def _lines(text: str, line: str) -> list[int]:
    """The numbers (from 1) of the lines that read ``line``."""
    return [number for number, own in enumerate(text.splitlines(), 1) if own.strip() == line]


def _line(text: str, line: str) -> int:
    (number,) = _lines(text, line)
    return number


def _entry_at(text: str, number: int) -> str:
    """Which [[array]] entry line ``number`` is in, as describe writes it: "complaint[2]"."""
    headers = [line.strip() for line in text.splitlines()[:number] if line.startswith("[")]
    if not headers:
        return ""
    return f"{headers[-1].strip('[]')}[{headers.count(headers[-1])}]"


def _refusal(
    tmp_path: Path, *, table: str = SHIPPED_TABLE, catalogue: str = SHIPPED_CATALOGUE
) -> list[str]:
    """The problems Routing.load names, one a line, for these two files."""
    catalogue_path = tmp_path / CATALOGUE_PATH.name
    table_path = tmp_path / TABLE_PATH.name
    catalogue_path.write_text(catalogue, encoding="utf-8")
    table_path.write_text(table, encoding="utf-8")
    with pytest.raises(DataFileError) as refused:
        Routing.load(catalogue_path, table_path)
    return str(refused.value).splitlines()


def test_the_test_copies_of_the_shipped_files_load(tmp_path: Path) -> None:
    (tmp_path / "departments.toml").write_text(SHIPPED_CATALOGUE, encoding="utf-8")
    (tmp_path / "routing_table.toml").write_text(SHIPPED_TABLE, encoding="utf-8")

    assert Routing.load(
        tmp_path / "departments.toml", tmp_path / "routing_table.toml"
    ) == Routing.load(CATALOGUE_PATH, TABLE_PATH)


def test_the_shipped_catalogue_and_table_load_and_cover_every_case() -> None:
    routing = Routing.load(CATALOGUE_PATH, TABLE_PATH)

    assert {route.category for route in routing.table.complaint} == set(ComplaintCategory)
    assert {route.kind for route in routing.table.case_kind} == set(CaseKind) - {CaseKind.COMPLAINT}
    seed_names = {_seed_name(entry.name_zh) for entry in routing.catalogue.departments.values()}
    assert {"财务部", "医务部", "纪检监察室"} <= seed_names
    assert routing.table.conflict_of_interest_department == "discipline_inspection"
    assert routing.headed_by(FINANCE_HEAD) == {"finance"}
    assert routing.headed_by(None) == set()
    assert routing.headed_by("D1001") == set()


UNKNOWN_DEPARTMENTS = [
    pytest.param(
        'category = "kickback"\nresponsible = "finance"',
        'category = "kickback"\nresponsible = "procurement_office"',
        'responsible = "procurement_office"',
        "responsible",
        id="complaint-responsible",
    ),
    pytest.param(
        'category = "gambling"\nresponsible = "medical_affairs"',
        'category = "gambling"\nresponsible = "medical_affairs"\n'
        'cooperating = ["finance", "procurement_office"]',
        'cooperating = ["finance", "procurement_office"]',
        "cooperating[2]",
        id="complaint-cooperating",
    ),
    pytest.param(
        'add_cooperating = ["discipline_inspection"]',
        'add_cooperating = ["procurement_office"]',
        'add_cooperating = ["procurement_office"]',
        "add_cooperating[1]",
        id="channel-add_cooperating",
    ),
    pytest.param(
        'kind = "rectification"\nresponsible = "medical_affairs"',
        'kind = "rectification"\nresponsible = "procurement_office"',
        'responsible = "procurement_office"',
        "responsible",
        id="case_kind-responsible",
    ),
    pytest.param(
        'conflict_of_interest_department = "discipline_inspection"',
        'conflict_of_interest_department = "procurement_office"',
        'conflict_of_interest_department = "procurement_office"',
        "conflict_of_interest_department",
        id="conflict_of_interest_department",
    ),
]


@pytest.mark.parametrize(("old", "new", "bad_line", "key"), UNKNOWN_DEPARTMENTS)
def test_a_table_naming_an_unknown_department_is_refused_at_that_line(
    tmp_path: Path, old: str, new: str, bad_line: str, key: str
) -> None:
    table = _edited(SHIPPED_TABLE, old, new)
    number = _line(table, bad_line)
    entry = _entry_at(table, number)
    where = f"{entry}.{key}" if entry else key

    problems = _refusal(tmp_path, table=table)

    assert problems == [
        f"routing_table.toml:{number} {where}: unknown department 'procurement_office'"
    ]


def test_every_unknown_department_is_named_at_once(tmp_path: Path) -> None:
    # The catalogue lost a department that the table names in two places.
    catalogue = re.sub(r"\[departments\.discipline_inspection\]\n(?:.+\n)+", "", SHIPPED_CATALOGUE)
    assert "discipline_inspection" not in catalogue

    problems = _refusal(tmp_path, catalogue=catalogue)

    conflict = _line(SHIPPED_TABLE, 'conflict_of_interest_department = "discipline_inspection"')
    channel = _line(SHIPPED_TABLE, 'add_cooperating = ["discipline_inspection"]')
    assert problems == [
        f"routing_table.toml:{conflict} conflict_of_interest_department: "
        "unknown department 'discipline_inspection'",
        f"routing_table.toml:{channel} channel[1].add_cooperating[1]: "
        "unknown department 'discipline_inspection'",
    ]


def test_a_catalogue_with_an_unknown_department_kind_is_refused_at_that_line(
    tmp_path: Path,
) -> None:
    catalogue = _edited(
        SHIPPED_CATALOGUE,
        'name_en = "Finance Department"\nkind = "functional"',
        'name_en = "Finance Department"\nkind = "surgical"',
    )

    (problem,) = _refusal(tmp_path, catalogue=catalogue)

    number = _line(catalogue, 'kind = "surgical"')
    assert problem.startswith(f"departments.toml:{number} departments.finance.kind: ")
    assert "functional" in problem


def test_a_category_listed_twice_is_refused_at_the_repeat(tmp_path: Path) -> None:
    table = (
        SHIPPED_TABLE
        + '\n[[complaint]]\ncategory = "kickback"\nresponsible = "medical_affairs"\n'
        + 'investigation_days = 15\nbasis = "重复"\n'
    )
    number = _lines(table, 'category = "kickback"')[-1]

    problems = _refusal(tmp_path, table=table)

    assert problems == [
        f"routing_table.toml:{number} {_entry_at(table, number)}.category: kickback is listed again"
    ]
    assert _entry_at(table, number) == f"complaint[{len(ComplaintCategory) + 1}]"


def test_a_table_missing_a_category_is_refused_at_the_complaint_entries(tmp_path: Path) -> None:
    table, removed = re.subn(
        r'\[\[complaint\]\]\ncategory = "gambling"\n(?:.+\n)+\n', "", SHIPPED_TABLE
    )
    assert removed == 1

    problems = _refusal(tmp_path, table=table)

    first_entry = _lines(table, "[[complaint]]")[0]
    assert problems == [
        f"routing_table.toml:{first_entry} complaint: no entry for categories gambling"
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param('"15"', "Input should be a valid integer", id="string"),
        pytest.param("15.0", "Input should be a valid integer", id="float"),
        pytest.param("true", "Input should be a valid integer", id="boolean"),
        pytest.param("0", "Input should be greater than 0", id="zero"),
    ],
)
def test_investigation_days_must_be_a_positive_toml_integer(
    tmp_path: Path, value: str, problem: str
) -> None:
    table = _edited(
        SHIPPED_TABLE,
        KICKBACK_ENTRY,
        KICKBACK_ENTRY.replace("investigation_days = 15", f"investigation_days = {value}"),
    )
    number = _line(table, f"investigation_days = {value}")

    problems = _refusal(tmp_path, table=table)

    assert problems == [f"routing_table.toml:{number} complaint[2].investigation_days: {problem}"]
    assert _entry_at(table, number) == "complaint[2]"


def test_the_related_complaint_window_must_be_a_toml_integer(tmp_path: Path) -> None:
    table = _edited(
        SHIPPED_TABLE,
        "related_complaint_window_days = 90",
        'related_complaint_window_days = "90"',
    )
    number = _line(table, 'related_complaint_window_days = "90"')

    assert _refusal(tmp_path, table=table) == [
        f"routing_table.toml:{number} related_complaint_window_days: "
        "Input should be a valid integer"
    ]


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        pytest.param(
            KICKBACK_ENTRY,
            KICKBACK_ENTRY + "priority = 1\n",
            "complaint[2].priority",
            id="in-a-complaint-entry",
        ),
        pytest.param(
            "related_complaint_window_days = 90\n",
            'related_complaint_window_days = 90\nowner = "医务部"\n',
            "owner",
            id="at-the-top",
        ),
    ],
)
def test_an_unknown_key_is_refused_at_its_line(
    tmp_path: Path, old: str, new: str, where: str
) -> None:
    table = _edited(SHIPPED_TABLE, old, new)
    added = new.removeprefix(old).strip()

    problems = _refusal(tmp_path, table=table)

    assert problems == [
        f"routing_table.toml:{_line(table, added)} {where}: Extra inputs are not permitted"
    ]


def test_a_case_kind_entry_for_complaints_is_refused_at_its_kind(tmp_path: Path) -> None:
    table = (
        SHIPPED_TABLE
        + '\n[[case_kind]]\nkind = "complaint"\nresponsible = "medical_affairs"\n'
        + 'investigation_days = 15\nbasis = "投诉"\n'
    )
    number = _line(table, 'kind = "complaint"')

    problems = _refusal(tmp_path, table=table)

    assert problems == [
        f"routing_table.toml:{number} {_entry_at(table, number)}.kind: "
        "complaints are routed by [[complaint]] entries"
    ]
    assert _entry_at(table, number) == "case_kind[3]"


def test_a_table_that_is_not_toml_is_refused_naming_the_file_and_the_line(
    tmp_path: Path,
) -> None:
    table = _edited(
        SHIPPED_TABLE,
        "related_complaint_window_days = 90\n",
        "related_complaint_window_days = 90 days\n",
    )
    number = _line(table, "related_complaint_window_days = 90 days")

    (problem,) = _refusal(tmp_path, table=table)

    assert problem.startswith("routing_table.toml: ")
    assert f"line {number}," in problem


def test_a_refused_table_from_text_names_the_source_it_was_given() -> None:
    with pytest.raises(DataFileError) as refused:
        RoutingTable.from_toml('version = "1"\n', source="routing_table.toml")

    message = str(refused.value)
    assert message.startswith("routing_table.toml:1 ")
    assert "conflict_of_interest_department: Field required" in message


# --- services.common.datafile: describe and line_of -------------------------------------------


@pytest.mark.parametrize(
    ("location", "described"),
    [
        pytest.param(("version",), "version", id="top-level-key"),
        pytest.param(("complaint", 2, "responsible"), "complaint[3].responsible", id="entry"),
        pytest.param(
            ("channel", 0, "add_cooperating", 1), "channel[1].add_cooperating[2]", id="item"
        ),
        pytest.param(("departments", "finance", "kind"), "departments.finance.kind", id="nested"),
        pytest.param(("complaint",), "complaint", id="array"),
        pytest.param((), "file", id="whole-file"),
    ],
)
def test_describe_names_a_place_counting_entries_from_one(
    location: tuple[str | int, ...], described: str
) -> None:
    assert describe(location) == described


SMALL_TOML = """\
# A data file.
version = "1"
name = "top"

[departments.finance]
name = "财务部"
kind = "functional"

[departments.nursing]  # a comment after the header
"name" = "护理部"

[ departments . "pharmacy" ]
head_staff_id = "S2101"

[[complaint]]
category = "kickback"

[[ complaint ]]
category = "gambling"
responsible = "medical_affairs"
"""


@pytest.mark.parametrize(
    ("location", "line"),
    [
        pytest.param(("version",), 'version = "1"', id="top-level-key"),
        pytest.param(("name",), 'name = "top"', id="top-level-key-not-a-tables-key"),
        pytest.param(("departments", "finance", "name"), 'name = "财务部"', id="nested-key"),
        pytest.param(("departments", "finance", "kind"), 'kind = "functional"', id="nested-kind"),
        pytest.param(("departments", "nursing", "name"), '"name" = "护理部"', id="quoted-key"),
        pytest.param(
            ("departments", "pharmacy", "head_staff_id"),
            'head_staff_id = "S2101"',
            id="quoted-and-spaced-header",
        ),
        pytest.param(
            ("departments", "nursing", "kind"),
            "[departments.nursing]  # a comment after the header",
            id="missing-key-is-its-tables-header",
        ),
        pytest.param(
            ("departments",), "[departments.finance]", id="parent-table-is-its-first-header"
        ),
        pytest.param(("complaint", 0), "[[complaint]]", id="first-entry"),
        pytest.param(("complaint", 0, "category"), 'category = "kickback"', id="first-entry-key"),
        pytest.param(("complaint", 1), "[[ complaint ]]", id="second-entry-spaced-header"),
        pytest.param(("complaint", 1, "category"), 'category = "gambling"', id="second-entry-key"),
        pytest.param(
            ("complaint", 1, "responsible"),
            'responsible = "medical_affairs"',
            id="key-only-in-second-entry",
        ),
        pytest.param(
            ("complaint", 0, "responsible"), "[[complaint]]", id="key-missing-from-first-entry"
        ),
        pytest.param(("complaint",), "[[complaint]]", id="array-is-its-first-entry"),
        pytest.param(("complaint", 5, "category"), "[[complaint]]", id="entry-beyond-the-array"),
    ],
)
def test_line_of_finds_keys_tables_and_array_entries(
    location: tuple[str | int, ...], line: str
) -> None:
    assert line_of(SMALL_TOML, location) == _line(SMALL_TOML, line)


@pytest.mark.parametrize(
    "location",
    [
        pytest.param(("owner",), id="absent-top-level-key"),
        pytest.param(("channel", 0, "channel"), id="absent-array"),
        pytest.param((), id="whole-file"),
    ],
)
def test_line_of_falls_back_to_the_first_line(location: tuple[str | int, ...]) -> None:
    assert line_of(SMALL_TOML, location) == 1
    assert line_of("", location) == 1


def test_a_full_case_takes_no_more_related_complaints_and_the_next_opens_its_own() -> None:
    limit = ROUTING.table.events_per_case_at_most
    case = _case(accused_staff_id="S-FULL")
    for number in range(1, limit):
        related = Opening.of_complaint(
            _complaint(f"C-{number + 1}", received_at=RECEIVED, accused_staff_id="S-FULL")
        )
        assert is_related(case, related, ROUTING)
        case = link(case, related, now=RECEIVED)
    assert len(case.source_event_ids) == limit

    one_more = _complaint("C-LAST", received_at=RECEIVED, accused_staff_id="S-FULL")
    assert not is_related(case, Opening.of_complaint(one_more), ROUTING)
