"""Who sees which case on the desk, and the case list's filters, counts, search and pages:
pure functions over cases as the router makes them."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.case import CaseState, CaseUpdated
from services.common.departments import DepartmentCatalogue
from services.common.roles import Role
from services.desk.access import ActionKind, CaseRow, Rules, Viewer, account_problem, row_of
from services.desk.listing import FACETS, OPEN, ListQuery, page_of, select
from tests.factories import ROUTING, complaint_event, routed_case

CATALOGUE: DepartmentCatalogue = ROUTING.catalogue
RULES = Rules(CATALOGUE, conduct_office_department="medical_affairs")
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def _case(ref: str, **complaint: object) -> CaseUpdated:
    received = complaint.pop("received_at", datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    assert isinstance(received, datetime)
    return routed_case(complaint_event(received_at=received, source_ref=ref, **complaint))


def _row(ref: str, **complaint: object) -> CaseRow:
    return row_of(_case(ref, **complaint), CATALOGUE)


def _viewer(role: Role, *, department: str | None = None, staff_id: str | None = "S9001") -> Viewer:
    return Viewer("someone", "某人", role, department, staff_id)


OFFICE = _viewer(Role.CONDUCT_OFFICE)
INSPECTION = _viewer(Role.DISCIPLINE_INSPECTION, staff_id="S0302")
FINANCE_HEAD = _viewer(Role.DEPARTMENT_HEAD, department="finance", staff_id="S0201")
LEADER = _viewer(Role.LEADERSHIP, staff_id="S0001")


def test_whoever_a_case_accuses_never_sees_it_whatever_their_role() -> None:
    for role in Role:
        viewer = _viewer(role, department="finance" if role is Role.DEPARTMENT_HEAD else None)
        row = _row(f"SELF-{role}", accused_staff_id=viewer.staff_id, accused_department="finance")
        assert not RULES.may_see(viewer, row), role
        assert RULES.actions(viewer, row) == (), role


def test_a_department_head_sees_their_departments_cases_but_none_against_its_head() -> None:
    clerk = _row("FIN-1", category="kickback", accused_staff_id="S0299")
    against_head = _row("FIN-2", category="kickback", accused_staff_id="S0201")
    elsewhere = _row("MED-1", category="attitude", accused_staff_id="S5001")

    assert clerk.responsible == "finance"
    assert RULES.may_see(FINANCE_HEAD, clerk)
    assert not RULES.may_see(FINANCE_HEAD, against_head)
    assert not RULES.may_see(FINANCE_HEAD, elsewhere)
    # Routed to finance before S0201 became its head (the directory changed since): it stays
    # out of finance's list, for the head and for a deputy head alike.
    routed_earlier = _case("FIN-3", category="kickback", accused_staff_id="S0298")
    now_against_head = row_of(
        routed_earlier.model_copy(update={"accused_staff_id": "S0201"}), CATALOGUE
    )
    assert now_against_head.responsible == "finance"
    deputy = _viewer(Role.DEPARTMENT_HEAD, department="finance", staff_id="S0202")
    for head in (FINANCE_HEAD, deputy):
        assert not RULES.may_see(head, now_against_head)
    assert RULES.actions(FINANCE_HEAD, clerk) == (
        ActionKind.START_INVESTIGATION,
        ActionKind.FINDING,
    )


def test_conflict_cases_go_to_discipline_inspection_and_the_office_not_its_own() -> None:
    against_office_head = _row("COI-1", category="attitude", accused_staff_id="S0101")
    against_finance_head = _row("COI-2", category="kickback", accused_staff_id="S0201")
    ordinary = _row("ORD-1", category="attitude", accused_staff_id="S5002")

    assert against_office_head.conflict
    assert against_finance_head.conflict
    assert not ordinary.conflict
    assert RULES.may_see(INSPECTION, against_office_head)
    assert RULES.may_see(INSPECTION, against_finance_head)
    assert not RULES.may_see(INSPECTION, ordinary)
    assert not RULES.may_see(OFFICE, against_office_head)
    assert RULES.may_see(OFFICE, against_finance_head)
    assert RULES.may_see(OFFICE, ordinary)
    assert RULES.may_see(LEADER, against_office_head)
    assert RULES.actions(LEADER, ordinary) == ()
    for role in (Role.AUDITOR, Role.ADMIN):
        assert not RULES.may_see(_viewer(role), ordinary)


def test_a_closed_case_takes_only_a_reply() -> None:
    closed = _row("CLOSED-1").model_copy(update={"state": CaseState.CLOSED})
    assert RULES.actions(OFFICE, closed) == (ActionKind.REPLY,)


def test_the_desk_offers_only_the_steps_the_router_takes_in_the_case_s_state() -> None:
    def offered(state: CaseState, viewer: Viewer = OFFICE) -> tuple[ActionKind, ...]:
        return RULES.actions(viewer, _row("STEPS-1").model_copy(update={"state": state}))

    # An investigation starts on an assigned case, and a case closes on its finding.
    assert ActionKind.START_INVESTIGATION in offered(CaseState.ASSIGNED)
    assert ActionKind.CLOSE not in offered(CaseState.ASSIGNED)
    assert ActionKind.START_INVESTIGATION not in offered(CaseState.INVESTIGATING)
    assert ActionKind.START_INVESTIGATION not in offered(CaseState.FINDING_RECORDED)
    assert ActionKind.CLOSE in offered(CaseState.FINDING_RECORDED)
    for state in (CaseState.ASSIGNED, CaseState.INVESTIGATING, CaseState.FINDING_RECORDED):
        assert {ActionKind.REASSIGN, ActionKind.FINDING, ActionKind.REPLY} <= set(offered(state))


def test_a_department_heads_account_is_bound_to_the_head_the_directory_names() -> None:
    def problem(**given: object) -> str | None:
        values: dict[str, object] = {
            "username": "head",
            "role": Role.DEPARTMENT_HEAD,
            "department": "finance",
            "staff_id": "S0201",
        } | given
        return account_problem(catalogue=CATALOGUE, **values)  # type: ignore[arg-type]

    assert problem() is None
    assert "S0201" in (problem(staff_id="S0202") or "")
    assert "unknown department" in (problem(department="nowhere") or "")
    assert "--staff-id" in (problem(role=Role.CONDUCT_OFFICE, department=None, staff_id=None) or "")
    assert problem(role=Role.AUDITOR, department=None, staff_id=None) is None
    assert "lowercase" in (problem(username="Wang Wei") or "")


# --- The list ---------------------------------------------------------------------------------


def _rows() -> list[CaseRow]:
    received = [NOW - timedelta(days=days) for days in (40, 20, 12, 10, 3, 1)]
    categories = ["kickback", "attitude", "red_envelope", "kickback", "attitude", "gambling"]
    return [
        _row(f"L-{index}", category=category, received_at=at, accused_staff_id=f"S70{index:02d}")
        for index, (category, at) in enumerate(zip(categories, received, strict=True))
    ]


def test_the_list_is_sorted_by_deadline_and_paged() -> None:
    rows = _rows()
    selected, counts = select(rows, ListQuery(), NOW)
    assert [row.deadline for row in selected] == sorted(row.deadline for row in rows)
    latest_first, _ = select(rows, ListQuery(descending=True), NOW)
    assert latest_first == selected[::-1]
    second = page_of(selected, counts, page=2, size=4)
    assert (second.page, second.pages, second.total) == (2, 2, 6)
    assert second.rows == selected[4:]
    assert page_of(selected, counts, page=99, size=4).page == 2


def test_overdue_and_due_soon_are_the_hospitals_deadlines_without_a_finding() -> None:
    rows = _rows()
    overdue, _ = select(rows, ListQuery(overdue="1"), NOW)
    assert overdue
    assert all(row.deadline < NOW for row in overdue)
    soon, _ = select(rows, ListQuery(due_soon="1"), NOW)
    assert all(NOW <= row.deadline <= NOW + timedelta(days=7) for row in soon)
    assert not set(overdue) & set(soon)


def test_search_finds_a_case_by_its_id_or_the_accused_staff_number() -> None:
    rows = _rows()
    wanted = rows[3]
    by_id, _ = select(rows, ListQuery(search=wanted.case_id.lower()), NOW)
    by_start, _ = select(rows, ListQuery(search=wanted.case_id[:12]), NOW)
    by_staff, _ = select(rows, ListQuery(search=" s7003 "), NOW)
    assert by_id == [wanted]
    assert wanted in by_start
    assert by_staff == [wanted]


FILTER_VALUES = {
    "state": ["", OPEN, *[str(state) for state in CaseState]],
    "department": ["", "finance", "medical_affairs", "pharmacy"],
    "category": ["", "kickback", "attitude", "red_envelope"],
    "channel": ["", "portal", "hotline"],
    "overdue": ["", "1"],
    "due_soon": ["", "1"],
    "conflict": ["", "1"],
}


@settings(max_examples=60, deadline=None)
@given(
    choice=st.fixed_dictionaries({facet: st.sampled_from(v) for facet, v in FILTER_VALUES.items()}),
    facet=st.sampled_from(FACETS),
)
def test_each_count_is_what_the_list_shows_when_that_value_is_chosen(
    choice: dict[str, str], facet: str
) -> None:
    rows = [*_rows(), _row("COI-9", category="kickback", accused_staff_id="S0201")]
    _, counts = select(rows, ListQuery(**choice), NOW)  # type: ignore[arg-type]
    for value in FILTER_VALUES[facet]:
        if not value:
            continue
        shown, _ = select(rows, ListQuery(**(choice | {facet: value})), NOW)  # type: ignore[arg-type]
        assert counts[facet][value] == len(shown), (facet, value)
