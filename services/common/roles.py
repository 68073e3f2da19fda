"""The roles of the people who sign in at the desk, which reporting reads too: a person
signed in at the desk reads reports in their desk role, and a report token has one of them.
What each role may see and do is each service's rule (``services/desk/access.py``,
``services/reporting/access.py``)."""

from schemas.labels import LabelledEnum


class Role(LabelledEnum):
    """A desk account's role (``admin`` keeps the accounts and sees no case)."""

    CONDUCT_OFFICE = "conduct_office", "行风办"
    DISCIPLINE_INSPECTION = "discipline_inspection", "纪检监察室"
    DEPARTMENT_HEAD = "department_head", "科室负责人"
    LEADERSHIP = "leadership", "院领导"
    AUDITOR = "auditor", "审计"
    ADMIN = "admin", "系统管理员"


REPORT_ROLES = frozenset(Role) - {Role.ADMIN}
"""The roles that read reports: every one but the admin's."""
