"""The reports as readers ask for them: each reads what it shows from the store
(``store.ReportStore``) and computes it with the pure modules (``monthly``, ``kpi``,
``registers``)."""

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, replace
from datetime import date, timedelta

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.decision import DecisionKind
from services.common.departments import DepartmentCatalogue
from services.common.service import Clock
from services.reporting import registers
from services.reporting.facts import HOSPITAL, CaseFact, CaseRecord, department_cases
from services.reporting.kpi import KpiStatus, KpiTargets, kpi_status
from services.reporting.monthly import Confirmation, MonthlyReport, monthly_report
from services.reporting.store import CaseAccess, ReportStore
from services.reporting.study import StudyRule


def last_months(today: date, count: int) -> list[str]:
    """The ``count`` months up to and including ``today``'s, oldest first."""
    months = []
    day = today.replace(day=1)
    for _ in range(count):
        months.append(day.strftime("%Y-%m"))
        day = (day - timedelta(days=1)).replace(day=1)
    return months[::-1]


def not_against(cases: Sequence[CaseFact], staff_id: str | None) -> list[CaseFact]:
    """The cases that do not accuse ``staff_id`` (all of them for None)."""
    return [case for case in cases if staff_id is None or case.accused_staff_id != staff_id]


@dataclass(frozen=True)
class Dashboard:
    report: MonthlyReport
    """This month's report."""
    open_cases: int
    overdue_cases: int
    trend: list[tuple[str, int]]
    """Cases opened by month, the last twelve (YY-MM)."""
    categories: list[tuple[str, int]]
    """The categories of this month's cases, most first."""
    departments: list[tuple[str, int]]
    """The departments handling this month's cases, most first."""


@dataclass
class Reports:
    store: ReportStore
    _: KW_ONLY
    catalogue: DepartmentCatalogue
    targets: KpiTargets
    study: StudyRule
    clock: Clock

    def knows(self, department: str | None) -> bool:
        return department is None or department in self.catalogue.departments

    async def monthly(
        self, month: str, department: str | None, *, hidden_staff: str | None = None
    ) -> MonthlyReport:
        """The monthly report of a department the catalogue lists, or of the hospital; its
        cases without those against ``hidden_staff`` (the reader: a case against a person is
        invisible to them)."""
        data = await self.store.month_data(month, department)
        if hidden_staff is not None:
            data = replace(
                data,
                cases=not_against(data.cases, hidden_staff),
                counts=[(key, n) for key, n in data.counts if key.accused_staff_id != hidden_staff],
            )
        return monthly_report(
            data,
            month=month,
            department=department,
            catalogue=self.catalogue,
            targets=self.targets,
            study=self.study,
            now=self.clock(),
        )

    async def kpi(
        self, period: str, scope: str, *, hidden_staff: str | None = None
    ) -> list[KpiStatus]:
        """KPI status of a month (observed or computed) or of a year (observed)."""
        if len(period) == 7:
            department = None if scope == HOSPITAL else scope
            return (await self.monthly(period, department, hidden_staff=hidden_staff)).kpi
        observations = await self.store.latest_observations(scope, period)
        return kpi_status(self.targets, observations, scope=scope, period=period, computed={})

    async def confirm(self, department: str, month: str, *, by: str) -> Confirmation:
        """Record a department's confirmation of its report; the first one stands."""
        confirmation = Confirmation(
            department=department, month=month, confirmed_at=self.clock(), confirmed_by=by
        )
        key = f"{department}|{month}"
        await self.store.confirmations.insert(key, confirmation)
        stored = await self.store.confirmations.get(key)
        if stored is None:
            raise LookupError(f"confirmation {key} vanished while being recorded")
        return stored

    # --- Registers ----------------------------------------------------------------------------

    async def promotion_bars(self) -> list[registers.PromotionBar]:
        today = self.clock().astimezone(HOSPITAL_TIME_ZONE).date()
        found = await self.store.decisions_of(DecisionKind.PROMOTION_BAR)
        return registers.promotion_bars(found, today=today)

    async def vendor_cutoffs(self) -> list[registers.VendorCutoff]:
        kinds = (DecisionKind.VENDOR_CUTOFF, DecisionKind.VENDOR_CUTOFF_LIFTED)
        return registers.vendor_cutoffs(await self.store.decisions_of(*kinds))

    async def escalations(
        self, department: str | None
    ) -> tuple[list[registers.EscalationEntry], list[registers.RuleCount]]:
        """The escalation register; a department's: those of the cases its figures show."""
        entries, counts = registers.escalations(
            await self.store.decisions_of(DecisionKind.ESCALATION)
        )
        if department is None:
            return entries, counts
        cases = await self.store.case_facts.get_many(
            entry.case_id for entry in entries if entry.case_id
        )
        own = {c.case_id for c in department_cases(cases.values(), department, self.catalogue)}
        entries = [entry for entry in entries if entry.case_id in own]
        return entries, registers.rule_counts(entries)

    async def notices(self, department: str | None) -> list[registers.Notice]:
        found = registers.notices(
            await self.store.decisions_of(DecisionKind.NOTICE), self.catalogue
        )
        return [n for n in found if department is None or n.department == department]

    # --- Cases --------------------------------------------------------------------------------

    async def case(self, case_id: str, department: str | None) -> CaseRecord | None:
        """The case, if ``department``'s figures show it (None: the office reads any)."""
        found = await self.store.case(case_id)
        if found is None or not department_cases([found], department, self.catalogue):
            return None
        return found

    async def log_access(self, case_id: str, *, token_id: str, role: str) -> None:
        access = CaseAccess(token_id=token_id, role=role, case_id=case_id, at=self.clock())
        await self.store.accesses.insert(str(uuid.uuid4()), access)

    async def accesses(self, case_id: str) -> list[CaseAccess]:
        """Who read the case's details, oldest first."""
        found = await self.store.accesses.find(case_id=case_id)
        return sorted(found.values(), key=lambda access: access.at)

    # --- The dashboard and the gauges ---------------------------------------------------------

    async def dashboard(
        self, department: str | None, *, hidden_staff: str | None = None
    ) -> Dashboard:
        """The dashboard of ``department`` (None: the hospital), as the person whose staff
        number is ``hidden_staff`` may see it: no case against them in any figure."""
        now = self.clock()
        months = last_months(now.astimezone(HOSPITAL_TIME_ZONE).date(), 12)
        opened = await asyncio.gather(
            *(self.store.cases_opened(month, department) for month in months)
        )
        report, open_cases, ever_overdue = await asyncio.gather(
            self.monthly(months[-1], department, hidden_staff=hidden_staff),
            self.store.open_cases(department),
            self.store.cases_ever_overdue(department),
        )

        def shown(cases: list[CaseFact]) -> list[CaseFact]:
            return not_against(department_cases(cases, department, self.catalogue), hidden_staff)

        # The categories and departments of the cases the tiles count (opened this month), not
        # the month's events: a complaint may be received months after what it reports.
        this_month = shown(opened[-1])
        return Dashboard(
            report=report,
            open_cases=len(shown(open_cases)),
            overdue_cases=sum(case.overdue(now) for case in shown(ever_overdue)),
            trend=[(m[2:], len(shown(cases))) for m, cases in zip(months, opened, strict=True)],
            categories=Counter(c.category.label_zh for c in this_month if c.category).most_common(),
            departments=Counter(case.department_zh for case in this_month).most_common(),
        )

    async def case_gauges(self) -> tuple[int, int]:
        """Cases open now, and overdue now, in the whole hospital."""
        now = self.clock()
        overdue = await self.store.cases_ever_overdue()
        return len(await self.store.open_cases()), sum(case.overdue(now) for case in overdue)
