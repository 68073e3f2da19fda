"""Reporting at a year's scale: how long the monthly report, the dashboard and the registers take
to answer for a 3,000-bed hospital's year (about 2 million events), and how long a rebuild from
the topics takes.

    .venv/bin/python -m bench.reporting_queries                      # a full year: ~2M events
    .venv/bin/python -m bench.reporting_queries --scale 0.01         # a quick run
    .venv/bin/python -m bench.reporting_queries --rebuild-scale 0.01 # a larger rebuild

Needs nothing running: the script wipes, starts and finally stops a Kafka and FerretDB of its
own (deploy/local/runtime.sh with QINGLIAN_LOCAL_DIR=.local/bench-reporting and ports 49292,
49293, 47228, 48298, PostgreSQL on 45232, all on 127.0.0.1), so a `make up` system, a test run
or another benchmark is left alone. Those ports lie in Linux's ephemeral range (32768-60999):
should an outgoing connection hold one for a moment, the runtime refuses to start; the script
tries again.

The year: events generated day by day over the 365 days before now, in the order intake would
publish them (by time received): satisfaction ratings and sales-rep visits above all, drug
rankings, complaints, promotion applications, rectification statuses, red-envelope surrenders,
study sessions (2-4 per department and month), KPI observations (every metric for the hospital
and each department, monthly and yearly), dead letters. Escalation's lead rules
(services/escalation/rules/leads.py) turn ratings, visits, rectifications and late surrenders
into leads; the router's own functions (services/router/domain.py) open, link, start, record
findings on and close the cases, each change a revision on the cases topic, the investigation
findings and the conduct office's case actions being fact events too. Decisions are made with
escalation's ``decide`` in the shapes its rules give them (promotion decisions and bars,
kickback measures, vendor cut-offs, overdue-case escalations, removal alerts, surrenders
recorded, notices). --scale multiplies every volume.

Every record of the year (fact events, dead letters, case revisions, decisions) goes, in
order, through reporting's own ``Ingest`` (the code the live service and the rebuild run) into
``FoldedReports``, which keeps in memory what ``ReportRepository``'s writes would leave (the
rebuild's fold); fact records get the partition Kafka's default partitioner gives their key
and the next offset there.
Phases, each timed:

1. ``queries`` (at --scale): the documents the fold holds, written into FerretDB one insert
   at a time (FerretDB stalls on large bulk writes; an insert by ``_id`` needs no lookup, where
   the repository's conditional upserts scan the whole collection on FerretDB: see
   ``write_costs``). Then ``python -m services.reporting`` on that database (HTTP on
   127.0.0.1:9100-9199; the open and overdue case gauges refreshed once at start, not again
   during the timings) and, with a conduct-office token (ReportTokens), the monthly report
   (hospital-wide, and the department with most cases) for the last full month, the dashboard
   and the four registers, each --runs times after a warm-up round, round-robin. Then the same
   reads and computations in this process, one by one, to show where the time goes; then what
   each repository write costs against the full-size store (``write_costs``: a few probe
   writes, after the queries) and whether FerretDB pushes each filter down to SQLite.
2. ``rebuild`` (at --rebuild-scale): a smaller year published to the real topics with aiokafka
   (acks=all, keyed as intake, escalation and the router key them), then
   ``python -m services.reporting.rebuild --into …``. The same year is also written as in phase
   1 into another database and the two compared document by document: the check that phase 1
   builds what ingest builds on FerretDB. Records per second; the full year extrapolated from
   them (labelled EXTRAPOLATION): linearly, and from the write costs measured at full size.

Prints JSON. Kafka, FerretDB, the service and this script share the machine's cores with
whatever else runs; the load averages are in ``machine``.
"""

import argparse
import asyncio
import heapq
import itertools
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from pymongo.asynchronous.database import AsyncDatabase

from bench._runtime import Deadline, clean_env, cpu_seconds, free_port, machine
from schemas import topics
from schemas.base import HOSPITAL_TIME_ZONE, Event, derive_event_id
from schemas.case import CaseChange, CaseUpdated
from schemas.case_action import CaseActionKind, CaseActionReceived
from schemas.catalogue import BY_TYPE, CATALOGUE, EventKind
from schemas.complaint import ComplaintCategory, ComplaintChannel, ComplaintReceived
from schemas.dead_letter import DeadLetter, Problem
from schemas.decision import Decision, DecisionKind, EscalationTarget, Measure, SubjectKind
from schemas.finding import InvestigationFindingReceived
from schemas.kpi import KpiMetric
from schemas.prescription import ItemKind
from schemas.rectification import RectificationStatus, RectificationStatusReceived
from schemas.satisfaction import SatisfactionReceived, Touchpoint
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.training import TrainingKind
from schemas.visitor_log import PlaceKind, VisitorLogReceived
from services.common.broker import ensure_topics
from services.common.consuming import Received
from services.common.departments import DepartmentCatalogue
from services.common.documents import MemoryDocuments, MongoDocuments
from services.common.store import Document, connect
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
from services.reporting.access import Role, grants, report_tokens
from services.reporting.facts import report_month
from services.reporting.ingest import DEAD_LETTER, REPORT_TOPICS, Ingest
from services.reporting.kpi import KpiTargets
from services.reporting.monthly import MEASURE_KINDS, MonthData, monthly_report
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportStore
from services.reporting.study import StudyRule
from services.router.domain import (
    Opening,
    is_related,
    link,
    open_case,
    record_finding,
    take_action,
)
from services.router.routing import Routing
from services.router.settings import RouterSettings

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = ROOT / ".local" / "bench-reporting"
KAFKA_PORT, KAFKA_CONTROLLER_PORT = 49292, 49293
FERRETDB_PORT, FERRETDB_DEBUG_PORT = 47228, 48298
POSTGRES_PORT = 45232
RUNTIME_ENV = {
    "QINGLIAN_LOCAL_DIR": str(LOCAL_DIR),
    "QINGLIAN_KAFKA_PORT": str(KAFKA_PORT),
    "QINGLIAN_KAFKA_CONTROLLER_PORT": str(KAFKA_CONTROLLER_PORT),
    "QINGLIAN_FERRETDB_PORT": str(FERRETDB_PORT),
    "QINGLIAN_FERRETDB_DEBUG_PORT": str(FERRETDB_DEBUG_PORT),
    "QINGLIAN_POSTGRES_PORT": str(POSTGRES_PORT),
}
BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"
MONGO_URL = f"mongodb://127.0.0.1:{FERRETDB_PORT}/"
SERVICE_PORTS = range(9100, 9200)
JSON_HEADERS = [("content-type", b"application/json")]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KIND_BY_CLASS: dict[type[Event], EventKind] = {kind.event: kind for kind in CATALOGUE}
TZ = HOSPITAL_TIME_ZONE

# --- The hospital's year, at scale 1 ------------------------------------------------------------

ANNUAL = {
    "satisfaction": 1_500_000,
    "visitor_log": 380_000,
    "prescription_ranking": 60_000,
    "complaint": 12_000,
    "promotion_application": 1_200,
    "rectification_status": 1_200,
    "red_envelope_surrender": 600,
}
"""Events a year that arrive at their own pace. Study sessions, KPI observations, findings and
case actions follow from the calendar and the cases."""
DEAD_LETTERS_A_YEAR = 100
VISIT_BREACH_SHARE = 0.003
"""Share of rep visits that break the visiting rules (and so open a case)."""
STAFF_BY_KIND = {"clinical": 550, "auxiliary": 250, "functional": 100}
DEPARTMENT_WEIGHT = {"clinical": 6, "auxiliary": 3, "functional": 1}
COMPANIES = 300
SESSIONS_A_MONTH = (2, 3, 3, 4)
KPI_REOBSERVED = 0.1
SOURCE_SYSTEM = {
    "complaint": "portal",
    "visitor_log": "visitor-desk",
    "satisfaction": "satisfaction-kiosk",
    "investigation_finding": "discipline",
    "promotion_application": "hr",
    "red_envelope_surrender": "finance",
    "prescription_ranking": "pharmacy",
    "training_held": "hr-training",
    "kpi_observation": "quality",
    "rectification_status": "leadership",
    "case_action": "conduct-office",
}
TOUCHPOINTS = list(Touchpoint)
SCORES, SCORE_WEIGHTS = (5, 4, 3, 2, 1), (7600, 1850, 505, 30, 15)
"""About 0.45 % of ratings are low (2 or less): each is a lead (R-SATISFACTION-LEAD)."""
LOW_COMMENTS = ("等候时间太长。", "态度不好，不解释。", "收费不清楚。")
PRAISE = ("医生很耐心。", "护士服务周到。", "流程很顺畅。")
KEYWORD_COMMENTS = ("医生暗示要送红包。", "挂号有黄牛收加号费。", "医生说药品有提成。")
KEYWORD_COMMENT_SHARE = 0.00005
CATEGORY_WEIGHTS = {
    ComplaintCategory.ATTITUDE: 30,
    ComplaintCategory.RED_ENVELOPE: 15,
    ComplaintCategory.KICKBACK: 12,
    ComplaintCategory.UNREASONABLE_TEST: 10,
    ComplaintCategory.DUPLICATE_TEST: 8,
    ComplaintCategory.OUTSIDE_PHARMACY: 8,
    ComplaintCategory.APPOINTMENT_SCALPING: 6,
    ComplaintCategory.PROCUREMENT: 3,
    ComplaintCategory.IMPROPER_RELATIONSHIP: 2,
    ComplaintCategory.DRUNK_DRIVING: 1,
    ComplaintCategory.GAMBLING: 1,
    ComplaintCategory.OTHER: 4,
}
CHANNELS = [c for c in ComplaintChannel if c is not ComplaintChannel.SATISFACTION_LEAD]
DESCRIPTIONS = (
    "医生收取医药代表回扣。",
    "手术前家属被暗示送红包。",
    "门诊医生态度恶劣，拒绝解释检查结果。",
    "医生建议到院外药店购买指定药品。",
    "同一检查一周内重复开具。",
)
STATUS_WEIGHTS = {
    RectificationStatus.DONE: 55,
    RectificationStatus.PERFUNCTORY: 20,
    RectificationStatus.INEFFECTIVE: 15,
    RectificationStatus.REFUSED: 10,
}
RECTIFICATION_ITEMS = ("处方点评整改", "医药代表接待登记", "红包拒收承诺书", "检查合理性自查")
ITEMS = (
    ("D-ATORVA", "阿托伐他汀钙片", ItemKind.DRUG),
    ("D-OLANZ", "奥氮平片", ItemKind.DRUG),
    ("D-QUETI", "富马酸喹硫平片", ItemKind.DRUG),
    ("C-STENT", "冠脉支架", ItemKind.CONSUMABLE),
    ("C-CATH", "一次性导管", ItemKind.CONSUMABLE),
)
BENEFIT_TRANSFER = {ComplaintCategory.KICKBACK, ComplaintCategory.RED_ENVELOPE}
SUBSTANTIATED = {ComplaintCategory.ATTITUDE: 0.05}
SUBSTANTIATED_OTHERWISE = 0.15
FINDING_ON_TIME, FINDING_LATE = 0.96, 0.03
"""Cases with their finding before the deadline; after it; the rest never get one."""
OFFICER = "S09001"


def weighted(rng: random.Random, weights: dict[T, int]) -> T:
    return rng.choices(list(weights), list(weights.values()))[0]


def routing() -> Routing:
    settings = RouterSettings()
    return Routing.load(settings.departments, settings.routing_table)


class Year:
    """A year's records as they reach reporting: applied in order, a batch at a time, by
    reporting's own Ingest (services/reporting/ingest.py) to a store in memory, so the store
    holds what ingest would leave in MongoDB; and, for publishing, every record (topic, key,
    value). Fact records and dead letters get the partition Kafka's default partitioner gives
    their key and the next offset there."""

    def __init__(self, *, partitions: int, keep_records: bool, base: dict[Any, int]) -> None:
        self.partitions = partitions
        self.next_offset: dict[tuple[str, int], int] = {}
        self.base = base
        self.store = ReportStore(MemoryDocuments())
        self.ingest = Ingest(self.store, departments=routing().catalogue)
        self.loop = asyncio.new_event_loop()
        self.pending: dict[str, list[Received[Any]]] = {}
        self._kept: dict[str, dict[str, Any]] | None = None
        self.new_cases = 0
        self.events_by_type: Counter[str] = Counter()
        self.decisions_by_kind: Counter[str] = Counter()
        self.records_by_topic: Counter[str] = Counter()
        self.records: list[tuple[str, bytes, bytes]] | None = [] if keep_records else None
        self.generated_cpu_s = 0.0
        self.sample: dict[str, Any] = {}
        """One record of each kind, for the write-cost probes."""

    def _position(self, topic: str, key: bytes) -> tuple[str, int, int]:
        """Where Kafka's default partitioner puts a keyed record, and its offset there."""
        partition = (murmur2(key) & 0x7FFFFFFF) % self.partitions
        offset = self.next_offset.get((topic, partition), self.base.get((topic, partition), 0))
        self.next_offset[(topic, partition)] = offset + 1
        return topic, partition, offset

    def _record(self, topic: str, key: bytes, value: Callable[[], str]) -> None:
        self.records_by_topic[topic] += 1
        if self.records is not None:
            self.records.append((topic, key, value().encode()))

    def _apply(self, handler: str, value: Any, position: tuple[str, int, int]) -> None:
        """Queue a record for ``Ingest.<handler>``; a full queue is applied as one batch."""
        queued = self.pending.setdefault(handler, [])
        queued.append(Received(value, *position))
        if len(queued) >= BATCH:
            self.flush(handler)

    def flush(self, *handlers: str) -> None:
        for handler in handlers or tuple(self.pending):
            batch = self.pending.pop(handler, [])
            if batch:
                self.loop.run_until_complete(getattr(self.ingest, handler)(batch))

    def fact(self, event: Event) -> None:
        kind = KIND_BY_CLASS[type(event)]
        key = kind.key(event)
        position = self._position(kind.topic, key)
        self._apply("facts", event, position)
        self.events_by_type[kind.event_type] += 1
        self.sample[kind.event_type] = (event, position)
        self._record(kind.topic, key, event.model_dump_json)

    def dead_letter(self, letter: DeadLetter) -> None:
        key = letter.dead_letter_id.bytes
        self._apply("dead_letters", letter, self._position(topics.DEAD_LETTERS, key))
        self.events_by_type[DEAD_LETTER] += 1
        self._record(topics.DEAD_LETTERS, key, letter.model_dump_json)

    def case(self, case: CaseUpdated) -> None:
        self.new_cases += case.revision == 1
        key = case.case_id.encode()
        self._apply("cases", case, self._position(topics.CASES, key))
        self.sample["case"] = case
        self._record(topics.CASES, key, case.model_dump_json)

    def decision(self, decision: Decision) -> None:
        key = decision.subject_id.encode()
        self._apply("decisions", decision, self._position(topics.DECISIONS, key))
        self.decisions_by_kind[str(decision.kind)] += 1
        self.sample["decision"] = decision
        self._record(topics.DECISIONS, key, decision.model_dump_json)

    def kept(self) -> dict[str, dict[str, Any]]:
        """What ingest left in the memory store, by the collection it goes to. Read once the
        year is generated (outside any running event loop), and remembered."""
        if self._kept is None:
            self.flush()
            self._kept = {
                name: self.loop.run_until_complete(records.find())
                for name, records in _targets(self.store).items()
            }
        return self._kept

    def busiest_department(self, month: str) -> str:
        cases = self.kept()["reporting_case_facts"].values()
        counts = Counter(case.department for case in cases if case.month == month)
        return counts.most_common(1)[0][0] if counts else sorted(routing().catalogue.departments)[0]

    def summary(self) -> dict[str, Any]:
        kept = self.kept()
        cases = kept["reporting_case_facts"].values()
        return {
            "events": sum(self.events_by_type.values()),
            "events_by_type": dict(self.events_by_type.most_common()),
            "cases": len(cases),
            "cases_by_kind": dict(Counter(str(case.kind) for case in cases).most_common()),
            "case_revisions": self.records_by_topic[topics.CASES],
            "decisions": sum(self.decisions_by_kind.values()),
            "decisions_by_kind": dict(self.decisions_by_kind.most_common()),
            "records_on_topics": sum(self.records_by_topic.values()),
            "documents": {name: len(documents) for name, documents in kept.items()},
        }


BATCH = 5000
"""Records applied at once, as a rebuild applies them (services/reporting/rebuild.py)."""


@dataclass
class World:
    """Staff, companies and departments, and the stream of a year up to ``now``."""

    rng: random.Random
    now: datetime
    scale: float
    routing: Routing
    book: RuleBook
    year: Year
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    serial: Iterator[int] = field(default_factory=itertools.count)
    sequence: Iterator[int] = field(default_factory=itertools.count)
    heap: list[tuple[datetime, int, str, Any]] = field(default_factory=list)
    staff: dict[str, list[str]] = field(default_factory=dict)
    all_staff: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    department_weights: list[int] = field(default_factory=list)
    companies: list[str] = field(default_factory=list)
    cases: dict[str, CaseUpdated] = field(default_factory=dict)
    related: dict[str, str] = field(default_factory=dict)
    bars: dict[str, list[tuple[date, date]]] = field(default_factory=dict)
    failed_rectifications: dict[str, list[datetime]] = field(default_factory=dict)
    begin: datetime | None = None
    _handlers: dict[str, Callable[[datetime, Any], None]] = field(default_factory=dict)
    """The first moment of the year; nothing earlier is generated."""

    def __post_init__(self) -> None:
        catalogue = self.routing.catalogue
        serial = itertools.count(1)
        for code, entry in sorted(catalogue.departments.items()):
            size = STAFF_BY_KIND[str(entry.kind)]
            pool = [entry.head_staff_id] + [f"S{next(serial):05d}" for _ in range(size - 1)]
            self.staff[code] = pool
            self.departments.append(code)
            self.department_weights.append(DEPARTMENT_WEIGHT[str(entry.kind)])
        self.all_staff = [s for pool in self.staff.values() for s in pool]
        self.companies = [f"C{n:04d}" for n in range(COMPANIES)]

    # --- Helpers --------------------------------------------------------------------------

    def uniform(self, start: datetime, seconds: float) -> datetime:
        return start + timedelta(seconds=self.rng.uniform(0, seconds))

    def how_many(self, expected: float) -> int:
        whole = int(expected)
        return whole + (self.rng.random() < expected - whole)

    def department(self) -> str:
        return self.rng.choices(self.departments, self.department_weights)[0]

    def push(self, at: datetime, what: str, data: Any = None) -> None:
        if at <= self.now and (self.begin is None or at >= self.begin):
            heapq.heappush(self.heap, (at, next(self.sequence), what, data))

    def make(
        self, event_type: str, received_at: datetime, occurred_at: datetime, **facts: Any
    ) -> Event:
        """The event intake publishes for these facts (Event.accept without the submission)."""
        system, ref = SOURCE_SYSTEM[event_type], f"Y-{self.run}-{next(self.serial)}"
        return BY_TYPE[event_type].event.model_validate(
            {
                **facts,
                "event_id": derive_event_id(system, ref),
                "source_system": system,
                "source_ref": ref,
                "occurred_at": occurred_at,
                "received_at": received_at,
            }
        )

    def decision(
        self,
        rule_id: str,
        key: str,
        subject: tuple[SubjectKind, str],
        *,
        as_of: datetime,
        at: datetime,
        sources: list[Event],
        facts: dict[str, object],
        zh: str,
        en: str,
        **fields: Any,
    ) -> None:
        """A decision as escalation's rules make them (conduct.decide), published."""
        file = ConductFile(subject_kind=subject[0], subject_id=subject[1])
        decision = decide(
            self.book,
            rule_id=rule_id,
            key=key,
            subject=file,
            as_of=as_of,
            sources=sources,
            facts=facts,
            explanation_zh=zh,
            explanation_en=en,
            now=at + timedelta(seconds=3),
            **fields,
        )
        self.year.decision(decision)

    # --- The year ---------------------------------------------------------------------------

    def generate(self, progress: Callable[[str], None]) -> None:
        """Every day of the 365 before ``now``, in the order things are received."""
        first = self.now.astimezone(TZ).date() - timedelta(days=365)
        self.begin = datetime.combine(first, clock_time.min, TZ)
        for index in range(366):
            day = first + timedelta(days=index)
            start = datetime.combine(day, clock_time.min, TZ)
            end = start + timedelta(days=1)
            if index == 0 or day.day == 1:
                self.plan_month(day)
            for event_type, per_year in ANNUAL.items():
                if event_type == "visitor_log":
                    continue
                for _ in range(self.how_many(per_year * self.scale / 365)):
                    self.push(self.uniform(start, 86400), event_type)
            weekday = day.isoweekday() <= 5
            visits = ANNUAL["visitor_log"] * self.scale / 365
            compliant = visits * 7 / 5 * (1 - VISIT_BREACH_SHARE) if weekday else 0.0
            for _ in range(self.how_many(compliant)):
                self.plan_visit(start, None)
            for _ in range(self.how_many(visits * VISIT_BREACH_SHARE)):
                self.plan_visit(start, self.rng.choice(("place", "hour", "appointment")))
            for _ in range(self.how_many(DEAD_LETTERS_A_YEAR * self.scale / 365)):
                self.push(self.uniform(start, 86400), "dead_letter")
            while self.heap and self.heap[0][0] < end:
                at, _, what, data = heapq.heappop(self.heap)
                self.handle(at, what, data)
            if index % 30 == 0:
                progress(f"{day}: {sum(self.year.events_by_type.values())} events")

    def plan_month(self, day: date) -> None:
        """Study sessions of each department in this month; KPI observations of last month
        (and, in January, of last year)."""
        rng, keep = self.rng, min(1.0, self.scale)
        first = day.replace(day=1)
        days = ((first + timedelta(days=32)).replace(day=1) - first).days
        for department in self.departments:
            for _ in range(rng.choice(SESSIONS_A_MONTH)):
                if rng.random() < keep:
                    held = datetime.combine(
                        first + timedelta(days=rng.randrange(days)), clock_time(15), TZ
                    )
                    received = held + timedelta(hours=rng.uniform(2, 30))
                    self.push(received, "session", (department, held))
        last_month = (first - timedelta(days=1)).strftime("%Y-%m")
        periods = [last_month] + ([str(first.year - 1)] if first.month == 1 else [])
        observed = datetime.combine(first + timedelta(days=rng.randrange(2, 8)), clock_time(10), TZ)
        for period in periods:
            for metric in KpiMetric:
                for scope in ["hospital", *self.departments]:
                    if rng.random() < keep:
                        at = self.uniform(observed, 3600)
                        self.push(at, "kpi", (metric, scope, period))
                        if rng.random() < KPI_REOBSERVED:
                            later = at + timedelta(days=rng.uniform(1, 5))
                            self.push(later, "kpi", (metric, scope, period))

    def handle(self, at: datetime, what: str, data: Any) -> None:
        self.handlers[what](at, data)

    @property
    def handlers(self) -> dict[str, Callable[[datetime, Any], None]]:
        if self._handlers:
            return self._handlers
        self._handlers = {
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
            "start": self.start_investigation,
            "finding": self.finding,
            "close": self.close,
            "escalate": self.escalate,
        }
        return self._handlers

    # --- Facts that arrive at their own pace -----------------------------------------------

    def rating(self, at: datetime, _: Any) -> None:
        rng = self.rng
        department = self.department()
        score = rng.choices(SCORES, SCORE_WEIGHTS)[0]
        comment = None
        if rng.random() < KEYWORD_COMMENT_SHARE:
            comment = rng.choice(KEYWORD_COMMENTS)
        elif score <= 2 and rng.random() < 0.6:
            comment = rng.choice(LOW_COMMENTS)
        elif rng.random() < 0.03:
            comment = rng.choice(PRAISE)
        event = self.make(
            "satisfaction",
            at,
            at - timedelta(seconds=rng.uniform(0, 600)),
            touchpoint=rng.choice(TOUCHPOINTS),
            department=department,
            staff_id=rng.choice(self.staff[department]) if rng.random() < 0.7 else None,
            score=score,
            comment=comment,
        )
        self.year.fact(event)
        if not isinstance(event, SatisfactionReceived):
            raise TypeError(event)
        lead = satisfaction_lead(event, self.book)
        if lead is not None:
            self.open(Opening.of_lead(lead), at)

    def plan_visit(self, day_start: datetime, breach: str | None) -> None:
        """A rep visit, on a weekday afternoon in a reception or meeting room with an
        appointment, unless it breaks one of those rules; received when the desk logs it."""
        rng = self.rng
        started = day_start + timedelta(hours=14, minutes=rng.uniform(0, 150))
        if breach == "hour":
            started = day_start + timedelta(hours=rng.uniform(7, 20))
        ended = started + timedelta(minutes=rng.uniform(10, 40))
        received = ended + timedelta(minutes=rng.uniform(1, 60))
        self.push(received, "visit", (started, ended, breach))

    def visit(self, received: datetime, planned: tuple[datetime, datetime, str | None]) -> None:
        rng = self.rng
        started, ended, breach = planned
        company = self.companies[min(int(rng.paretovariate(1.2)) - 1, COMPANIES - 1)]
        department = self.department()
        place = rng.choice((PlaceKind.RECEPTION_ROOM, PlaceKind.MEETING_ROOM))
        if breach == "place":
            place = rng.choice(list(PlaceKind))
        appointment = None if breach == "appointment" else f"APT-{next(self.serial)}"
        event = self.make(
            "visitor_log",
            received,
            started,
            rep_id=f"REP-{company}-{rng.randrange(5)}",
            rep_name=rng.choice(("张伟", "王芳", "李娜", "刘洋")),
            company_code=company,
            company_name=f"{company} 医药有限公司",
            host_staff_id=rng.choice(self.staff[department]) if rng.random() < 0.95 else None,
            department=department,
            place_code=f"P{rng.randrange(40):03d}",
            place_kind=place,
            started_at=started,
            ended_at=ended,
            appointment_id=appointment,
        )
        self.year.fact(event)
        if not isinstance(event, VisitorLogReceived):
            raise TypeError(event)
        lead = visit_lead(event, self.book)
        if lead is not None:
            self.open(Opening.of_lead(lead), received)
        if place in self.book.rep_visit.clinical_place_kinds:
            self.decision(
                "R-REP-VISIT",
                f"visit:{event.event_id}",
                (SubjectKind.COMPANY, company),
                kind=DecisionKind.REMOVAL_ALERT,
                as_of=started,
                at=received,
                sources=[event],
                facts={"place": event.place_code, "place_kind": place},
                zh=f"医药代表出现在{place.label_zh}{event.place_code}，与诊疗活动无关，立即驱离。",
                en=f"Rep of {company} in a {place} ({event.place_code}): remove at once.",
            )

    def ranking(self, at: datetime, _: Any) -> None:
        rng = self.rng
        department = self.department()
        staff_id = rng.choice(self.staff[department])
        code, name, kind = rng.choice(ITEMS)
        justified = rng.random() < 0.3
        rank = rng.randint(1, 200)
        event = self.make(
            "prescription_ranking",
            at,
            at - timedelta(hours=rng.uniform(0, 12)),
            staff_id=staff_id,
            department=department,
            item_code=code,
            item_name=name,
            item_kind=kind,
            month=report_month(at.replace(day=1) - timedelta(days=1)),
            rank=rank,
            justified=justified,
            justification="危重患者集中收治。" if justified else None,
        )
        self.year.fact(event)
        if rank == 1 and not justified:
            self.decision(
                "R-PRESCRIBE",
                f"ranking:{event.event_id}",
                (SubjectKind.STAFF, staff_id),
                kind=DecisionKind.MEASURE,
                measure=Measure.INTERVIEW,
                as_of=event.occurred_at,
                at=at,
                sources=[event],
                facts={"item": code, "rank": rank},
                zh=f"{staff_id}{name}用量排名第一且无合理说明，约谈。",
                en=f"{staff_id} ranks first for {code} without justification: interview.",
            )

    def complaint(self, at: datetime, _: Any) -> None:
        rng = self.rng
        department = self.department()
        category = weighted(rng, CATEGORY_WEIGHTS)
        event = self.make(
            "complaint",
            at,
            at - timedelta(hours=rng.uniform(0, 240)),
            channel=rng.choice(CHANNELS),
            category=category,
            accused_staff_id=rng.choice(self.staff[department]) if rng.random() < 0.93 else None,
            accused_department=department,
            description=rng.choice(DESCRIPTIONS),
            amount_cny=f"{rng.randint(1, 200) * 100}.00" if category in BENEFIT_TRANSFER else None,
            anonymous=rng.random() < 0.3,
        )
        self.year.fact(event)
        if not isinstance(event, ComplaintReceived):
            raise TypeError(event)
        self.open(Opening.of_complaint(event), at)

    def application(self, at: datetime, _: Any) -> None:
        rng = self.rng
        staff_id = rng.choice(self.all_staff)
        application_id = f"HR-{self.run}-{next(self.serial)}"
        event = self.make(
            "promotion_application",
            at,
            at - timedelta(hours=rng.uniform(0, 48)),
            staff_id=staff_id,
            application_id=application_id,
            target_position=rng.choice(("主治医师", "副主任医师", "主任医师", "护士长")),
        )
        self.year.fact(event)
        day = event.occurred_at.astimezone(TZ).date()
        bar = max(
            (until for since, until in self.bars.get(staff_id, []) if since <= day <= until),
            default=None,
        )
        self.decision(
            "R-PROMO-2Y",
            f"application:{application_id}",
            (SubjectKind.STAFF, staff_id),
            kind=DecisionKind.PROMOTION_DECISION,
            allowed=bar is None,
            as_of=event.occurred_at,
            at=at,
            sources=[event],
            facts={"application_date": day},
            zh=f"{staff_id}于{day}申请提职晋级，" + ("准予。" if bar is None else f"禁止至{bar}。"),
            en=f"{staff_id} applied on {day}: "
            + ("allowed." if bar is None else f"barred to {bar}."),
        )

    def rectification(self, at: datetime, _: Any) -> None:
        rng = self.rng
        department = self.department()
        event = self.make(
            "rectification_status",
            at,
            at - timedelta(hours=rng.uniform(0, 24)),
            department=department,
            item=rng.choice(RECTIFICATION_ITEMS),
            status=weighted(rng, STATUS_WEIGHTS),
        )
        self.year.fact(event)
        if not isinstance(event, RectificationStatusReceived):
            raise TypeError(event)
        lead = rectification_lead(event, self.book)
        if lead is None:
            return
        self.open(Opening.of_lead(lead), at)
        self.decision(
            "R-RECTIFY",
            f"status:{event.event_id}",
            (SubjectKind.DEPARTMENT, department),
            kind=DecisionKind.NOTICE,
            as_of=event.occurred_at,
            at=at,
            sources=[event],
            facts={"item": event.item, "status": event.status},
            zh=f"{department}整改事项“{event.item}”{event.status.label_zh}，通报批评。",
            en=f"Department {department}: {event.item!r} was {event.status}; a notice.",
        )
        window = timedelta(days=self.book.rectify.window_days)
        failures = self.failed_rectifications.setdefault(department, [])
        failures.append(event.occurred_at)
        within = [moment for moment in failures if event.occurred_at - moment <= window]
        if len(within) == self.book.rectify.report_upward_at:
            self.decision(
                "R-RECTIFY",
                f"status:{event.event_id}:upward",
                (SubjectKind.DEPARTMENT, department),
                kind=DecisionKind.ESCALATION,
                escalate_to=EscalationTarget.SUPERIOR_HEALTH_AUTHORITY,
                as_of=event.occurred_at,
                at=at,
                sources=[event],
                facts={"failures": len(within)},
                zh=f"{department}一年内整改不到位{len(within)}次，上报上级卫生行政部门。",
                en=f"Department {department} failed {len(within)} rectifications: reported up.",
            )

    def surrender(self, at: datetime, _: Any) -> None:
        rng = self.rng
        staff_id = rng.choice(self.all_staff)
        local = at.astimezone(TZ)
        late = rng.random() < 0.1
        days = rng.randint(8, 30) if late else rng.randint(0, 7)
        event = self.make(
            "red_envelope_surrender",
            at,
            at - timedelta(hours=rng.uniform(0, 6)),
            staff_id=staff_id,
            amount_cny=f"{rng.randint(2, 50) * 100}.00",
            received_on=local.date() - timedelta(days=days),
            surrendered_on=local.date(),
        )
        self.year.fact(event)
        if not isinstance(event, RedEnvelopeSurrenderReceived):
            raise TypeError(event)
        lead = late_surrender_lead(event, self.book)
        if lead is not None:
            self.open(Opening.of_lead(lead), at)
        elif surrendered_in_time(event, self.book):
            self.decision(
                "R-SURRENDER",
                f"surrender:{event.event_id}",
                (SubjectKind.STAFF, staff_id),
                kind=DecisionKind.SURRENDER_RECORDED,
                as_of=event.occurred_at,
                at=at,
                sources=[event],
                facts={"amount_cny": event.amount_cny, "received_on": event.received_on},
                zh=f"{staff_id}主动上缴红包{event.amount_cny}元，登记为主动上缴。",
                en=f"{staff_id} handed in {event.amount_cny} yuan: recorded as surrendered.",
            )

    def session(self, at: datetime, planned: tuple[str, datetime]) -> None:
        rng = self.rng
        department, held = planned
        pool = self.staff[department]
        attendees = rng.sample(pool, int(len(pool) * rng.uniform(0.6, 0.98)))
        event = self.make(
            "training_held",
            at,
            held,
            department=department,
            held_on=held.date(),
            topic=rng.choice(("医德医风专题学习", "廉洁从业警示教育", "九项准则学习")),
            kind=TrainingKind.STUDY if rng.random() < 0.8 else TrainingKind.WARNING_EDUCATION,
            attendee_ids=tuple(attendees),
            headcount=len(pool),
        )
        self.year.fact(event)

    def kpi(self, at: datetime, what: tuple[KpiMetric, str, str]) -> None:
        metric, scope, period = what
        rng = self.rng
        if metric is KpiMetric.INPATIENT_WAIT_DAYS:
            value = rng.uniform(3, 14)
        elif "growth" in metric:
            value = rng.uniform(-0.1, 0.25)
        else:
            value = rng.uniform(0.7, 1.0)
        event = self.make(
            "kpi_observation",
            at,
            at - timedelta(minutes=rng.uniform(0, 60)),
            metric=metric,
            scope=scope,
            period=period,
            value=Decimal(f"{value:.4f}"),
        )
        self.year.fact(event)

    def dead_letter(self, at: datetime, _: Any) -> None:
        rng = self.rng
        self.year.dead_letter(
            DeadLetter(
                dead_letter_id=uuid.UUID(int=rng.getrandbits(128)),
                source_topic=topics.raw_topic("his"),
                source_partition=0,
                source_offset=next(self.serial),
                source_system="satisfaction-kiosk",
                reason="invalid",
                problems=(Problem(field="satisfaction.score", reason="less_than_equal"),),
                original_sealed=rng.randbytes(96),
                dead_lettered_at=at,
            )
        )

    # --- Cases: the router's functions, escalation's overdue-case rule ---------------------

    def open(self, opening: Opening, at: datetime) -> None:
        now = at + timedelta(seconds=2)
        key = opening.related_key
        known = self.related.get(key) if key is not None else None
        if known is not None and is_related(self.cases[known], opening, self.routing):
            self.revise(link(self.cases[known], opening, now=now))
            return
        case = open_case(opening, self.routing, now=now)
        if key is not None:
            self.related[key] = case.case_id
        self.revise(case)
        self.plan_case(case)

    def revise(self, case: CaseUpdated) -> None:
        self.cases[case.case_id] = case
        self.year.case(case)

    def plan_case(self, case: CaseUpdated) -> None:
        rng = self.rng
        opened, deadline = case.opened_at, case.deadline
        span = (deadline - opened).total_seconds()
        started = opened + timedelta(seconds=span * rng.uniform(0.02, 0.3))
        if rng.random() < 0.9:
            self.push(started, "start", case.case_id)
        draw = rng.random()
        found: datetime | None = None
        if draw < FINDING_ON_TIME:
            found = opened + timedelta(seconds=span * rng.uniform(0.35, 0.98))
        elif draw < FINDING_ON_TIME + FINDING_LATE:
            found = deadline + timedelta(seconds=span * rng.uniform(0.05, 1.5))
        if found is not None:
            self.push(found, "finding", case.case_id)
            if rng.random() < 0.9:
                self.push(found + timedelta(days=rng.uniform(1, 10)), "close", case.case_id)
        leadership = deadline + timedelta(days=self.book.every_complaint.leadership_after_days)
        for target, due in (
            (EscalationTarget.DEPARTMENT_HEAD, deadline),
            (EscalationTarget.LEADERSHIP_GROUP, leadership),
        ):
            if found is None or found > due:
                self.push(due, "escalate", (case.case_id, target))

    def action(self, at: datetime, case_id: str, action: CaseActionKind) -> None:
        event = self.make(
            "case_action",
            at,
            at - timedelta(minutes=self.rng.uniform(0, 30)),
            case_id=case_id,
            action=action,
            actor_staff_id=OFFICER,
            reason="调查结束，结案。" if action is CaseActionKind.CLOSE else None,
        )
        self.year.fact(event)
        if not isinstance(event, CaseActionReceived):
            raise TypeError(event)
        case = self.cases[case_id]
        self.revise(take_action(case, event, self.routing, now=at + timedelta(seconds=2)))

    def start_investigation(self, at: datetime, case_id: str) -> None:
        self.action(at, case_id, CaseActionKind.START_INVESTIGATION)

    def close(self, at: datetime, case_id: str) -> None:
        self.action(at, case_id, CaseActionKind.CLOSE)

    def finding(self, at: datetime, case_id: str) -> None:
        rng = self.rng
        case = self.cases[case_id]
        chance = SUBSTANTIATED.get(case.category, SUBSTANTIATED_OTHERWISE) if case.category else 0.2
        substantiated = rng.random() < chance
        categories: tuple[ComplaintCategory, ...] = ()
        if substantiated:
            categories = (case.category or ComplaintCategory.KICKBACK,)
        company = case.company_code if substantiated else None
        event = self.make(
            "investigation_finding",
            at,
            at - timedelta(hours=rng.uniform(0, 24)),
            case_id=case_id,
            substantiated=substantiated,
            confirmed_categories=categories,
            staff_ids=(case.accused_staff_id,) if case.accused_staff_id else (),
            confirmed_amount_cny=f"{rng.randint(5, 600) * 100}.00"
            if ComplaintCategory.KICKBACK in categories
            else None,
            company_code=company,
            company_name=None if company is None else f"{company} 医药有限公司",
            summary="经调查核实。" if substantiated else "经调查未查实。",
        )
        self.year.fact(event)
        if not isinstance(event, InvestigationFindingReceived):
            raise TypeError(event)
        self.revise(record_finding(case, event, now=at + timedelta(seconds=2)))
        if substantiated:
            self.sanction(case, event, at)

    def sanction(
        self, case: CaseUpdated, finding: InvestigationFindingReceived, at: datetime
    ) -> None:
        """What escalation's staff and company rules decide on a substantiated finding."""
        start = finding.occurred_at.astimezone(TZ).date()
        category = finding.confirmed_categories[0]
        staff_id = case.accused_staff_id
        if staff_id is not None and category in self.book.promotion_bar.categories:
            until = start.replace(year=start.year + 2) - timedelta(days=1)
            self.bars.setdefault(staff_id, []).append((start, until))
            self.decision(
                "R-PROMO-2Y",
                f"case:{case.case_id}",
                (SubjectKind.STAFF, staff_id),
                kind=DecisionKind.PROMOTION_BAR,
                case_id=case.case_id,
                in_force_from=start,
                in_force_until=until,
                as_of=finding.occurred_at,
                at=at,
                sources=[finding],
                facts={"finding_date": start, "categories": category, "years": 2},
                zh=f"{staff_id}因案件{case.case_id}被查实{category.label_zh}，两年内不得提职晋级。",
                en=f"{staff_id}: {category} found in {case.case_id}; no promotion until {until}.",
            )
        if staff_id is not None and category in BENEFIT_TRANSFER:
            self.decision(
                "R-KICKBACK",
                f"case:{case.case_id}",
                (SubjectKind.STAFF, staff_id),
                kind=DecisionKind.MEASURE,
                measure=self.rng.choice(list(Measure)),
                case_id=case.case_id,
                as_of=finding.occurred_at,
                at=at,
                sources=[finding],
                facts={"amount_cny": finding.confirmed_amount_cny or "0"},
                zh=f"案件{case.case_id}查实{category.label_zh}，对{staff_id}予以处理。",
                en=f"Case {case.case_id}: {category} found; measures against {staff_id}.",
            )
        if finding.company_code is not None:
            until = start.replace(year=start.year + 2) - timedelta(days=1)
            self.decision(
                "R-VENDOR-CUTOFF",
                f"case:{case.case_id}",
                (SubjectKind.COMPANY, finding.company_code),
                kind=DecisionKind.VENDOR_CUTOFF,
                case_id=case.case_id,
                in_force_from=start,
                in_force_until=until,
                as_of=finding.occurred_at,
                at=at,
                sources=[finding],
                facts={"categories": category, "years": 2},
                zh=f"案件{case.case_id}查实{finding.company_code}利益输送，切断业务往来至{until}。",
                en=f"Case {case.case_id}: {finding.company_code} cut off until {until}.",
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
            sources=[],
            facts={"deadline": case.deadline.isoformat(), "due": at.isoformat()},
            zh=f"凡诉必查：案件{case_id}至{at:%Y-%m-%d %H:%M}仍无调查结论，上报{target.label_zh}。",
            en=f"Case {case_id} had no finding by {at:%Y-%m-%d %H:%M}; escalated to {target}.",
        )


def make_year(
    *, scale: float, seed: int, now: datetime, keep_records: bool, base: dict[Any, int]
) -> tuple[Year, float]:
    """The year at ``scale``, and the seconds it took to generate."""
    started, cpu = time.perf_counter(), time.process_time()
    settings = ReportingSettings()
    year = Year(partitions=settings.kafka_partitions, keep_records=keep_records, base=base)
    world = World(
        rng=random.Random(seed),
        now=now,
        scale=scale,
        routing=routing(),
        book=RuleBook.from_file(EscalationSettings().rules),
        year=year,
    )
    world.generate(lambda line: print(f"  year at scale {scale}: {line}", file=sys.stderr))
    year.generated_cpu_s = time.process_time() - cpu
    return year, time.perf_counter() - started


# --- The runtime and the service ------------------------------------------------------------


def runtime(command: str, *, timeout: float) -> None:
    """deploy/local/runtime.sh on the benchmark's own folder and ports; output to stderr."""
    subprocess.run(  # noqa: S603 (our own script)
        [str(ROOT / "deploy" / "local" / "runtime.sh"), command],
        env=clean_env() | RUNTIME_ENV,
        stdout=sys.stderr,
        stderr=sys.stderr,
        check=True,
        timeout=max(1.0, timeout),
    )


def start_runtime(deadline: Deadline, *, attempts: int = 3) -> None:
    """Wipe and start; again after a pause if a port was held for a moment (ephemeral range)."""
    for attempt in range(1, attempts + 1):
        runtime("wipe", timeout=deadline.left())
        try:
            runtime("start", timeout=deadline.left())
            return
        except subprocess.CalledProcessError:
            if attempt == attempts:
                raise
            print("the runtime did not start; trying again in 20 s", file=sys.stderr)
            time.sleep(20)


def runtime_pid(name: str) -> int | None:
    try:
        return int((LOCAL_DIR / "run" / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def service_env(db: str) -> dict[str, str]:
    return clean_env() | {
        "QINGLIAN_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "QINGLIAN_MONGO_URL": MONGO_URL,
        "QINGLIAN_MONGO_DB": db,
        "QINGLIAN_LOG_LEVEL": "WARNING",
    }


@contextmanager
def service_process(*, port: int, db: str, group_prefix: str) -> Iterator[int]:
    """``python -m services.reporting`` on the benchmark runtime; its pid. Stopped on exit.
    The case gauges are refreshed once at start, not again for a day."""
    env = service_env(db) | {
        "QINGLIAN_KAFKA_GROUP_PREFIX": group_prefix,
        "QINGLIAN_HTTP_HOST": "127.0.0.1",
        "QINGLIAN_HTTP_PORT": str(port),
        "QINGLIAN_GAUGE_REFRESH_SECONDS": "86400",
    }
    log_path = LOCAL_DIR / "logs" / f"bench-reporting-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.reporting"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield process.pid
        if process.poll() is not None:
            raise RuntimeError(f"the reporting service exited early; see {log_path}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def load_now() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


# --- Writing the store as reporting would have it --------------------------------------------


async def timed_writes(
    items: list[T], write: Callable[[T], Awaitable[Any]], *, parts: int = 5
) -> dict[str, Any]:
    """Write one at a time; seconds, writes/s and ms per write in each fifth (FerretDB's cost of
    a write may grow with the collection)."""
    by_part: list[float] = []
    size = max(1, math.ceil(len(items) / parts))
    started = time.perf_counter()
    for chunk_start in range(0, len(items), size):
        chunk_started = time.perf_counter()
        for item in items[chunk_start : chunk_start + size]:
            await write(item)
        chunk = len(items[chunk_start : chunk_start + size])
        by_part.append(round((time.perf_counter() - chunk_started) * 1000 / chunk, 2))
    seconds = time.perf_counter() - started
    return {
        "documents_written": len(items),
        "seconds": round(seconds, 2),
        "writes_per_s": round(len(items) / seconds, 1) if seconds else None,
        "ms_per_write_by_fifth": by_part,
    }


VERSIONED = ("reporting_counts", "reporting_cases")
"""Collections of versioned documents: each document's revisions are kept beside it."""
STORED = (
    "reporting_counts",
    "reporting_cases",
    "reporting_case_facts",
    "reporting_case_events",
    "reporting_decisions",
    "reporting_kpi",
    "reporting_training",
    *(f"{name}_revisions" for name in VERSIONED),
)
"""The collections reporting builds from the topics."""


def _targets(store: ReportStore) -> dict[str, Any]:
    """Where each collection's documents are written, by name."""
    return {
        "reporting_counts": store.counts,
        "reporting_cases": store.cases,
        "reporting_case_facts": store.case_facts,
        "reporting_case_events": store.case_events,
        "reporting_decisions": store.decisions,
        "reporting_kpi": store.observations,
        "reporting_training": store.sessions,
    }


async def seed(db: AsyncDatabase[Document], year: Year) -> dict[str, Any]:
    """Write what ingest left in the memory store, one document at a time (FerretDB stalls on
    large bulk writes): a record with a put, a versioned document as its first revision."""
    target = ReportStore(MongoDocuments(db))
    timings = {}
    for name, kept in year.kept().items():
        print(f"  seeding: {len(kept)} documents into {name}", file=sys.stderr)
        records = _targets(target)[name]

        async def write(item: tuple[str, Any], name: str = name, records: Any = records) -> None:
            if name in VERSIONED:
                await records.save(item[0], item[1].value, over=0)
            else:
                await records.put(*item)

        timings[name] = await timed_writes(list(kept.items()), write)
    await target.documents.prepare()
    return timings


async def write_costs(db: AsyncDatabase[Document], year: Year, *, repeats: int) -> dict[str, Any]:
    """What ingest's writes cost against the store as it is, each for a batch of one record
    (run after the queries: the probes add a few documents). Each the median of ``repeats``, in
    ms."""
    store = ReportStore(MongoDocuments(db))
    ingest = Ingest(store, departments=routing().catalogue)
    probes: dict[str, Callable[[], Awaitable[Any]]] = {}
    if "satisfaction" in year.sample:
        rating, (topic, partition, offset) = year.sample["satisfaction"]
        offsets = itertools.count(offset + 1)
        probes["count_next_offset (a fact record)"] = lambda: ingest.facts(
            [Received(rating, topic, partition, next(offsets))]
        )
    if "case" in year.sample:
        case: CaseUpdated = year.sample["case"]
        revisions = itertools.count(case.revision + 1000)

        def new_case() -> list[Received[CaseUpdated]]:
            fresh = case.model_copy(update={"case_id": f"CASE-{uuid.uuid4().hex[:20].upper()}"})
            return [Received(fresh, topics.CASES, 0, 0)]

        probes["record_case_new_case (a case's first revision)"] = lambda: ingest.cases(new_case())
        probes["record_case_next_revision (a later revision)"] = lambda: ingest.cases(
            [Received(case.model_copy(update={"revision": next(revisions)}), topics.CASES, 0, 0)]
        )
        probes["load_case_by_id (the case view)"] = lambda: store.case(case.case_id)
    if "decision" in year.sample:
        decision: Decision = year.sample["decision"]
        probes["record_decision_new (a decision)"] = lambda: ingest.decisions(
            [Received(decision.model_copy(update={"event_id": uuid.uuid4()}), "d", 0, 0)]
        )
    costs = {name: (await median_ms(probe, repeats))[0] for name, probe in probes.items()}
    sizes = {name: await db[name].count_documents({}) for name in VERSIONED}
    return {"ms": costs, "collection_sizes": sizes, "repeats": repeats}


# --- Timing the queries -----------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: with 7 runs, p95 is the slowest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def last_full_month(now: datetime) -> str:
    return report_month(now.astimezone(TZ).replace(day=1) - timedelta(days=1))


async def wait_ready(base: str, pid: int, *, patience: float) -> None:
    """Until /healthz answers 200 and the first refresh of the case gauges is done."""
    give_up = time.monotonic() + patience
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            try:
                health = await client.get(f"{base}/healthz")
                metrics = await client.get(f"{base}/metrics")
                if health.status_code == 200 and 'qinglian_cases{status="open"}' in metrics.text:
                    return
            except httpx.TransportError:
                pass
            if cpu_seconds(pid) is None:
                raise RuntimeError("the reporting service exited")
            if time.monotonic() > give_up:
                raise RuntimeError(f"the reporting service was not ready within {patience} s")
            await asyncio.sleep(0.5)


async def time_queries(
    base: str, token: str, queries: dict[str, str], *, runs: int, pid: int
) -> dict[str, Any]:
    """Each query ``runs`` times after one warm-up, round-robin, one at a time."""
    samples: dict[str, list[float]] = {name: [] for name in queries}
    sizes: dict[str, int] = {}
    service_cpu: dict[str, float] = dict.fromkeys(queries, 0.0)
    store_cpu: dict[str, float] = dict.fromkeys(queries, 0.0)
    ferretdb = runtime_pid("ferretdb")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as client:
        for run in range(runs + 1):
            for name, path in queries.items():
                cpu_before = (cpu_seconds(pid) or 0.0, cpu_seconds(ferretdb) or 0.0)
                started = time.perf_counter()
                response = await client.get(path)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                if run == 0:
                    continue  # the warm-up
                samples[name].append(elapsed)
                sizes[name] = len(response.content)
                service_cpu[name] += (cpu_seconds(pid) or 0.0) - cpu_before[0]
                store_cpu[name] += (cpu_seconds(ferretdb) or 0.0) - cpu_before[1]
            print(f"  queries: run {run}/{runs} done", file=sys.stderr)
    return {
        name: {
            "path": queries[name],
            "median_ms": round(statistics.median(times) * 1000, 1),
            "p95_ms": round(percentile(times, 0.95) * 1000, 1),
            "min_ms": round(min(times) * 1000, 1),
            "response_bytes": sizes[name],
            "service_cpu_ms_per_request": round(service_cpu[name] * 1000 / runs, 1),
            "ferretdb_cpu_ms_per_request": round(store_cpu[name] * 1000 / runs, 1),
        }
        for name, times in samples.items()
    }


async def median_ms(make: Callable[[], Awaitable[Any]], repeats: int) -> tuple[float, Any]:
    times, outcome = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        outcome = await make()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1), outcome


async def breakdown(
    db: AsyncDatabase[Document], *, month: str, department: str, now: datetime, repeats: int
) -> dict[str, Any]:
    """The reads a report request makes, and the computations, one by one in this process."""
    store = ReportStore(MongoDocuments(db))
    reads: dict[str, Any] = {}
    readers: dict[str, Callable[[], Awaitable[Any]]] = {
        "month_counts": lambda: store.month_counts(month),
        "cases_opened_in_the_month": lambda: store.cases_opened(month),
        "cases_ever_overdue": store.cases_ever_overdue,
        "open_cases": store.open_cases,
        "measures_and_escalations": lambda: store.decisions_of(*MEASURE_KINDS),
        "kpi_observations": lambda: store.latest_observations("hospital", month),
        "sessions_held": lambda: store.sessions_held(month, None),
        "month_data_hospital": lambda: store.month_data(month, None),
        "month_data_department": lambda: store.month_data(month, department),
    }
    for name, read in readers.items():
        read_ms, found = await median_ms(read, repeats)
        size = len(found.cases) if isinstance(found, MonthData) else len(found)
        reads[name] = {"read_ms": read_ms, "documents_or_cases": size}
        print(f"  breakdown: {name} {reads[name]}", file=sys.stderr)
    data = await store.month_data(month, None)
    settings = ReportingSettings()
    catalogue = DepartmentCatalogue.from_file(settings.departments)
    targets = KpiTargets.from_file(settings.kpi_targets)
    study = StudyRule.from_file(settings.study_rule)

    async def compute(make: Callable[[], Any]) -> Any:
        return make()

    def report(scope: str | None) -> Callable[[], Any]:
        return lambda: monthly_report(
            data,
            month=month,
            department=scope,
            catalogue=catalogue,
            targets=targets,
            study=study,
            now=now,
        )

    hospital_ms, hospital = await median_ms(lambda: compute(report(None)), repeats)
    serialise_ms, _ = await median_ms(lambda: compute(hospital.model_dump_json), repeats)
    return {
        "repeats": repeats,
        "reads": reads,
        "computations": {
            "monthly_report_hospital_ms": hospital_ms,
            "monthly_report_hospital_to_json_ms": serialise_ms,
        },
    }


async def query_phase(
    options: argparse.Namespace, deadline: Deadline, year: Year, now: datetime, db_name: str
) -> dict[str, Any]:
    mongo = connect(ReportingSettings(mongo_url=MONGO_URL))
    db = mongo[db_name]
    result: dict[str, Any] = {"database": db_name, "load_average_at_start": load_now()}
    try:
        result["seeding"] = await seed(db, year)
        _, token = await report_tokens(MongoDocuments(db), cache_seconds=0).issue(
            grants(Role.CONDUCT_OFFICE, None), label="bench", now=datetime.now(UTC)
        )
    finally:
        await mongo.close()
    month = last_full_month(now)
    department = year.busiest_department(month)
    queries = {
        "monthly_hospital": f"/v1/reports/monthly?month={month}",
        "monthly_department": f"/v1/reports/monthly?month={month}&department={department}",
        "dashboard": "/dashboard",
        "register_promotion_bars": "/v1/reports/registers/promotion-bars",
        "register_vendor_cutoffs": "/v1/reports/registers/vendor-cutoffs",
        "register_escalations": "/v1/reports/registers/escalations",
        "register_notices": "/v1/reports/registers/notices",
    }
    port = free_port(SERVICE_PORTS)
    base = f"http://127.0.0.1:{port}"
    result |= {"month": month, "department": department, "runs": options.runs, "http_port": port}
    with service_process(
        port=port, db=db_name, group_prefix=f"bench-{uuid.uuid4().hex[:8]}-"
    ) as pid:
        started = time.perf_counter()
        await wait_ready(base, pid, patience=min(300.0, deadline.left()))
        result["service_ready_s_incl_first_gauge_refresh"] = round(time.perf_counter() - started, 1)
        result["load_average_before_queries"] = load_now()
        result["http"] = await time_queries(base, token, queries, runs=options.runs, pid=pid)
    mongo = connect(ReportingSettings(mongo_url=MONGO_URL))
    try:
        result["in_process"] = await breakdown(
            mongo[db_name], month=month, department=department, now=now, repeats=options.repeats
        )
        print("  write costs at this size", file=sys.stderr)
        result["write_costs"] = await write_costs(
            mongo[db_name], year, repeats=options.probe_repeats
        )
    finally:
        await mongo.close()
    return result


# --- The rebuild ------------------------------------------------------------------------------


def settings_here() -> ReportingSettings:
    return ReportingSettings(kafka_bootstrap=BOOTSTRAP, mongo_url=MONGO_URL)


async def end_offsets() -> dict[Any, int]:
    """The end of every partition of the report topics (created if missing)."""
    settings = settings_here()
    await ensure_topics(settings, REPORT_TOPICS)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    # aiokafka 0.14 cancels, then awaits, its no-group task on stop(); had the task not run
    # yet, stop() raises CancelledError. One pass of the loop lets it start.
    await asyncio.sleep(0)
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in REPORT_TOPICS
            for partition in range(settings.kafka_partitions)
        ]
        ends = await consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def publish(records: list[tuple[str, bytes, bytes]]) -> float:
    """Every record in order, keyed, acks=all; seconds taken."""
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
        client_id="bench-reporting-feed",
    )
    await producer.start()
    try:
        started = time.perf_counter()
        for chunk_start in range(0, len(records), 5000):
            sent = [
                await producer.send(topic, value, key=key, headers=JSON_HEADERS)
                for topic, key, value in records[chunk_start : chunk_start + 5000]
            ]
            await asyncio.gather(*sent)
        return time.perf_counter() - started
    finally:
        await producer.stop()


def run_rebuild(*, into: str, source_db: str, timeout: float) -> dict[str, Any]:
    """``python -m services.reporting.rebuild --into …`` as a subprocess; its summary, wall
    time and CPU (its own, from getrusage of reaped children; FerretDB's and Kafka's)."""
    ferretdb, kafka = runtime_pid("ferretdb"), runtime_pid("kafka")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    store_before, kafka_before = cpu_seconds(ferretdb), cpu_seconds(kafka)
    started = time.perf_counter()
    log_path = LOCAL_DIR / "logs" / "bench-reporting-rebuild.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "services.reporting.rebuild", "--into", into],
            cwd=ROOT,
            env=service_env(source_db),
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(f"the rebuild failed ({process.returncode}); see {log_path}")
    summary: dict[str, Any] = json.loads(output)
    records = int(summary["records"])
    own_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    store_cpu = (cpu_seconds(ferretdb) or 0.0) - (store_before or 0.0)
    kafka_cpu = (cpu_seconds(kafka) or 0.0) - (kafka_before or 0.0)
    return {
        "summary": {**summary, "unreadable": len(summary["unreadable"])},
        "wall_s": round(wall, 2),
        "records_per_s": round(records / float(summary["seconds"]), 1),
        "cpu_ms_per_record": {
            "rebuild_process": round(own_cpu * 1000 / max(1, records), 3),
            "ferretdb": round(store_cpu * 1000 / max(1, records), 3),
            "kafka": round(kafka_cpu * 1000 / max(1, records), 3),
        },
    }


async def compare(expected: AsyncDatabase[Document], rebuilt: AsyncDatabase[Document]) -> Any:
    """Document by document, each collection built from the topics."""
    outcome: dict[str, Any] = {}
    for name in STORED:
        ours = {document["_id"]: document async for document in expected[name].find({})}
        theirs = {document["_id"]: document async for document in rebuilt[name].find({})}
        differing = sum(
            1 for key in ours.keys() | theirs.keys() if ours.get(key) != theirs.get(key)
        )
        outcome[name] = {
            "seeded": len(ours),
            "rebuilt": len(theirs),
            "differing_documents": differing,
        }
    outcome["identical"] = all(item["differing_documents"] == 0 for item in outcome.values())
    return outcome


def rebuild_phase(
    options: argparse.Namespace,
    deadline: Deadline,
    now: datetime,
    full: Year | None,
    source_db: str,
) -> dict[str, Any]:
    scale = options.rebuild_scale
    result: dict[str, Any] = {"scale": scale, "load_average_at_start": load_now()}
    base = deadline.run(end_offsets())
    year, generated = make_year(
        scale=scale, seed=options.seed + 1, now=now, keep_records=True, base=base
    )
    records = year.records or []
    result["data"] = year.summary() | {
        "generated_in_s": round(generated, 1),
        "generated_cpu_s": round(year.generated_cpu_s, 1),
    }
    print(f"rebuild: publishing {len(records)} records", file=sys.stderr)
    result["published_in_s"] = round(deadline.run(publish(records)), 1)
    year.records = None
    tag = uuid.uuid4().hex[:8]
    into = f"bench_rebuilt_{tag}"
    print(f"rebuild: python -m services.reporting.rebuild --into {into}", file=sys.stderr)
    result["rebuild"] = run_rebuild(into=into, source_db=source_db, timeout=deadline.left())
    print(f"  {result['rebuild']['records_per_s']} records/s", file=sys.stderr)

    async def check() -> tuple[Any, Any]:
        mongo = connect(settings_here())
        seeded = mongo[f"bench_seeded_{tag}"]
        try:
            await seed(seeded, year)
            same = await compare(seeded, mongo[into])
            print("  write costs at this size", file=sys.stderr)
            return same, await write_costs(seeded, year, repeats=options.probe_repeats)
        finally:
            await mongo.close()

    result["seeded_equals_rebuilt"], result["write_costs_at_this_size"] = deadline.run(check())
    rate = float(result["rebuild"]["records_per_s"])
    records_full = sum(full.records_by_topic.values()) if full else None
    records_full = records_full or round(sum(year.records_by_topic.values()) / scale)
    result["extrapolated"] = {
        "label": "EXTRAPOLATION, not a measurement",
        "how": "records of the queries' year (or this one / scale) / the rebuild's records per s",
        "records": records_full,
        "seconds_linear": round(records_full / rate),
    }
    return result


# --- The run ----------------------------------------------------------------------------------


NOTES = (
    "queries.http: wall time per request from this script (httpx, one request at a time, "
    "after one warm-up round), median and nearest-rank p95 of --runs (with 5 runs p95 is the "
    "slowest); service_cpu and ferretdb_cpu: CPU those processes used per request (/proc). "
    "queries.in_process: the repository reads a request makes (find_only: the documents as "
    "PyMongo returns them; repository_read: also decoded into reporting's models) and the pure "
    "computations, medians of --repeats, in this process. Every monthly report and dashboard "
    "request reads every case, decision, KPI observation, session, confirmation and count "
    "document (ReportRepository.month_data); the dashboard reads every case once more; the "
    "registers read every decision. queries.write_costs: ms per ReportRepository write against "
    "the full-size store; filter_pushdown false means FerretDB 1.24 (SQLite) decodes and "
    "filters every document of the collection for that write. rebuild.records_per_s: the "
    "tool's own records / seconds (the copy of kept collections included). "
    "seeded_equals_rebuilt: the store built as in the queries phase against the rebuilt one, "
    "document by document. Extrapolations are labelled as such."
)


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    result["now"] = now.isoformat()
    start_runtime(deadline)
    full: Year | None = None
    source_db = f"bench_reporting_{uuid.uuid4().hex[:8]}"
    if not options.no_queries:
        print(f"queries: generating the year at scale {options.scale}", file=sys.stderr)
        full, generated = make_year(
            scale=options.scale, seed=options.seed, now=now, keep_records=False, base={}
        )
        result["data"] = full.summary() | {
            "generated_in_s": round(generated, 1),
            "generated_cpu_s": round(full.generated_cpu_s, 1),
        }
        print(json.dumps(result["data"], ensure_ascii=False), file=sys.stderr)
        queries: dict[str, Any] = {}
        result["queries"] = queries
        queries |= deadline.run(query_phase(options, deadline, full, now, source_db))
    if not options.no_rebuild:
        result["rebuild"] = rebuild_phase(options, deadline, now, full, source_db)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="of a 3,000-bed year (~2M)")
    parser.add_argument(
        "--rebuild-scale", type=float, help="the rebuild's year (default: min(scale, 0.002))"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed requests per query")
    parser.add_argument("--repeats", type=int, default=3, help="in-process timings per step")
    parser.add_argument(
        "--probe-repeats", type=int, default=9, help="timed writes per repository write kind"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-queries", action="store_true")
    parser.add_argument("--no-rebuild", action="store_true")
    parser.add_argument("--timeout", type=float, default=2400.0, help="seconds for the whole run")
    options = parser.parse_args()
    # This process, the service and the rebuild read the same (default) settings.
    for name in [name for name in os.environ if name.startswith("QINGLIAN_")]:
        del os.environ[name]
    if options.rebuild_scale is None:
        options.rebuild_scale = min(options.scale, 0.002)
    if options.scale <= 0 or options.rebuild_scale <= 0 or options.runs < 1:
        parser.error("scales must be positive and runs at least 1")

    deadline = Deadline(options.timeout)
    load_at_start = load_now()
    result: dict[str, Any] = {
        "benchmark": "reporting_queries",
        "scale": options.scale,
        "rebuild_scale": options.rebuild_scale,
    }
    status = 0
    started = time.monotonic()
    try:
        measure(options, deadline, result)
    except Exception as error:  # reported in the JSON, with what was started stopped
        result["error"] = (
            f"did not finish within {options.timeout:.0f} s"
            if isinstance(error, TimeoutError)
            else f"{type(error).__name__}: {error}"
        )
        status = 1
    finally:
        try:
            runtime("stop", timeout=120)
        except subprocess.SubprocessError as error:
            print(f"could not stop the benchmark runtime: {error}", file=sys.stderr)
    result["run_seconds"] = round(time.monotonic() - started, 1)
    result["machine"] = machine(load_at_start)
    result["notes"] = NOTES
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
