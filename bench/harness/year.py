"""The example hospital the benchmarks load the system with (hospital.toml beside this file):
departments (the services' catalogue) with staff, companies, and events of every type drawn
field by field as that file says (``Hospital``); and a whole year of it as it reaches reporting
(``Year``): facts in the order intake receives them, the cases the router's own functions open,
advance and close on them, and the decisions escalation's rules make, in its own wording.
"""

import heapq
import itertools
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from bench.harness.runtime import tag
from schemas import topics
from schemas.base import HOSPITAL_TIME_ZONE as TZ
from schemas.base import Event, derive_event_id
from schemas.case import CaseChange, CaseUpdated
from schemas.case_action import CaseActionKind, CaseActionReceived
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintCategory, ComplaintReceived
from schemas.dead_letter import DeadLetter, Problem
from schemas.decision import Decision, DecisionKind, EscalationTarget, Measure, SubjectKind
from schemas.finding import InvestigationFindingReceived
from schemas.kpi import KpiMetric
from schemas.prescription import PrescriptionRankingReceived
from schemas.promotion import PromotionApplicationReceived
from schemas.rectification import RectificationStatusReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.visitor_log import PlaceKind, VisitorLogReceived
from services.common.datafile import DataFile
from services.escalation.conduct import ConductFile, decide, decision_of
from services.escalation.outcomes import Outcome, OverdueCase, PromotionBar, RepInClinicalPlace
from services.escalation.rulebook import RuleBook
from services.escalation.rules.company import vendor_cutoffs
from services.escalation.rules.department import rectification_notices
from services.escalation.rules.leads import lead_of
from services.escalation.rules.staff import (
    prescribing_measures,
    promotion_bars,
    promotion_decisions,
    surrenders,
)
from services.escalation.settings import EscalationSettings
from services.router.domain import Opening, is_related, link, open_case, record_finding, take_action
from services.router.routing import Routing
from services.router.settings import RouterSettings

Scalar = str | bool | int | float


class Spec(BaseModel):
    """How one field is drawn (see the head of hospital.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    share: float = 1.0
    otherwise: "Spec | None" = None
    when: str | None = None
    one_of: list[Any] | None = None
    weighted: list[tuple[Any, float]] | None = None
    between: tuple[int, int] | None = None
    hundreds_of_yuan: tuple[int, int] | None = None
    pick: Literal["department", "staff", "company", "attendees", "headcount"] | None = None
    format: str | None = None
    minutes_after: tuple[float, float] | None = None
    days_before: tuple[int, int] | None = None
    month_before: bool = False


class EventSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    per_year: float = 0
    source_system: str
    received_after_minutes: tuple[float, float]
    fields: dict[str, Spec | Scalar] = Field(default_factory=dict)


class CasePlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    started: float
    found_on_time: float
    found_late: float
    closed_after_finding: float
    substantiated: float
    substantiated_by_category: dict[ComplaintCategory, float]
    substantiated_without_category: float


class HospitalFile(DataFile):
    companies: int
    dead_letters_per_year: float
    officer: str
    staff_by_kind: dict[str, int]
    department_weight: dict[str, int]
    study_sessions_a_month: list[int]
    kpi_reobserved: float
    visit_breach_share: float
    kpi_values: dict[str, tuple[float, float]]
    cases: CasePlan
    events: dict[str, EventSpec]


HOSPITAL = HospitalFile.from_file(Path(__file__).with_name("hospital.toml"))


@cache
def routing() -> Routing:
    """The router's shipped department catalogue and routing table."""
    settings = RouterSettings()
    return Routing.load(settings.departments, settings.routing_table)


class Hospital:
    """Departments with staff (the file's numbers by kind, the head first), companies
    (``companies`` of them, by default the file's), and events drawn with ``rng``; source
    references are ``<prefix>-<serial>``."""

    def __init__(
        self, rng: random.Random, *, companies: int | None = None, prefix: str | None = None
    ) -> None:
        self.rng, self.prefix, self.serial = rng, prefix or f"B-{tag()}", itertools.count(1)
        numbers = itertools.count(1)
        self.staff: dict[str, list[str]] = {}
        self.weights: list[int] = []
        for code, entry in sorted(routing().catalogue.departments.items()):
            others = range(HOSPITAL.staff_by_kind[str(entry.kind)] - 1)
            self.staff[code] = [entry.head_staff_id] + [f"S{next(numbers):05d}" for _ in others]
            self.weights.append(HOSPITAL.department_weight[str(entry.kind)])
        self.departments = list(self.staff)
        self.all_staff = [person for pool in self.staff.values() for person in pool]
        count = HOSPITAL.companies if companies is None else companies
        self.companies = [f"C{n:04d}" for n in range(max(1, count))]

    def draw(self, spec: Spec | Scalar, fields: dict[str, Any]) -> Any:
        rng, occurred = self.rng, fields["occurred_at"]
        if not isinstance(spec, Spec):
            return spec
        if spec.share < 1 and rng.random() >= spec.share:
            return None if spec.otherwise is None else self.draw(spec.otherwise, fields)
        if spec.when is not None and not fields.get(spec.when):
            return None
        if spec.one_of is not None:
            return rng.choice(spec.one_of)
        if spec.weighted is not None:
            return rng.choices(*zip(*spec.weighted, strict=True))[0]
        if spec.between is not None:
            return rng.randint(*spec.between)
        if spec.hundreds_of_yuan is not None:
            return Decimal(rng.randint(*spec.hundreds_of_yuan) * 100)
        if spec.format is not None:
            return spec.format.format(**fields, serial=next(self.serial))
        if spec.minutes_after is not None:
            return occurred + timedelta(minutes=rng.uniform(*spec.minutes_after))
        day = occurred.astimezone(TZ).date()
        if spec.days_before is not None:
            return day - timedelta(days=rng.randint(*spec.days_before))
        if spec.month_before:
            return (day.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        # The staff of the event's department (or of the hospital, if it names none).
        pool = self.staff.get(fields.get("department") or fields.get("accused_department") or "")
        pool = pool or self.all_staff
        match spec.pick:
            case "department":  # clinical departments more often (department_weight)
                return rng.choices(self.departments, self.weights)[0]
            case "company":  # a few companies visit far more often than the rest (Pareto)
                return self.companies[min(int(rng.paretovariate(1.2)), len(self.companies)) - 1]
            case "attendees":
                return tuple(rng.sample(pool, int(len(pool) * rng.uniform(0.6, 0.98))))
            case "headcount":
                return len(pool)
        return rng.choice(pool)  # staff

    def drawn(self, event_type: str, name: str, occurred_at: datetime) -> Any:
        """One field of an event type, drawn as the file says."""
        return self.draw(HOSPITAL.events[event_type].fields[name], {"occurred_at": occurred_at})

    def facts(
        self, event_type: str, occurred_at: datetime, given: dict[str, Any]
    ) -> dict[str, Any]:
        """A submission's fields: ``given`` ones as they are, the others drawn in order."""
        spec = HOSPITAL.events[event_type]
        fields: dict[str, Any] = {
            "source_system": spec.source_system,
            "source_ref": f"{self.prefix}-{next(self.serial)}",
            "occurred_at": occurred_at,
        }
        for name, how in spec.fields.items():
            names = name.split()
            if not any(part in given for part in names):
                value = self.draw(how, fields | given)
                fields |= dict(zip(names, value, strict=True)) if len(names) > 1 else {name: value}
        return fields | given

    def body(self, event_type: str, occurred_at: datetime, **given: Any) -> dict[str, Any]:
        """What a sender submits (JSON-ready), with its event_type."""
        facts = self.facts(event_type, occurred_at, given)
        return {"event_type": event_type, **to_jsonable_python(facts)}

    def event(
        self,
        event_type: str,
        *,
        received_at: datetime,
        occurred_at: datetime | None = None,
        **given: Any,
    ) -> Event:
        """The event intake publishes for these facts, received at ``received_at`` (it occurred
        a while before, unless given)."""
        if occurred_at is None:
            delay = self.rng.uniform(*HOSPITAL.events[event_type].received_after_minutes)
            occurred_at = received_at - timedelta(minutes=delay)
        facts = self.facts(event_type, occurred_at, given)
        facts |= {"event_id": derive_event_id(facts["source_system"], facts["source_ref"])}
        return BY_TYPE[event_type].event.model_validate(
            {k: v for k, v in facts.items() if v is not None} | {"received_at": received_at}
        )


# --- A year of it -------------------------------------------------------------------------------


class Sink(Protocol):
    """Where a year's records go, in order."""

    def fact(self, event: Event) -> None: ...
    def dead_letter(self, letter: DeadLetter) -> None: ...
    def case(self, case: CaseUpdated) -> None: ...
    def decision(self, decision: Decision) -> None: ...


Handler = Callable[[datetime, Any], None]


def file_of(kind: SubjectKind, subject_id: str, *events: Any) -> ConductFile:
    return ConductFile(subject_kind=kind, subject_id=subject_id, events=events)


class Year:
    """The 365 days before ``now`` at ``scale``, into ``sink`` in the order received."""

    def __init__(self, hospital: Hospital, sink: Sink, *, now: datetime, scale: float) -> None:
        self.hospital, self.sink, self.now, self.scale = hospital, sink, now, scale
        self.rng = hospital.rng
        self.book = RuleBook.from_file(EscalationSettings().rules)
        self.first = now.astimezone(TZ).date() - timedelta(days=365)
        self.begin = datetime.combine(self.first, clock_time.min, TZ)
        self.sequence = itertools.count()
        self.heap: list[tuple[datetime, int, Handler, Any]] = []
        self.cases: dict[str, CaseUpdated] = {}
        self.related: dict[str, str] = {}
        self.bars: dict[str, list[PromotionBar]] = {}
        self.failures: dict[str, list[RectificationStatusReceived]] = {}

    def push(self, at: datetime, handle: Handler, data: Any = None) -> None:
        if self.begin <= at <= self.now:
            heapq.heappush(self.heap, (at, next(self.sequence), handle, data))

    def arrivals(self, start: datetime, per_year: float) -> Iterable[datetime]:
        """Moments of the day at ``per_year`` × scale a year (the fraction by chance)."""
        expected = per_year * self.scale / 365
        count = int(expected) + (self.rng.random() < expected % 1)
        return (start + timedelta(seconds=self.rng.uniform(0, 86400)) for _ in range(count))

    def generate(self, progress: Callable[[str], None]) -> None:
        for index in range(366):
            day = self.first + timedelta(days=index)
            start = datetime.combine(day, clock_time.min, TZ)
            if index == 0 or day.day == 1:
                self.plan_month(day)
            self.plan_day(start)
            while self.heap and self.heap[0][0] < start + timedelta(days=1):
                at, _, handle, data = heapq.heappop(self.heap)
                handle(at, data)
            if index % 30 == 0:
                progress(f"{day}: {next(self.hospital.serial)} serials drawn")

    def plan_day(self, start: datetime) -> None:
        for event_type, spec in HOSPITAL.events.items():
            if event_type != "visitor_log":
                for at in self.arrivals(start, spec.per_year):
                    self.push(at, self.arrive, (event_type, {}))
        for at in self.arrivals(start, HOSPITAL.dead_letters_per_year):
            self.push(at, self.dead_letter)
        # Rep visits on weekday afternoons (14:00 to 16:30) in a reception or meeting room with
        # an appointment, but for a few breaking one of those rules; received when logged.
        visits, breaches = HOSPITAL.events["visitor_log"].per_year, HOSPITAL.visit_breach_share
        weekday = start.isoweekday() <= 5
        for _ in self.arrivals(start, visits * 7 / 5 * (1 - breaches) * weekday):
            self.plan_visit(start, None)
        for _ in self.arrivals(start, visits * breaches):
            self.plan_visit(start, self.rng.choice(("place", "hour", "appointment")))

    def plan_visit(self, day_start: datetime, breach: str | None) -> None:
        rng = self.rng
        started = day_start + timedelta(hours=14, minutes=rng.uniform(0, 150))
        if breach == "hour":
            started = day_start + timedelta(hours=rng.uniform(7, 20))
        given: dict[str, Any] = {"occurred_at": started, "started_at": started}
        if breach == "place":
            given["place_kind"] = rng.choice(list(PlaceKind))
        if breach == "appointment":
            given["appointment_id"] = None
        delay = rng.uniform(*HOSPITAL.events["visitor_log"].received_after_minutes)
        self.push(started + timedelta(minutes=delay), self.arrive, ("visitor_log", given))

    def plan_month(self, day: date) -> None:
        """Study sessions of each department in this month; KPI observations of last month
        (and, in January, of last year)."""
        rng, keep = self.rng, min(1.0, self.scale)
        first = day.replace(day=1)
        days = ((first + timedelta(days=32)).replace(day=1) - first).days
        for department in self.hospital.departments:
            for _ in range(rng.choice(HOSPITAL.study_sessions_a_month)):
                if rng.random() < keep:
                    held_on = first + timedelta(days=rng.randrange(days))
                    held = datetime.combine(held_on, clock_time(15), TZ)
                    given = {"occurred_at": held, "department": department, "held_on": held_on}
                    at = held + timedelta(hours=rng.uniform(2, 30))
                    self.push(at, self.arrive, ("training_held", given))
        last_month = (first - timedelta(days=1)).strftime("%Y-%m")
        periods = [last_month] + ([str(first.year - 1)] if first.month == 1 else [])
        observed = datetime.combine(first + timedelta(rng.randrange(2, 8)), clock_time(10), TZ)
        for period, metric, scope in itertools.product(
            periods, KpiMetric, ["hospital", *self.hospital.departments]
        ):
            if rng.random() < keep:
                at = observed + timedelta(seconds=rng.uniform(0, 3600))
                self.push(at, self.observe, (metric, scope, period))
                if rng.random() < HOSPITAL.kpi_reobserved:
                    again = at + timedelta(days=rng.uniform(1, 5))
                    self.push(again, self.observe, (metric, scope, period))

    def observe(self, at: datetime, what: tuple[KpiMetric, str, str]) -> None:
        metric, scope, period = what
        low, high = HOSPITAL.kpi_values.get(str(metric), HOSPITAL.kpi_values["otherwise"])
        value = Decimal(f"{self.rng.uniform(low, high):.4f}")
        self.fact("kpi_observation", at, metric=metric, scope=scope, period=period, value=value)

    def arrive(self, at: datetime, what: tuple[str, dict[str, Any]]) -> None:
        self.fact(what[0], at, **what[1])

    def fact(self, event_type: str, at: datetime, **given: Any) -> Any:
        """The event, published; the case its lead or complaint opens; escalation's decisions
        on it (with the promotion bars and failed rectifications before it)."""
        event = self.hospital.event(event_type, received_at=at, **given)
        self.sink.fact(event)
        lead = lead_of(event, self.book)
        if lead is not None:
            self.open(Opening.of_lead(lead), at)
        match event:
            case ComplaintReceived():
                self.open(Opening.of_complaint(event), at)
            case VisitorLogReceived(place_kind=place):
                if place in self.book.rep_visit.clinical_place_kinds:
                    company = file_of(SubjectKind.COMPANY, event.company_code)
                    self.decide(company, at, [RepInClinicalPlace(event)])
            case PrescriptionRankingReceived(rank=1, justified=False, staff_id=staff_id):
                staff = file_of(SubjectKind.STAFF, staff_id, event)
                self.decide(staff, at, prescribing_measures(staff, self.book))
            case PromotionApplicationReceived(staff_id=staff_id):
                staff = file_of(SubjectKind.STAFF, staff_id, event)
                self.decide(staff, at, promotion_decisions(staff, self.bars.get(staff_id, [])))
            case RectificationStatusReceived(department=department) if lead is not None:
                failed = self.failures.setdefault(department, [])
                failed.append(event)
                file = file_of(SubjectKind.DEPARTMENT, department, *failed)
                notices = rectification_notices(file, self.book, now=at)
                self.decide(file, at, [n for n in notices if n.status.event_id == event.event_id])
            case RedEnvelopeSurrenderReceived(staff_id=staff_id):
                staff = file_of(SubjectKind.STAFF, staff_id, event)
                self.decide(staff, at, surrenders(staff, self.book))
            case InvestigationFindingReceived(substantiated=True):
                self.sanction(event, at)
        return event

    def decide(self, file: ConductFile, at: datetime, outcomes: Iterable[Outcome]) -> None:
        """The decisions, as escalation words and publishes them."""
        for outcome in outcomes:
            now = at + timedelta(seconds=3)
            self.sink.decision(decision_of(outcome, file, self.book, now=now))

    def sanction(self, finding: InvestigationFindingReceived, at: datetime) -> None:
        """Escalation's promotion-bar and vendor cut-off rules on a substantiated finding; and,
        for a kickback or a red envelope, a measure against the staff member (this generator's
        own stand-in for the measures the hospital takes, worded here)."""
        category, company = finding.confirmed_categories[0], finding.company_code
        for staff_id in finding.staff_ids:
            staff = file_of(SubjectKind.STAFF, staff_id, finding)
            bars = promotion_bars(staff, self.book)
            self.bars.setdefault(staff_id, []).extend(bars)
            self.decide(staff, at, bars)
            if category in (ComplaintCategory.KICKBACK, ComplaintCategory.RED_ENVELOPE):
                measure = decide(
                    self.book,
                    rule_id="R-KICKBACK",
                    key=f"case:{finding.case_id}",
                    subject=staff,
                    kind=DecisionKind.MEASURE,
                    measure=self.rng.choice(list(Measure)),
                    case_id=finding.case_id,
                    as_of=finding.occurred_at,
                    sources=[finding],
                    facts={"amount_cny": finding.confirmed_amount_cny or "0"},
                    explanation_zh=f"案件{finding.case_id}查实{category.label_zh}，对{staff_id}予以处理。",
                    explanation_en=f"{category} found: measures against {staff_id}.",
                    now=at + timedelta(seconds=3),
                )
                self.sink.decision(measure)
        if company is not None:
            file = file_of(SubjectKind.COMPANY, company, finding)
            self.decide(file, at, vendor_cutoffs(file, self.book))

    def dead_letter(self, at: datetime, _: Any) -> None:
        self.sink.dead_letter(
            DeadLetter(
                dead_letter_id=uuid.UUID(int=self.rng.getrandbits(128)),
                source_topic=topics.raw_topic("his"),
                source_partition=0,
                source_offset=next(self.hospital.serial),
                source_system="satisfaction-kiosk",
                reason="invalid",
                problems=(Problem(field="satisfaction.score", reason="less_than_equal"),),
                original_sealed=self.rng.randbytes(96),
                dead_lettered_at=at,
            )
        )

    # --- Cases: the router's functions, escalation's overdue-case rule -------------------------

    def open(self, opening: Opening, at: datetime) -> None:
        now, key = at + timedelta(seconds=2), opening.related_key
        known = self.related.get(key) if key is not None else None
        if known is not None and is_related(self.cases[known], opening, routing()):
            self.revise(link(self.cases[known], opening, now=now))
            return
        case = open_case(opening, routing(), now=now)
        if key is not None:
            self.related[key] = case.case_id
        self.revise(case)
        self.plan_case(case)

    def revise(self, case: CaseUpdated) -> None:
        self.cases[case.case_id] = case
        self.sink.case(case)

    def plan_case(self, case: CaseUpdated) -> None:
        """Investigation started, a finding on time, late or never, the case closed after it;
        escalated when its deadline (and later the leadership's) passes without a finding."""
        rng, plan, opened, deadline = self.rng, HOSPITAL.cases, case.opened_at, case.deadline
        span = deadline - opened
        if rng.random() < plan.started:
            self.push(opened + span * rng.uniform(0.02, 0.3), self.action, case.case_id)
        draw, found = rng.random(), None
        if draw < plan.found_on_time:
            found = opened + span * rng.uniform(0.35, 0.98)
        elif draw < plan.found_on_time + plan.found_late:
            found = deadline + span * rng.uniform(0.05, 1.5)
        if found is not None:
            self.push(found, self.finding, case.case_id)
            if rng.random() < plan.closed_after_finding:
                self.push(found + timedelta(days=rng.uniform(1, 10)), self.close, case.case_id)
        leadership = deadline + timedelta(days=self.book.every_complaint.leadership_after_days)
        for target, due in (
            (EscalationTarget.DEPARTMENT_HEAD, deadline),
            (EscalationTarget.LEADERSHIP_GROUP, leadership),
        ):
            if found is None or found > due:
                self.push(due, self.escalate, (case.case_id, target))

    def action(
        self, at: datetime, case_id: str, kind: CaseActionKind = CaseActionKind.START_INVESTIGATION
    ) -> None:
        reason = "调查结束，结案。" if kind is CaseActionKind.CLOSE else None
        given = {"case_id": case_id, "action": kind, "actor_staff_id": HOSPITAL.officer}
        event = cast(CaseActionReceived, self.fact("case_action", at, **given, reason=reason))
        case = take_action(self.cases[case_id], event, routing(), now=at + timedelta(seconds=2))
        self.revise(case)

    def close(self, at: datetime, case_id: str) -> None:
        self.action(at, case_id, CaseActionKind.CLOSE)

    def finding(self, at: datetime, case_id: str) -> None:
        case, plan, rng = self.cases[case_id], HOSPITAL.cases, self.rng
        chance = plan.substantiated_without_category
        if case.category is not None:
            chance = plan.substantiated_by_category.get(case.category, plan.substantiated)
        substantiated = rng.random() < chance
        categories = (case.category or ComplaintCategory.KICKBACK,) if substantiated else ()
        company = case.company_code if substantiated else None
        kickback = ComplaintCategory.KICKBACK in categories
        given = {
            "case_id": case_id,
            "substantiated": substantiated,
            "confirmed_categories": categories,
            "staff_ids": (case.accused_staff_id,) if case.accused_staff_id else (),
            "confirmed_amount_cny": Decimal(rng.randint(5, 600) * 100) if kickback else None,
            "company_code": company,
            "company_name": None if company is None else f"{company} 医药有限公司",
            "summary": "经调查核实。" if substantiated else "经调查未查实。",
        }
        event = cast(InvestigationFindingReceived, self.fact("investigation_finding", at, **given))
        self.revise(record_finding(case, event, now=at + timedelta(seconds=2)))

    def escalate(self, at: datetime, what: tuple[str, EscalationTarget]) -> None:
        """R-EVERY-COMPLAINT, unless a finding was recorded by then."""
        case = self.cases[what[0]]
        if all(e.change is not CaseChange.FINDING_RECORDED or e.at > at for e in case.history):
            self.decide(ConductFile.of_case(case), at, [OverdueCase(case, what[1], at)])
