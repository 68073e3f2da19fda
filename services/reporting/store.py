"""What reporting keeps, declared once on the store adapter (``services.common.documents``), and
the reads the reports make. Every read selects by ``_id`` or by declared equality fields, so a
report reads what it shows, not every document (FerretDB pushes nothing else down: no ``$in``,
no ranges, no sorts).

- ``reporting_counts`` (versioned): event counts per topic partition and month
  (``counting.CountDocument``), changed only over the revision they were read at.
- ``reporting_cases`` (versioned): each case's latest revision with its whole history, for the
  case view; ``reporting_case_facts``: the same cases without their history, where the reports
  select them (by month opened, department, closed or not, investigated on time or not);
  ``reporting_case_events``: the case each source event belongs to.
- ``reporting_decisions``: every decision escalation published, by event id, selected by kind.
- ``reporting_kpi``: every KPI observation, by event id, selected by scope and period.
- ``reporting_training``: study sessions, by event id, selected by month held and department.
- ``reporting_confirmations``: departments' confirmations of their monthly reports.
- ``reporting_access_log``: who read which case; ``reporting_tokens``: report tokens
  (``services.common.credentials``). People sign in at the desk (``services.common.desk_sessions``).
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from schemas.decision import Decision, DecisionKind
from schemas.kpi import KpiObservationReceived
from schemas.training import TrainingHeldReceived
from services.common.documents import Documents, Records, Versioned, VersionedRecords
from services.reporting.counting import CountDocument, month_totals
from services.reporting.facts import HOSPITAL, CaseFact, CaseRecord, CountKey, report_month
from services.reporting.kpi import Observation
from services.reporting.monthly import MEASURE_KINDS, Confirmation, MonthData

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
R = TypeVar("R")

TOKENS = "reporting_tokens"
CONFIRMATIONS = "reporting_confirmations"
ACCESS_LOG = "reporting_access_log"
"""With the tokens, what the topics cannot give back: a rebuild copies them."""


class HeldSession(TrainingHeldReceived):
    """A study session as kept: selected by the month it was held in."""

    @property
    def held_month(self) -> str:
        return report_month(self.held_on)


class CaseOfEvent(BaseModel):
    case_id: str


class CaseAccess(BaseModel):
    token_id: str
    role: str
    case_id: str
    at: datetime


WRITES_AT_ONCE = 8
"""Versioned saves made side by side. FerretDB 1.24 on PostgreSQL holds two of its pooled
connections for an update and waits forever for one it cannot get: many updates at once, from
every service it serves, can stall the store."""


async def in_waves(items: Sequence[T], write: Callable[[T], Awaitable[R]]) -> list[R]:
    """``write`` each item, ``WRITES_AT_ONCE`` at a time; the results in order."""
    done: list[R] = []
    for start in range(0, len(items), WRITES_AT_ONCE):
        done += await asyncio.gather(*map(write, items[start : start + WRITES_AT_ONCE]))
    return done


async def _create(records: VersionedRecords[M], found: Mapping[str, Versioned[M]]) -> int:
    """Store each value as the first revision of its key; how many. Fails on a key that has one
    (the target of a rebuild is new)."""
    values = {key: kept.value for key, kept in found.items() if kept.value is not None}
    _all_new(await records.create_many(values), values)
    return len(values)


def _all_new(written: set[str], wanted: Mapping[str, object]) -> None:
    """A rebuild's database is new: every document written is one nobody stored before."""
    if len(written) < len(wanted):
        raise RuntimeError("a document was stored meanwhile: rebuild into a new database")


def _latest(observations: Iterable[KpiObservationReceived]) -> list[Observation]:
    """The latest observation of each metric by event time; of two at the same time, the one
    received first."""
    kept: dict[str, KpiObservationReceived] = {}
    for observation in sorted(observations, key=lambda o: (o.received_at, str(o.event_id))):
        held = kept.get(observation.metric)
        if held is None or held.occurred_at < observation.occurred_at:
            kept[observation.metric] = observation
    return [
        Observation(metric=o.metric, scope=o.scope, period=o.period, value=o.value)
        for o in kept.values()
    ]


class ReportStore:
    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self.counts: VersionedRecords[CountDocument] = documents.versioned(
            "reporting_counts", CountDocument, fields=("month",)
        )
        self.cases: VersionedRecords[CaseRecord] = documents.versioned(
            "reporting_cases", CaseRecord
        )
        self.case_facts: Records[CaseFact] = documents.records(
            "reporting_case_facts",
            CaseFact,
            fields=("month", "department", "closed", "on_time"),
        )
        self.case_events: Records[CaseOfEvent] = documents.records(
            "reporting_case_events", CaseOfEvent
        )
        self.decisions: Records[Decision] = documents.records(
            "reporting_decisions", Decision, fields=("kind",)
        )
        self.observations: Records[KpiObservationReceived] = documents.records(
            "reporting_kpi", KpiObservationReceived, fields=("scope", "period")
        )
        self.sessions: Records[HeldSession] = documents.records(
            "reporting_training", HeldSession, fields=("held_month", "department")
        )
        self.confirmations: Records[Confirmation] = documents.records(
            CONFIRMATIONS, Confirmation, fields=("month",)
        )
        self.accesses: Records[CaseAccess] = documents.records(
            ACCESS_LOG, CaseAccess, fields=("case_id",)
        )

    async def copy_into(self, target: "ReportStore") -> int:
        """Every document built from the topics into ``target``'s new, empty database (a
        rebuild's); how many."""
        copied = 0
        for source, into in zip(self._built(), target._built(), strict=True):
            found = await source.find()
            _all_new(await into.insert_many(found), found)
            copied += len(found)
        copied += await _create(target.counts, await self.counts.find())
        return copied + await _create(target.cases, await self.cases.find())

    def _built(self) -> tuple[Records[Any], ...]:
        return (
            self.case_facts,
            self.case_events,
            self.decisions,
            self.observations,
            self.sessions,
        )

    # --- Cases --------------------------------------------------------------------------------

    async def _facts(self, department: str | None, **equal: object) -> list[CaseFact]:
        if department is not None:
            equal["department"] = department
        return list((await self.case_facts.find(**equal)).values())

    async def cases_opened(self, month: str, department: str | None = None) -> list[CaseFact]:
        return await self._facts(department, month=month)

    async def open_cases(self, department: str | None = None) -> list[CaseFact]:
        return await self._facts(department, closed=False)

    async def cases_ever_overdue(self, department: str | None = None) -> list[CaseFact]:
        """The cases without a finding by their deadline: only they can be overdue, at any
        time."""
        return await self._facts(department, on_time=False)

    async def cases_handling(self, event_ids: Iterable[str]) -> list[CaseFact]:
        """The cases the events belong to (those known yet)."""
        cases = await self.case_events.get_many(event_ids)
        found = await self.case_facts.get_many({case.case_id for case in cases.values()})
        return list(found.values())

    async def case(self, case_id: str) -> CaseRecord | None:
        return (await self.cases.load(case_id)).value

    # --- The rest -----------------------------------------------------------------------------

    async def month_counts(self, month: str) -> list[tuple[CountKey, int]]:
        found = await self.counts.find(month=month)
        return month_totals(kept.value for kept in found.values() if kept.value is not None)

    async def decisions_of(self, *kinds: DecisionKind) -> list[Decision]:
        """Every version of the decisions of these kinds. (Each rule decides one kind under a
        key, so a key's versions are all of one kind, and the one standing is among them.)"""
        found = await asyncio.gather(*(self.decisions.find(kind=kind) for kind in kinds))
        return [decision for decisions in found for decision in decisions.values()]

    async def latest_observations(self, scope: str, period: str) -> list[Observation]:
        return _latest((await self.observations.find(scope=scope, period=period)).values())

    async def sessions_held(self, month: str, department: str | None) -> list[HeldSession]:
        equal = {"held_month": month} | ({} if department is None else {"department": department})
        return list((await self.sessions.find(**equal)).values())

    async def month_data(self, month: str, department: str | None) -> MonthData:
        """What one month's report of ``department`` (None: the hospital) shows."""
        counts = await self.month_counts(month)
        against_heads = {key.complaint_against_head for key, _ in counts}
        opened, overdue, handling, decisions, observations, sessions = await asyncio.gather(
            self.cases_opened(month, department),
            self.cases_ever_overdue(department),
            self.cases_handling(event_id for event_id in against_heads if event_id),
            self.decisions_of(*MEASURE_KINDS),
            self.latest_observations(department or HOSPITAL, month),
            self.sessions_held(month, department),
        )
        confirmations = await self.confirmations.find(month=month)
        cases = {case.case_id: case for case in [*opened, *overdue, *handling]}
        return MonthData(
            counts=counts,
            cases=list(cases.values()),
            decisions=decisions,
            observations=observations,
            sessions=sessions,
            confirmations=list(confirmations.values()),
        )
