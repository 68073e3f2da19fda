"""Who may see and do what on the desk. Pure: accounts, roles and cases in, answers out.

- 行风办 conduct office: every case but those against itself (its own head's, a conflict of
  the office's own: 纪检监察室 handles them); every action.
- 纪检监察室 discipline inspection: conflict-of-interest cases (the accused heads a
  department) and the cases its department handles; every action on them; the log of who
  viewed a case.
- 科室负责人 department head: the cases their department handles or cooperates on, but any
  against themselves or against their department's head; start the investigation and record
  the finding.
- 院领导 leadership: every case, read only. 审计 auditor and admin: no case at all (the
  auditor reads aggregates in the reports).

Whoever a case accuses never sees it, whatever their role: not in a list, a count, a search
or an export, and its page answers as a missing case does. The register of notifications
(the office, 纪检监察室, the leadership) follows the same rules, and a notification is
acknowledged only by someone it was addressed to (``answers_for``).
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.case import CaseState, CaseUpdated
from schemas.case_action import TAKEN_IN
from schemas.labels import LabelledEnum
from services.common.addressees import AddresseeDirectory
from services.common.departments import DepartmentCatalogue
from services.common.roles import Role

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


DESK_ROLES = frozenset(
    {Role.CONDUCT_OFFICE, Role.DISCIPLINE_INSPECTION, Role.DEPARTMENT_HEAD, Role.LEADERSHIP}
)
"""Roles that work with cases on the desk."""
ACTING_ROLES = frozenset({Role.CONDUCT_OFFICE, Role.DISCIPLINE_INSPECTION, Role.DEPARTMENT_HEAD})
"""Roles whose actions travel in their staff number's name: their accounts need one."""
REGISTER_ROLES = frozenset({Role.CONDUCT_OFFICE, Role.DISCIPLINE_INSPECTION, Role.LEADERSHIP})
"""Roles that read the register of notifications (who was told, who has not acknowledged)."""


class ActionKind(LabelledEnum):
    REASSIGN = "reassign", "分派/改派"
    START_INVESTIGATION = "start_investigation", "开始调查"
    FINDING = "finding", "记录调查结论"
    CLOSE = "close", "结案"
    REPLY = "reply", "答复举报人"


_TAKEN_IN = {ActionKind(action.value): states for action, states in TAKEN_IN.items()}
"""The desk's actions the router takes only in some states (schemas.case_action.TAKEN_IN)."""
_OPEN = frozenset(CaseState) - {CaseState.CLOSED}


class Account(BaseModel):
    """A person who signs in. The password is kept only as its argon2id hash; an account from
    the hospital's directory has none (the directory checks it)."""

    username: str
    display_name: str
    role: Role
    department: str | None = None
    staff_id: str | None = None
    password_hash: str | None = Field(default=None, repr=False)
    password_expired: bool = False
    """Signed in with a one-time password: a new one must be chosen before anything else."""
    source: Literal["local", "directory"] = "local"
    disabled: bool = False
    created_at: datetime


def account_problem(
    *,
    username: str,
    role: Role,
    department: str | None,
    staff_id: str | None,
    catalogue: DepartmentCatalogue,
) -> str | None:
    """Why an account cannot be made like this (in words for the operator), or None."""
    if not USERNAME.fullmatch(username):
        return "a username is 1-64 lowercase letters, digits, '.', '_' or '-'"
    if role in ACTING_ROLES and not staff_id:
        return f"a {role} account acts in its staff number's name: give --staff-id"
    if role is not Role.DEPARTMENT_HEAD:
        return "only a department head's account names a department" if department else None
    if department not in catalogue.departments:
        return f"unknown department {department!r} (services/common/departments.toml)"
    if not catalogue.is_head(staff_id, department):
        head = catalogue.departments[department].head_staff_id
        return f"the head of {department} is staff number {head} (departments.toml), not {staff_id}"
    return None


class CaseRow(BaseModel):
    """What the list, its filters and the access rules need of a case (kept in the store too,
    so the list is loaded at start with one query)."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    revision: int
    state: CaseState
    responsible: str
    cooperating: tuple[str, ...]
    category: str
    channel: str
    deadline: datetime
    opened_at: datetime
    accused_staff_id: str | None
    conflict: bool
    """The accused heads a department (利益冲突)."""
    accused_heads: tuple[str, ...]
    """The departments the accused heads."""
    awaiting_finding: bool
    """Opened, assigned or under investigation: the deadline still runs."""
    stored_minute: str = ""
    """The minute (UTC, "2026-12-03T11:20") this row was stored: other desk instances ask for
    the rows stored in the last minutes by equality, the one query FerretDB serves."""

    @property
    def open(self) -> bool:
        return self.state is not CaseState.CLOSED

    def overdue(self, now: datetime) -> bool:
        """Past its deadline without a finding (R-EVERY-COMPLAINT)."""
        return self.awaiting_finding and now > self.deadline

    def due_within(self, now: datetime, days: int) -> bool:
        return self.awaiting_finding and now <= self.deadline <= now + timedelta(days=days)


def row_of(
    case: CaseUpdated, catalogue: DepartmentCatalogue, *, stored_minute: str = ""
) -> CaseRow:
    heads = tuple(
        code
        for code, entry in catalogue.departments.items()
        if case.accused_staff_id is not None and entry.head_staff_id == case.accused_staff_id
    )
    return CaseRow(
        case_id=case.case_id,
        revision=case.revision,
        state=case.state,
        responsible=case.responsible_department.code,
        cooperating=tuple(d.code for d in case.cooperating_departments),
        category=str(case.category or ""),
        channel=str(case.channel or ""),
        deadline=case.deadline,
        opened_at=case.opened_at,
        accused_staff_id=case.accused_staff_id,
        conflict=bool(heads),
        accused_heads=heads,
        awaiting_finding=case.state
        in (CaseState.OPENED, CaseState.ASSIGNED, CaseState.INVESTIGATING),
        stored_minute=stored_minute,
    )


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as the rules see them."""

    username: str
    display_name: str
    role: Role
    department: str | None
    staff_id: str | None

    @property
    def uses_desk(self) -> bool:
        return self.role in DESK_ROLES


@dataclass(frozen=True)
class Rules:
    catalogue: DepartmentCatalogue
    conduct_office_department: str
    discipline_department: str = "discipline_inspection"

    def may_see(self, viewer: Viewer, row: CaseRow) -> bool:
        if viewer.staff_id is not None and row.accused_staff_id == viewer.staff_id:
            return False
        role = viewer.role
        if role is Role.CONDUCT_OFFICE:
            return self.conduct_office_department not in row.accused_heads
        if role is Role.LEADERSHIP:
            return True
        if role is Role.DISCIPLINE_INSPECTION:
            return row.conflict or self.discipline_department in (row.responsible, *row.cooperating)
        if role is Role.DEPARTMENT_HEAD:
            department = viewer.department
            return (
                department in (row.responsible, *row.cooperating)
                and department not in row.accused_heads
            )
        return False

    def actions(self, viewer: Viewer, row: CaseRow) -> tuple[ActionKind, ...]:
        """The actions ``viewer`` may take on a case they see (the router may still refuse
        one that does not fit the case; the page then shows why)."""
        if viewer.staff_id is None or not self.may_see(viewer, row):
            return ()
        if row.state is CaseState.CLOSED:
            offered: tuple[ActionKind, ...] = (ActionKind.REPLY,)
        else:
            offered = tuple(kind for kind in ActionKind if row.state in _TAKEN_IN.get(kind, _OPEN))
        if viewer.role in (Role.CONDUCT_OFFICE, Role.DISCIPLINE_INSPECTION):
            return offered
        if viewer.role is Role.DEPARTMENT_HEAD:
            mine = (ActionKind.START_INVESTIGATION, ActionKind.FINDING)
            return tuple(kind for kind in offered if kind in mine)
        return ()

    def sees_view_log(self, viewer: Viewer) -> bool:
        return viewer.role in (Role.DISCIPLINE_INSPECTION, Role.CONDUCT_OFFICE)

    def may_see_notification(
        self, viewer: Viewer, accused: tuple[str, ...], row: CaseRow | None
    ) -> bool:
        """A notification in the register: never one about the viewer; one about a case as
        the case itself; one about no case (a promotion, a cut-off) as a case against the
        same people would be."""
        if viewer.role not in REGISTER_ROLES:
            return False
        if viewer.staff_id is not None and viewer.staff_id in accused:
            return False
        if row is not None:
            return self.may_see(viewer, row)
        heads = {
            code
            for code, entry in self.catalogue.departments.items()
            if entry.head_staff_id in accused
        }
        return viewer.role is not Role.CONDUCT_OFFICE or self.conduct_office_department not in heads


def answers_for(viewer: Viewer, addressee: str, directory: AddresseeDirectory) -> bool:
    """Whether ``viewer`` may acknowledge what was sent to ``addressee`` (``head:<code>``:
    that department's head; ``group:<name>``: its members and the desk roles the directory
    names for it)."""
    kind, _, name = addressee.partition(":")
    if kind == "head":
        return viewer.role is Role.DEPARTMENT_HEAD and viewer.department == name
    group = directory.groups.get(name)
    if group is None:
        return False
    member = viewer.staff_id is not None and viewer.staff_id in group.members
    return member or viewer.role.value in group.acknowledged_by
