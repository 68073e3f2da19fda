"""The example hospital the benchmarks load the system with (hospital.toml beside this file):
departments (the services' own catalogue) with staff by kind, companies, and events of every
type drawn field by field as that file says (``Hospital``); and a whole year of it as it
reaches reporting (``Year``): facts in the order intake receives them, the cases the router's
own functions open, link, advance and close on them, and the decisions escalation's rules make.
"""

import heapq
import itertools
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bench.harness.runtime import tag
from schemas import topics
from schemas.base import HOSPITAL_TIME_ZONE, Event, derive_event_id
from schemas.case import CaseChange, CaseUpdated
from schemas.case_action import CaseActionKind, CaseActionReceived
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintCategory, ComplaintReceived
from schemas.dead_letter import DeadLetter, Problem
from schemas.decision import Decision, DecisionKind, EscalationTarget, Measure, SubjectKind
from schemas.finding import InvestigationFindingReceived
from schemas.kpi import KpiMetric
from schemas.rectification import RectificationStatusReceived
from schemas.satisfaction import SatisfactionReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.visitor_log import PlaceKind, VisitorLogReceived
from services.common.datafile import DataFile, Location
from services.escalation.conduct import ConductFile, decide
from services.escalation.rulebook import RuleBook
from services.escalation.rules.leads import (
    late_surrender_lead,
    rectification_lead,
    satisfaction_lead,
    surrendered_in_time,
    visit_lead,
)
from services.escalation.settings import EscalationSettings
from services.router.domain import Opening, is_related, link, open_case, record_finding, take_action
from services.router.routing import Routing
from services.router.settings import RouterSettings

TZ = HOSPITAL_TIME_ZONE
Scalar = str | bool | int | float


class Spec(BaseModel):
    """How one field is drawn (see the head of hospital.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    share: float = 1.0
    when: str | None = None
    one_of: list[Any] | None = None
    weighted: list[tuple[Any, float]] | None = None
    between: tuple[int, int] | None = None
    hundreds_of_yuan: tuple[int, int] | None = None
    pick: (
        Literal["department", "staff", "any_staff", "company", "attendees", "headcount"] | None
    ) = None
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
    late_surrender_share: float
    kpi_values: dict[str, tuple[float, float]]
    cases: CasePlan
    events: dict[str, EventSpec]

    def cross_check(self) -> Sequence[tuple[Location, str]]:
        problems: list[tuple[Location, str]] = []
        for event_type, spec in self.events.items():
            if event_type not in BY_TYPE:
                problems.append((("events", event_type), "no such event type"))
                continue
            known = BY_TYPE[event_type].submission.model_fields
            for name in spec.fields:
                if any(part not in known for part in name.split()):
                    problems.append((("events", event_type, "fields", name), "no such field"))
        return problems


HOSPITAL = HospitalFile.from_file(Path(__file__).with_name("hospital.toml"))


@cache
def routing() -> Routing:
    """The router's shipped department catalogue and routing table."""
    settings = RouterSettings()
    return Routing.load(settings.departments, settings.routing_table)


@cache
def rule_book() -> RuleBook:
    return RuleBook.from_file(EscalationSettings().rules)


def json_ready(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | Enum):
        return str(value)
    if isinstance(value, tuple | list):
        return [json_ready(item) for item in value]
    return value


class Hospital:
    """Departments with staff (``staff_scale`` × the file's numbers, the head first), companies
    (``companies`` of them, by default the file's), and events drawn with ``rng``; source
    references are ``<prefix>-<serial>``."""

    def __init__(
        self,
        rng: random.Random,
        *,
        staff_scale: float = 1.0,
        companies: int | None = None,
        prefix: str | None = None,
    ) -> None:
        self.rng, self.prefix, self.serial = rng, prefix or f"B-{tag()}", itertools.count(1)
        numbers = itertools.count(1)
        self.staff: dict[str, list[str]] = {}
        self.weights: list[int] = []
        for code, entry in sorted(routing().catalogue.departments.items()):
            size = max(1, round(HOSPITAL.staff_by_kind[str(entry.kind)] * staff_scale))
            pool = [entry.head_staff_id] + [f"S{next(numbers):05d}" for _ in range(size - 1)]
            self.staff[code] = pool
            self.weights.append(HOSPITAL.department_weight[str(entry.kind)])
        self.departments = list(self.staff)
        self.all_staff = [person for pool in self.staff.values() for person in pool]
        count = HOSPITAL.companies if companies is None else companies
        self.companies = [f"C{n:04d}" for n in range(max(1, count))]

    def department(self) -> str:
        return self.rng.choices(self.departments, self.weights)[0]

    def company(self) -> str:
        """A few companies visit far more often than the rest (Pareto)."""
        index = min(int(self.rng.paretovariate(1.2)) - 1, len(self.companies) - 1)
        return self.companies[index]

    def pick(self, what: str, fields: dict[str, Any]) -> Any:
        department = fields.get("department") or fields.get("accused_department")
        pool = self.staff.get(department, self.all_staff) if department else self.all_staff
        match what:
            case "department":
                return self.department()
            case "staff":
                return self.rng.choice(pool)
            case "any_staff":
                return self.rng.choice(self.all_staff)
            case "company":
                return self.company()
            case "attendees":
                return tuple(self.rng.sample(pool, int(len(pool) * self.rng.uniform(0.6, 0.98))))
        return len(pool)  # headcount

    def draw(self, spec: Spec | Scalar, fields: dict[str, Any]) -> Any:
        rng, occurred = self.rng, fields["occurred_at"]
        if not isinstance(spec, Spec):
            return spec
        if spec.share < 1 and rng.random() >= spec.share:
            return None
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
        if spec.pick is not None:
            return self.pick(spec.pick, fields)
        if spec.format is not None:
            return spec.format.format(**fields, serial=next(self.serial))
        if spec.minutes_after is not None:
            return occurred + timedelta(minutes=rng.uniform(*spec.minutes_after))
        day = occurred.astimezone(TZ).date()
        if spec.days_before is not None:
            return day - timedelta(days=rng.randint(*spec.days_before))
        return (day.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")  # month_before

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
        return {"event_type": event_type} | {k: json_ready(v) for k, v in facts.items()}

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
        facts = {
            k: v for k, v in self.facts(event_type, occurred_at, given).items() if v is not None
        }
        return BY_TYPE[event_type].event.model_validate(
            facts
            | {
                "event_id": derive_event_id(facts["source_system"], facts["source_ref"]),
                "received_at": received_at,
            }
        )


# --- A year of it -------------------------------------------------------------------------------


class Sink(Protocol):
    """Where a year's records go, in order."""

    def fact(self, event: Event) -> None: ...
    def dead_letter(self, letter: DeadLetter) -> None: ...
    def case(self, case: CaseUpdated) -> None: ...
    def decision(self, decision: Decision) -> None: ...


@dataclass
class Year:
    """The 365 days before ``now`` at ``scale``, into ``sink`` in the order received."""

    hospital: Hospital
    sink: Sink
    now: datetime
    scale: float
    book: RuleBook = field(default_factory=rule_book)
    sequence: Iterator[int] = field(default_factory=itertools.count)
    heap: list[tuple[datetime, int, str, Any]] = field(default_factory=list)
    cases: dict[str, CaseUpdated] = field(default_factory=dict)
    related: dict[str, str] = field(default_factory=dict)
    bars: dict[str, list[tuple[date, date]]] = field(default_factory=dict)
    failed_rectifications: dict[str, list[datetime]] = field(default_factory=dict)
    begin: datetime | None = None
    """The first moment of the year; nothing earlier is generated."""

    @property
    def rng(self) -> random.Random:
        return self.hospital.rng

    def uniform(self, start: datetime, seconds: float) -> datetime:
        return start + timedelta(seconds=self.rng.uniform(0, seconds))

    def how_many(self, expected: float) -> int:
        whole = int(expected)
        return whole + (self.rng.random() < expected - whole)

    def push(self, at: datetime, what: str, data: Any = None) -> None:
        if at <= self.now and (self.begin is None or at >= self.begin):
            heapq.heappush(self.heap, (at, next(self.sequence), what, data))

    def fact(self, event_type: str, at: datetime, **given: Any) -> Any:
        event = self.hospital.event(event_type, received_at=at, **given)
        self.sink.fact(event)
        return event

    def generate(self, progress: Callable[[str], None]) -> None:
        first = self.now.astimezone(TZ).date() - timedelta(days=365)
        self.begin = datetime.combine(first, clock_time.min, TZ)
        handlers = self.handlers()
        for index in range(366):
            day = first + timedelta(days=index)
            start = datetime.combine(day, clock_time.min, TZ)
            if index == 0 or day.day == 1:
                self.plan_month(day)
            self.plan_day(start)
            while self.heap and self.heap[0][0] < start + timedelta(days=1):
                at, _, what, data = heapq.heappop(self.heap)
                handlers[what](at, data)
            if index % 30 == 0:
                progress(f"{day}: {next(self.hospital.serial)} serials drawn")

    def plan_day(self, start: datetime) -> None:
        for event_type, spec in HOSPITAL.events.items():
            if spec.per_year and event_type != "visitor_log":
                for _ in range(self.how_many(spec.per_year * self.scale / 365)):
                    self.push(self.uniform(start, 86400), event_type)
        visits = HOSPITAL.events["visitor_log"].per_year * self.scale / 365
        breaches = HOSPITAL.visit_breach_share
        compliant = visits * 7 / 5 * (1 - breaches) if start.isoweekday() <= 5 else 0.0
        for _ in range(self.how_many(compliant)):
            self.plan_visit(start, None)
        for _ in range(self.how_many(visits * breaches)):
            self.plan_visit(start, self.rng.choice(("place", "hour", "appointment")))
        for _ in range(self.how_many(HOSPITAL.dead_letters_per_year * self.scale / 365)):
            self.push(self.uniform(start, 86400), "dead_letter")

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
                    received = held + timedelta(hours=rng.uniform(2, 30))
                    self.push(received, "session", (department, held))
        last_month = (first - timedelta(days=1)).strftime("%Y-%m")
        periods = [last_month] + ([str(first.year - 1)] if first.month == 1 else [])
        observed = datetime.combine(first + timedelta(days=rng.randrange(2, 8)), clock_time(10), TZ)
        for period in periods:
            for metric in KpiMetric:
                for scope in ["hospital", *self.hospital.departments]:
                    if rng.random() < keep:
                        at = self.uniform(observed, 3600)
                        self.push(at, "kpi", (metric, scope, period))
                        if rng.random() < HOSPITAL.kpi_reobserved:
                            self.push(
                                at + timedelta(days=rng.uniform(1, 5)),
                                "kpi",
                                (metric, scope, period),
                            )

    def handlers(self) -> dict[str, Callable[[datetime, Any], None]]:
        return {
            "satisfaction": self.rating,
            "visit": self.visit,
            "prescription_ranking": self.ranking,
            "complaint": self.complaint,
            "promotion_application": self.application,
            "rectification_status": self.rectification,
            "red_envelope_surrender": self.surrender,
            "session": self.session,
            "kpi": self.kpi,
            "dead_letter": self.dead_letter,
            "start": lambda at, case_id: self.action(
                at, case_id, CaseActionKind.START_INVESTIGATION
            ),
            "finding": self.finding,
            "close": lambda at, case_id: self.action(at, case_id, CaseActionKind.CLOSE),
            "escalate": self.escalate,
        }

    def decision(
        self,
        rule_id: str,
        key: str,
        subject: tuple[SubjectKind, str],
        *,
        at: datetime,
        **fields: Any,
    ) -> None:
        """A decision as escalation's rules make them (conduct.decide), published."""
        file = ConductFile(subject_kind=subject[0], subject_id=subject[1])
        fields.setdefault("sources", [])
        self.sink.decision(
            decide(
                self.book,
                rule_id=rule_id,
                key=key,
                subject=file,
                now=at + timedelta(seconds=3),
                **fields,
            )
        )

    # --- Facts that arrive at their own pace ---------------------------------------------------

    def rating(self, at: datetime, _: Any) -> None:
        event = self.fact("satisfaction", at)
        assert isinstance(event, SatisfactionReceived)  # noqa: S101 (the catalogue's class)
        lead = satisfaction_lead(event, self.book)
        if lead is not None:
            self.open(Opening.of_lead(lead), at)

    def plan_visit(self, day_start: datetime, breach: str | None) -> None:
        """A rep visit on a weekday afternoon in a reception or meeting room with an
        appointment, unless it breaks one of those rules; received when the desk logs it."""
        rng = self.rng
        started = day_start + timedelta(hours=14, minutes=rng.uniform(0, 150))
        if breach == "hour":
            started = day_start + timedelta(hours=rng.uniform(7, 20))
        delay = HOSPITAL.events["visitor_log"].received_after_minutes
        self.push(started + timedelta(minutes=rng.uniform(*delay)), "visit", (started, breach))

    def visit(self, received: datetime, planned: tuple[datetime, str | None]) -> None:
        started, breach = planned
        given: dict[str, Any] = {"occurred_at": started, "started_at": started}
        if breach == "place":
            given["place_kind"] = self.rng.choice(list(PlaceKind))
        if breach == "appointment":
            given["appointment_id"] = None
        event = self.fact("visitor_log", received, **given)
        assert isinstance(event, VisitorLogReceived)  # noqa: S101 (the catalogue's class)
        lead = visit_lead(event, self.book)
        if lead is not None:
            self.open(Opening.of_lead(lead), received)
        place = event.place_kind
        if place in self.book.rep_visit.clinical_place_kinds:
            self.decision(
                "R-REP-VISIT",
                f"visit:{event.event_id}",
                (SubjectKind.COMPANY, event.company_code),
                kind=DecisionKind.REMOVAL_ALERT,
                as_of=started,
                at=received,
                sources=[event],
                facts={"place": event.place_code, "place_kind": place},
                explanation_zh=f"医药代表出现在{place.label_zh}{event.place_code}，立即驱离。",
                explanation_en=f"Rep of {event.company_code} in a {place}: remove at once.",
            )

    def ranking(self, at: datetime, _: Any) -> None:
        event = self.fact("prescription_ranking", at)
        if event.rank == 1 and not event.justified:
            self.decision(
                "R-PRESCRIBE",
                f"ranking:{event.event_id}",
                (SubjectKind.STAFF, event.staff_id),
                kind=DecisionKind.MEASURE,
                measure=Measure.INTERVIEW,
                as_of=event.occurred_at,
                at=at,
                sources=[event],
                facts={"item": event.item_code, "rank": 1},
                explanation_zh=f"{event.staff_id}{event.item_name}用量排名第一且无合理说明，约谈。",
                explanation_en=f"{event.staff_id} ranks first for {event.item_code}: interview.",
            )

    def complaint(self, at: datetime, _: Any) -> None:
        event = self.fact("complaint", at)
        assert isinstance(event, ComplaintReceived)  # noqa: S101 (the catalogue's class)
        self.open(Opening.of_complaint(event), at)

    def application(self, at: datetime, _: Any) -> None:
        event = self.fact("promotion_application", at)
        staff_id, day = event.staff_id, event.occurred_at.astimezone(TZ).date()
        bar = max(
            (until for since, until in self.bars.get(staff_id, []) if since <= day <= until),
            default=None,
        )
        outcome = ("准予。", "allowed.") if bar is None else (f"禁止至{bar}。", f"barred to {bar}.")
        self.decision(
            "R-PROMO-2Y",
            f"application:{event.application_id}",
            (SubjectKind.STAFF, staff_id),
            kind=DecisionKind.PROMOTION_DECISION,
            allowed=bar is None,
            as_of=event.occurred_at,
            at=at,
            sources=[event],
            facts={"application_date": day},
            explanation_zh=f"{staff_id}于{day}申请提职晋级，{outcome[0]}",
            explanation_en=f"{staff_id} applied on {day}: {outcome[1]}",
        )

    def rectification(self, at: datetime, _: Any) -> None:
        event = self.fact("rectification_status", at)
        assert isinstance(event, RectificationStatusReceived)  # noqa: S101 (the catalogue's class)
        lead = rectification_lead(event, self.book)
        if lead is None:
            return
        self.open(Opening.of_lead(lead), at)
        department, occurred = event.department, event.occurred_at
        self.decision(
            "R-RECTIFY",
            f"status:{event.event_id}",
            (SubjectKind.DEPARTMENT, department),
            kind=DecisionKind.NOTICE,
            as_of=occurred,
            at=at,
            sources=[event],
            facts={"item": event.item, "status": event.status},
            explanation_zh=f"{department}整改事项“{event.item}”{event.status.label_zh}，通报批评。",
            explanation_en=f"Department {department}: {event.item!r} was {event.status}; a notice.",
        )
        failures = self.failed_rectifications.setdefault(department, [])
        failures.append(occurred)
        window = timedelta(days=self.book.rectify.window_days)
        within = [moment for moment in failures if occurred - moment <= window]
        if len(within) == self.book.rectify.report_upward_at:
            self.decision(
                "R-RECTIFY",
                f"status:{event.event_id}:upward",
                (SubjectKind.DEPARTMENT, department),
                kind=DecisionKind.ESCALATION,
                escalate_to=EscalationTarget.SUPERIOR_HEALTH_AUTHORITY,
                as_of=occurred,
                at=at,
                sources=[event],
                facts={"failures": len(within)},
                explanation_zh=f"{department}一年内整改不到位{len(within)}次，上报上级卫生行政部门。",
                explanation_en=f"Department {department} failed {len(within)} rectifications.",
            )

    def surrender(self, at: datetime, _: Any) -> None:
        given = {}
        if self.rng.random() < HOSPITAL.late_surrender_share:
            given["received_on"] = at.astimezone(TZ).date() - timedelta(
                days=self.rng.randint(8, 30)
            )
        event = self.fact("red_envelope_surrender", at, **given)
        assert isinstance(event, RedEnvelopeSurrenderReceived)  # noqa: S101 (the catalogue's class)
        lead = late_surrender_lead(event, self.book)
        if lead is not None:
            self.open(Opening.of_lead(lead), at)
        elif surrendered_in_time(event, self.book):
            self.decision(
                "R-SURRENDER",
                f"surrender:{event.event_id}",
                (SubjectKind.STAFF, event.staff_id),
                kind=DecisionKind.SURRENDER_RECORDED,
                as_of=event.occurred_at,
                at=at,
                sources=[event],
                facts={"amount_cny": event.amount_cny, "received_on": event.received_on},
                explanation_zh=f"{event.staff_id}主动上缴红包{event.amount_cny}元。",
                explanation_en=f"{event.staff_id} handed in {event.amount_cny} yuan.",
            )

    def session(self, at: datetime, planned: tuple[str, datetime]) -> None:
        department, held = planned
        self.fact("training_held", at, occurred_at=held, department=department, held_on=held.date())

    def kpi(self, at: datetime, what: tuple[KpiMetric, str, str]) -> None:
        metric, scope, period = what
        low, high = HOSPITAL.kpi_values.get(str(metric), HOSPITAL.kpi_values["otherwise"])
        value = Decimal(f"{self.rng.uniform(low, high):.4f}")
        self.fact("kpi_observation", at, metric=metric, scope=scope, period=period, value=value)

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
        rng, plan = self.rng, HOSPITAL.cases
        opened, deadline = case.opened_at, case.deadline
        span = (deadline - opened).total_seconds()
        if rng.random() < plan.started:
            self.push(
                opened + timedelta(seconds=span * rng.uniform(0.02, 0.3)), "start", case.case_id
            )
        draw = rng.random()
        found: datetime | None = None
        if draw < plan.found_on_time:
            found = opened + timedelta(seconds=span * rng.uniform(0.35, 0.98))
        elif draw < plan.found_on_time + plan.found_late:
            found = deadline + timedelta(seconds=span * rng.uniform(0.05, 1.5))
        if found is not None:
            self.push(found, "finding", case.case_id)
            if rng.random() < plan.closed_after_finding:
                self.push(found + timedelta(days=rng.uniform(1, 10)), "close", case.case_id)
        leadership = deadline + timedelta(days=self.book.every_complaint.leadership_after_days)
        for target, due in (
            (EscalationTarget.DEPARTMENT_HEAD, deadline),
            (EscalationTarget.LEADERSHIP_GROUP, leadership),
        ):
            if found is None or found > due:
                self.push(due, "escalate", (case.case_id, target))

    def action(self, at: datetime, case_id: str, action: CaseActionKind) -> None:
        reason = "调查结束，结案。" if action is CaseActionKind.CLOSE else None
        event = self.fact(
            "case_action",
            at,
            case_id=case_id,
            action=action,
            actor_staff_id=HOSPITAL.officer,
            reason=reason,
        )
        assert isinstance(event, CaseActionReceived)  # noqa: S101 (the catalogue's class)
        self.revise(
            take_action(self.cases[case_id], event, routing(), now=at + timedelta(seconds=2))
        )

    def finding(self, at: datetime, case_id: str) -> None:
        case, plan, rng = self.cases[case_id], HOSPITAL.cases, self.rng
        chance = plan.substantiated_without_category
        if case.category is not None:
            chance = plan.substantiated_by_category.get(case.category, plan.substantiated)
        substantiated = rng.random() < chance
        categories = (case.category or ComplaintCategory.KICKBACK,) if substantiated else ()
        company = case.company_code if substantiated else None
        kickback = ComplaintCategory.KICKBACK in categories
        event = self.fact(
            "investigation_finding",
            at,
            case_id=case_id,
            substantiated=substantiated,
            confirmed_categories=categories,
            staff_ids=(case.accused_staff_id,) if case.accused_staff_id else (),
            confirmed_amount_cny=Decimal(rng.randint(5, 600) * 100) if kickback else None,
            company_code=company,
            company_name=None if company is None else f"{company} 医药有限公司",
            summary="经调查核实。" if substantiated else "经调查未查实。",
        )
        assert isinstance(event, InvestigationFindingReceived)  # noqa: S101 (the catalogue's class)
        self.revise(record_finding(case, event, now=at + timedelta(seconds=2)))
        if substantiated:
            self.sanction(case, event, at)

    def sanction(
        self, case: CaseUpdated, finding: InvestigationFindingReceived, at: datetime
    ) -> None:
        """What escalation's staff and company rules decide on a substantiated finding."""
        start = finding.occurred_at.astimezone(TZ).date()
        until = start.replace(year=start.year + 2) - timedelta(days=1)
        category, staff_id = finding.confirmed_categories[0], case.accused_staff_id
        common: dict[str, Any] = {"case_id": case.case_id, "as_of": finding.occurred_at, "at": at}
        common["sources"] = [finding]
        if staff_id is not None and category in self.book.promotion_bar.categories:
            self.bars.setdefault(staff_id, []).append((start, until))
            self.decision(
                "R-PROMO-2Y",
                f"case:{case.case_id}",
                (SubjectKind.STAFF, staff_id),
                kind=DecisionKind.PROMOTION_BAR,
                in_force_from=start,
                in_force_until=until,
                facts={"finding_date": start, "categories": category, "years": 2},
                explanation_zh=f"{staff_id}被查实{category.label_zh}，两年内不得提职晋级。",
                explanation_en=f"{staff_id}: {category} found; no promotion until {until}.",
                **common,
            )
        if staff_id is not None and category in (
            ComplaintCategory.KICKBACK,
            ComplaintCategory.RED_ENVELOPE,
        ):
            self.decision(
                "R-KICKBACK",
                f"case:{case.case_id}",
                (SubjectKind.STAFF, staff_id),
                kind=DecisionKind.MEASURE,
                measure=self.rng.choice(list(Measure)),
                facts={"amount_cny": finding.confirmed_amount_cny or "0"},
                explanation_zh=f"案件{case.case_id}查实{category.label_zh}，对{staff_id}予以处理。",
                explanation_en=f"{category} found: measures against {staff_id}.",
                **common,
            )
        if finding.company_code is not None:
            self.decision(
                "R-VENDOR-CUTOFF",
                f"case:{case.case_id}",
                (SubjectKind.COMPANY, finding.company_code),
                kind=DecisionKind.VENDOR_CUTOFF,
                in_force_from=start,
                in_force_until=until,
                facts={"categories": category, "years": 2},
                explanation_zh=f"查实{finding.company_code}利益输送，切断业务往来至{until}。",
                explanation_en=f"{finding.company_code} cut off until {until}.",
                **common,
            )

    def escalate(self, at: datetime, what: tuple[str, EscalationTarget]) -> None:
        case_id, target = what
        case = self.cases[case_id]
        if any(
            entry.change is CaseChange.FINDING_RECORDED and entry.at <= at for entry in case.history
        ):
            return
        self.decision(
            "R-EVERY-COMPLAINT",
            f"case:{case_id}:{target}",
            (SubjectKind.CASE, case_id),
            kind=DecisionKind.ESCALATION,
            escalate_to=target,
            case_id=case_id,
            as_of=at,
            at=at,
            facts={"deadline": case.deadline.isoformat(), "due": at.isoformat()},
            explanation_zh=f"凡诉必查：至{at:%Y-%m-%d %H:%M}仍无调查结论，上报{target.label_zh}。",
            explanation_en=f"No finding by {at:%Y-%m-%d %H:%M}: escalated to {target}.",
        )
