"""Reporting against the real Kafka broker and MongoDB-wire store: each section of the monthly
report, the roles, the exports, the registers, the rebuild and the metrics, from records
published on the real topics.

Reporting reads every topic from its first record, and the topics are shared with other tests,
so the service here has its own database and consumer groups, and its facts fall in months of
a far-off year chosen at random and checked to be empty. What is global (the registers, the
overdue cases of every month) is looked at through this module's own subjects and cases.
"""

import asyncio
import codecs
import csv
import io
import json
import os
import random
import re
import sys
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from openpyxl import load_workbook
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.cell.read_only import EmptyCell
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness.kafka import partitions_of
from schemas import topics
from schemas.base import Event
from schemas.case import CaseUpdated
from schemas.case_action import CaseActionReceived
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintReceived
from schemas.dead_letter import DeadLetter, Problem
from schemas.decision import Decision, DecisionKind, EscalationTarget, Measure, SubjectKind
from schemas.finding import InvestigationFindingReceived
from services.common.broker import ensure_topics
from services.common.consuming import subscriber_group
from services.common.departments import DEPARTMENTS_FILE, DepartmentCatalogue
from services.common.desk_sessions import DESK_SESSION_COOKIE
from services.common.documents import MongoDocuments
from services.common.roles import Role
from services.common.store import Document
from services.escalation.conduct import ConductFile, decide
from services.escalation.rulebook import RuleBook
from services.escalation.settings import EscalationSettings
from services.reporting.access import grants, report_tokens
from services.reporting.api import (
    KPI_COLUMNS,
    MONTHLY_COLUMNS,
    hospital_time,
    kpi_rows,
    monthly_rows,
)
from services.reporting.exports import FORMULA_TRIGGERS
from services.reporting.facts import CaseFact
from services.reporting.kpi import TARGETS_FILE, KpiStatus, KpiTargets
from services.reporting.main import create_app
from services.reporting.monthly import MonthlyReport, month_bounds, monthly_report
from services.reporting.registers import (
    escalations,
    notices,
    promotion_bars,
    vendor_cutoffs,
)
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportStore
from services.reporting.study import STUDY_FILE, StudyRule
from services.router.domain import record_finding, take_action
from tests.conftest import InfraSettings
from tests.desk import PASSWORD, Running, running_desk, sign_in_anew
from tests.desk import client as desk_client
from tests.factories import ROUTING, routed_case
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = DepartmentCatalogue.from_file(DEPARTMENTS_FILE)
TARGETS = KpiTargets.from_file(TARGETS_FILE)
BOOK = RuleBook.from_file(EscalationSettings().rules)
"""Escalation's rule book, which its decisions name (``decide``)."""
STUDY = StudyRule.from_file(STUDY_FILE)
DEPARTMENTS = sorted(CATALOGUE.departments)

SUBSCRIBED = (topics.FACTS, (topics.DEAD_LETTERS,), (topics.CASES,), (topics.DECISIONS,))
"""The topics of each of reporting's subscribers (handlers.build_routes), each its own group."""

Published = Event | CaseUpdated | Decision | DeadLetter


def fresh(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


# --- Months and moments -----------------------------------------------------------------------


def shift(month: str, months: int) -> str:
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def at(month: str, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A moment of ``month`` in hospital time."""
    start, _ = month_bounds(month)
    return start.replace(day=day, hour=hour, minute=minute)


def end_of(month: str) -> datetime:
    return month_bounds(month)[1]


@dataclass
class SettableClock:
    """Reporting's clock: whatever a test sets."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


# --- Input records ----------------------------------------------------------------------------


def accepted(
    event_type: str, *, occurred_at: datetime, received_at: datetime | None = None, **facts: Any
) -> Event:
    """An event as intake accepts and publishes it (received a minute later unless given)."""
    kind = BY_TYPE[event_type]
    submission = kind.submission.model_validate(
        {
            "source_system": "reporting_test",
            "source_ref": fresh("REP-"),
            "occurred_at": occurred_at,
            **facts,
        }
    )
    received = received_at or occurred_at + timedelta(minutes=1)
    return kind.event.accept(submission, received_at=received)


def complaint(*, received: datetime, **facts: Any) -> ComplaintReceived:
    """A complaint received (and made) at ``received``: a case opened from it opens then."""
    defaults = {
        "channel": "portal",
        "category": "kickback",
        "accused_staff_id": fresh("D"),
        "description": "医生收取回扣。",
    }
    event = accepted("complaint", occurred_at=received, received_at=received, **defaults | facts)
    assert isinstance(event, ComplaintReceived)
    return event


def with_finding(case: CaseUpdated, *, on: datetime, staff: str) -> CaseUpdated:
    finding = accepted(
        "investigation_finding",
        occurred_at=on,
        case_id=case.case_id,
        substantiated=True,
        confirmed_categories=[case.category or "other"],
        staff_ids=[staff],
        summary="经调查查实。",
    )
    assert isinstance(finding, InvestigationFindingReceived)
    return record_finding(case, finding, now=on)


def closed(case: CaseUpdated, *, on: datetime) -> CaseUpdated:
    action = accepted(
        "case_action",
        occurred_at=on,
        case_id=case.case_id,
        action="close",
        actor_staff_id="S0101",
        reason="处理完毕，结案。",
    )
    assert isinstance(action, CaseActionReceived)
    return take_action(case, action, ROUTING, now=on)


def ruling(
    rule_id: str,
    key: str,
    kind: DecisionKind,
    subject: tuple[SubjectKind, str],
    *,
    as_of: datetime,
    decided_at: datetime | None = None,
    facts: Mapping[str, object] | None = None,
    **fields: Any,
) -> Decision:
    """A decision as escalation publishes it."""
    subject_kind, subject_id = subject
    return decide(
        BOOK,
        rule_id=rule_id,
        key=key,
        subject=ConductFile(subject_kind=subject_kind, subject_id=subject_id),
        as_of=as_of,
        sources=(),
        facts=facts or {},
        explanation_zh=f"测试决定：{rule_id} {key}",
        explanation_en=f"Test decision: {rule_id} {key}",
        now=decided_at or as_of,
        kind=kind,
        **fields,
    )


def revised(decision: Decision, *, at: datetime, **changes: Any) -> Decision:
    """A correction (or, with withdrawn=True, a withdrawal) of ``decision``: the same key."""
    return Decision.model_validate(
        {
            **decision.model_dump(),
            **changes,
            "event_id": uuid.uuid4(),
            "corrects": decision.event_id,
            "decided_at": at,
        }
    )


def dead_letter(*, at: datetime) -> DeadLetter:
    return DeadLetter(
        dead_letter_id=uuid.uuid4(),
        source_topic=topics.COMPLAINTS,
        source_partition=0,
        source_offset=0,
        reason="handler_failed",
        problems=(Problem(field="handler", reason="RuntimeError"),),
        original=b'{"not": "a complaint"}',
        key=b"k",
        failed_in="reporting_test",
        attempts=5,
        dead_lettered_at=at,
    )


class Inputs:
    """Publishes as intake, the router, escalation and the dead-letter path do: acks=all, on
    their topics, with their keys."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, *records: Published) -> None:
        sent = []
        for record in records:
            if isinstance(record, CaseUpdated):
                topic, key = topics.CASES, record.case_id.encode()
            elif isinstance(record, Decision):
                topic, key = topics.DECISIONS, record.subject_id.encode()
            elif isinstance(record, DeadLetter):
                topic, key = topics.DEAD_LETTERS, record.dead_letter_id.bytes
            else:
                kind = BY_TYPE[record.event_type]  # type: ignore[attr-defined]
                topic, key = kind.topic, kind.key(record)
            sent.append(await self.producer.send(topic, record.model_dump_json().encode(), key=key))
        await asyncio.gather(*sent)


# --- The service ------------------------------------------------------------------------------


@dataclass
class Reporting:
    """Reporting in this process, started and stopped through its lifespan, called over ASGI."""

    settings: ReportingSettings
    clock: SettableClock
    mongo: AsyncMongoClient[Document]
    desk: Running | None = None
    """The desk people sign in at (in this process, on the in-memory store)."""
    app: FastAPI | None = None
    _client: httpx.AsyncClient | None = None
    _stack: AsyncExitStack | None = None

    @property
    def db(self) -> AsyncDatabase[Document]:
        return self.mongo[self.settings.mongo_db]

    @property
    def store(self) -> ReportStore:
        return ReportStore(MongoDocuments(self.db))

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "reporting is not running"
        return self._client

    async def start(self) -> None:
        desk = None if self.desk is None else self.desk.http._transport
        app = create_app(self.settings, clock=self.clock, desk_transport=desk)
        stack = AsyncExitStack()
        await stack.enter_async_context(app.router.lifespan_context(app))
        self._client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reporting")
        )
        self.app, self._stack = app, stack

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self.app, self._client, self._stack = None, None, None

    # HTTP

    async def get(self, path: str, token: str | None, **params: str) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return await self.client.get(path, params=params, headers=headers)

    async def read(self, path: str, token: str, **params: str) -> Any:
        answer = await self.get(path, token, **params)
        assert answer.status_code == 200, f"{path} {params}: {answer.status_code} {answer.text}"
        return answer.json()

    async def monthly(self, token: str, month: str, department: str | None = None) -> Any:
        params = {"month": month} | ({} if department is None else {"department": department})
        return await self.read("/v1/reports/monthly", token, **params)

    async def confirm(
        self, token: str, month: str, department: str | None = None
    ) -> httpx.Response:
        params = {"month": month} | ({} if department is None else {"department": department})
        return await self.client.post(
            "/v1/reports/monthly/confirm",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        answer = await self.client.get("/metrics")
        assert answer.status_code == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        }

    # Consumer groups

    def groups(self) -> list[tuple[str, tuple[str, ...]]]:
        group = self.settings.consumer_group("reporting")
        return [(subscriber_group(group, *subscribed), subscribed) for subscribed in SUBSCRIBED]

    async def partitions(self, subscribed: Iterable[str]) -> list[TopicPartition]:
        return await partitions_of(self.settings.kafka_bootstrap, subscribed)

    async def ends(self) -> dict[TopicPartition, int]:
        """Where the next record of each partition of reporting's topics will be written."""
        partitions = await self.partitions(t for _, ts in self.groups() for t in ts)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        await consumer.start()
        try:
            ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        return ends

    async def lag(self) -> int:
        """Records of reporting's topics its subscribers have not yet committed."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        try:
            done: dict[TopicPartition, int] = {}
            for group, _ in self.groups():
                committed = await admin.list_consumer_group_offsets(group)
                done |= {tp: max(meta.offset, 0) for tp, meta in committed.items()}
        finally:
            await admin.close()
        ends = await self.ends()
        return sum(max(end - done.get(tp, 0), 0) for tp, end in ends.items())

    async def caught_up(self, *, within: float = 90.0) -> None:
        async def no_lag() -> bool:
            return await self.lag() == 0

        await eventually(no_lag, within=within, what="reporting to commit every record")

    async def rewind(self, to: Mapping[TopicPartition, int]) -> None:
        """Commit the positions ``to`` for every subscriber, as if it had crashed before
        committing what it handled since: those records are delivered again. Only while the
        service is stopped."""
        for group, subscribed in self.groups():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                group_id=group,
                enable_auto_commit=False,
            )
            positions = {tp: offset for tp, offset in to.items() if tp.topic in subscribed}
            await consumer.start()
            try:
                consumer.assign(list(positions))
                await consumer.commit(positions)
            finally:
                await consumer.stop()


# --- Reading what the service answers -------------------------------------------------------


async def all_cases(store: ReportStore) -> list[CaseFact]:
    """Every case the store shows to the reports."""
    return list((await store.case_facts.find()).values())


async def all_decisions(store: ReportStore) -> list[Decision]:
    return list((await store.decisions.find()).values())


async def stored_counts(store: ReportStore, months: Iterable[str]) -> dict[str, Any]:
    """The count documents of ``months``: each one's last offset counted and its counts."""
    return {
        key: (kept.value.offset, kept.value.tallies)
        for month in months
        for key, kept in (await store.counts.find(month=month)).items()
        if kept.value is not None
    }


def by_type(report: Mapping[str, Any]) -> dict[str, int]:
    return {row["event_type"]: row["count"] for row in report["basic"]["by_event_type"]}


def by_category(report: Mapping[str, Any]) -> dict[str, int]:
    return {row["category"]: row["count"] for row in report["basic"]["complaint_categories"]}


def overdue(report: Mapping[str, Any], mine: Iterable[str]) -> list[tuple[str, int]]:
    wanted = set(mine)
    return [
        (case["case_id"], case["days_overdue"])
        for case in report["problems"]["overdue_cases"]
        if case["case_id"] in wanted
    ]


def timeliness(report: Mapping[str, Any]) -> dict[str, str]:
    return {row["department"]: row["status"] for row in report["timeliness"]}


def kpi(report: Mapping[str, Any]) -> dict[str, tuple[str | None, str, str | None]]:
    return {row["metric"]: (row["value"], row["status"], row["source"]) for row in report["kpi"]}


def canonical(value: object) -> str:
    """A cell as a person reads it, whichever way it travelled: JSON, CSV or XLSX. Moments in
    the hospital's time to the minute, numbers by value (0.5000 is 0.5), yes/no as 是/否."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    text = str(value)
    if len(text) >= 19 and text[4] == "-" and text[10] == "T":
        return hospital_time(datetime.fromisoformat(text))
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return format(number.normalize(), "f") if number.is_finite() else text


def _xlsx_cell(cell: Cell | MergedCell | EmptyCell) -> str:
    """An XLSX cell as the spreadsheet shows it, by its number format."""
    value, number_format = cell.value, getattr(cell, "number_format", "General")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M" if "hh" in number_format else "%Y-%m-%d")
    if isinstance(value, int | float) and number_format == "0.00%":
        return f"{Decimal(str(value)) * 100:.2f}%"
    return canonical(value)


def csv_rows(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(codecs.BOM_UTF8)
    assert "attachment; filename*=UTF-8''" in answer.headers["content-disposition"]
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


def xlsx_rows(answer: httpx.Response, sheet: str) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    workbook = load_workbook(io.BytesIO(answer.content))
    (worksheet,) = workbook.worksheets
    assert worksheet.title == sheet[:31]
    assert worksheet.freeze_panes == "A2"
    assert worksheet.auto_filter.ref == worksheet.dimensions
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert "<f>" not in archive.read("xl/worksheets/sheet1.xml").decode(), "no formulas"
    return [[_xlsx_cell(cell) for cell in row] for row in worksheet.iter_rows()]


def table_of(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
) -> list[list[str]]:
    """What a table of ``rows`` should hold: the Chinese headers, then each row's fields."""
    return [
        [header for _, header in columns],
        *([canonical(row.get(name)) for name, _ in columns] for row in rows),
    ]


async def exports_match(
    reporting: Reporting,
    path: str,
    token: str,
    expected: list[list[str]],
    *,
    sheet: str,
    **params: str,
) -> None:
    """The CSV and the XLSX of ``path`` hold ``expected`` (from its JSON). The CSV carries text
    a spreadsheet would run behind a quote (the topics are shared: such text may be there)."""

    def unquoted(cell: str) -> str:
        return cell[1:] if cell[:1] == "'" and cell[1:2] in FORMULA_TRIGGERS else cell

    from_csv = csv_rows(await reporting.get(path, token, format="csv", **params))
    assert [[canonical(unquoted(cell)) for cell in row] for row in from_csv] == expected
    from_xlsx = xlsx_rows(await reporting.get(path, token, format="xlsx", **params), sheet)
    assert from_xlsx == expected


# --- Fixtures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    conduct_office: str
    finance_head: str
    nursing_head: str
    auditor: str
    ids: dict[str, str]
    """Token id by the attribute names above."""


@dataclass(frozen=True)
class Months:
    basic: str
    """Month A: 基本情况 (test 1)."""
    cases: str
    """Month B: cases, decisions, KPI, study sessions, confirmations (tests 2-7)."""
    accused_head: str
    """Month C: complaints against a department's head."""
    received: str
    """Month D: events received in a later month than they happened."""
    shared: str
    """Month E: events counted by two instances in one consumer group."""

    @property
    def all(self) -> tuple[str, ...]:
        a, b, c, d, e = self.basic, self.cases, self.accused_head, self.received, self.shared
        return (a, shift(a, 1), shift(b, -1), b, shift(b, 1), c, shift(d, -1), d, shift(d, 1), e)


@pytest.fixture(scope="module")
async def mongo(infra: InfraSettings) -> AsyncIterator[AsyncMongoClient[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="module")
async def inputs(infra: InfraSettings) -> AsyncIterator[Inputs]:
    await ensure_topics(infra, topics.ALL)
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        yield Inputs(producer)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
async def reporting(
    infra: InfraSettings,
    mongo: AsyncMongoClient[Document],
    inputs: Inputs,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Reporting]:
    """The reporting every test here shares: its own database and consumer groups, a settable
    clock, tokens verified afresh on every request, gauges refreshed every 0.2 s, and the desk
    its people sign in at, asked afresh on every request."""
    run = uuid.uuid4().hex[:10]
    keys = tmp_path_factory.mktemp("desk")
    async with running_desk(keys, datetime.now(UTC)) as desk:
        settings = ReportingSettings(
            http_port=0,
            kafka_bootstrap=infra.kafka_bootstrap,
            mongo_url=infra.mongo_url,
            mongo_db=f"reporting_{run}",
            kafka_group_prefix=f"reporting-{run}-",
            token_cache_seconds=0,
            gauge_refresh_seconds=0.2,
            retry_backoff_max_seconds=0.5,
            session_reader_key_file=keys / "reader_key",
            desk_session_cache_seconds=0,
        )
        service = Reporting(settings, SettableClock(), mongo, desk)
        await service.start()
        try:
            await service.caught_up(within=120)
            yield service
        finally:
            await service.stop()
            for name in await mongo.list_database_names():
                if name.startswith(settings.mongo_db):
                    await mongo.drop_database(name)


@pytest.fixture(scope="module")
async def months(reporting: Reporting) -> Months:
    """Months of far-off years in which the topics hold nothing yet (nor in the months around
    them), so this module's facts are the only ones counted there."""

    store = reporting.store
    decisions = await all_decisions(store)

    async def unused(month: str) -> bool:
        start, end = month_bounds(month)
        return not (
            await store.month_counts(month)
            or await store.cases_opened(month)
            or any(start <= decision.as_of < end for decision in decisions)
            or await store.observations.find(period=month)
            or await store.sessions.find(held_month=month)
        )

    draw = random.Random()
    for _ in range(20):
        a, b, c, d, e = (
            f"{draw.randrange(2100, 3000)}-{draw.randrange(1, 13):02d}" for _ in "abcde"
        )
        chosen = Months(basic=a, cases=b, accused_head=c, received=d, shared=e)
        if len(set(chosen.all)) == len(chosen.all) and all(
            [await unused(month) for month in chosen.all]
        ):
            return chosen
    raise AssertionError("no unused months found")


@pytest.fixture(scope="module")
async def tokens(reporting: Reporting) -> Tokens:
    issuer = report_tokens(reporting.store.documents, cache_seconds=0)
    made = {}
    for name, role, department in (
        ("conduct_office", Role.CONDUCT_OFFICE, None),
        ("finance_head", Role.DEPARTMENT_HEAD, "finance"),
        ("nursing_head", Role.DEPARTMENT_HEAD, "nursing"),
        ("auditor", Role.AUDITOR, None),
    ):
        made[name] = await issuer.issue(
            grants(role, department), label=f"测试 {name}", now=datetime.now(UTC)
        )
    return Tokens(
        **{name: token for name, (_, token) in made.items()},
        ids={name: token_id for name, (token_id, _) in made.items()},
    )


@dataclass
class Scenario:
    """Month B as the topics tell it: cases, decisions, KPI observations, study sessions."""

    month: str
    cases: dict[str, CaseUpdated]
    """By name (c1 … c6), each at its latest revision."""
    staff: dict[str, str]
    companies: dict[str, str]
    items: dict[str, str]
    """Rectification items named in notices."""
    decisions: list[Decision]

    def case_id(self, name: str) -> str:
        return self.cases[name].case_id

    @property
    def case_ids(self) -> set[str]:
        return {case.case_id for case in self.cases.values()}


@pytest.fixture(scope="module")
async def scenario(reporting: Reporting, inputs: Inputs, months: Months) -> Scenario:
    b = months.cases
    before, after = shift(b, -1), shift(b, 1)
    staff = {name: fresh("D") for name in ("s1", "s2", "s5", "s7", "s8")}

    def opened(name: str, category: str, received: datetime, **facts: Any) -> CaseUpdated:
        event = complaint(
            received=received,
            category=category,
            accused_staff_id=staff.get(name.replace("c", "s"), fresh("D")),
            accused_department="general_psychiatry",
            **facts,
        )
        return routed_case(event, now=received)

    c1 = opened("c1", "kickback", at(b, 2))
    c1_found = with_finding(c1, on=at(b, 10), staff=staff["s1"])
    c1_closed = closed(c1_found, on=at(b, 12))
    c2 = opened("c2", "kickback", at(b, 3))
    c2_found = with_finding(c2, on=at(b, 25), staff=staff["s2"])  # deadline the 18th: late
    c3 = opened("c3", "procurement", at(b, 5))  # deadline the 20th, no finding: overdue
    c4 = opened("c4", "kickback", at(b, 20))  # deadline in the next month
    c5 = opened("c5", "attitude", at(b, 4))  # medical affairs, overdue
    c6 = opened("c6", "kickback", at(before, 10))  # opened the month before, overdue
    cases = {
        "c1": c1_closed,
        "c2": c2_found,
        "c3": c3,
        "c4": c4,
        "c5": c5,
        "c6": c6,
    }
    assert {name: case.responsible_department.code for name, case in cases.items()} == {
        "c1": "finance",
        "c2": "finance",
        "c3": "finance",
        "c4": "finance",
        "c5": "medical_affairs",
        "c6": "finance",
    }
    # Revisions out of order: the newest first, every one twice.
    await inputs.publish(c1_closed, c1, c1_found, c2, c2_found, c3, c4, c5, c6, c1, c2_found)

    case = SubjectKind.CASE
    person = SubjectKind.STAFF
    company = SubjectKind.COMPANY
    department = SubjectKind.DEPARTMENT
    companies = {"x": fresh("CO-"), "y": fresh("CO-")}
    items = {name: fresh(f"整改事项{name}-") for name in ("n1", "n2", "n2b", "n3")}
    # Measures (推进情况): counted when standing, with their case (the month it was received).
    d1 = ruling(
        "R-KICKBACK",
        f"case:{c1.case_id}:measure",
        DecisionKind.MEASURE,
        (person, staff["s1"]),
        as_of=at(b, 12),
        case_id=c1.case_id,
        measure=Measure.INTERVIEW,
    )
    d2 = ruling(
        "R-EVERY-COMPLAINT",
        f"case:{c3.case_id}:head",
        DecisionKind.ESCALATION,
        (case, c3.case_id),
        as_of=at(b, 20, 11),
        case_id=c3.case_id,
        escalate_to=EscalationTarget.DEPARTMENT_HEAD,
    )
    d3 = ruling(
        "R-KICKBACK",
        f"case:{c2.case_id}:measure",
        DecisionKind.MEASURE,
        (person, staff["s2"]),
        as_of=at(b, 25),
        case_id=c2.case_id,
        measure=Measure.SUSPENSION,
    )
    d3_withdrawn = revised(d3, at=at(b, 26), withdrawn=True)
    d4 = ruling(
        "R-PRESCRIBE",
        f"case:{c2.case_id}:measure",
        DecisionKind.MEASURE,
        (person, staff["s2"]),
        as_of=at(b, 25, 12),
        case_id=c2.case_id,
        measure=Measure.INTERVIEW,
    )
    d4_corrected = revised(d4, at=at(b, 27), measure=Measure.REASSIGNMENT_OR_PAY_CUT)
    d5 = ruling(
        "R-KICKBACK",
        f"case:{c5.case_id}:measure",
        DecisionKind.MEASURE,
        (person, staff["s5"]),
        as_of=at(b, 15),
        case_id=c5.case_id,
        measure=Measure.INTERVIEW,
    )
    d6 = ruling(
        "R-KICKBACK",
        f"case:{c1.case_id}:later",
        DecisionKind.MEASURE,
        (person, staff["s1"]),
        as_of=at(after, 3),
        case_id=c1.case_id,
        measure=Measure.INTERVIEW,
    )
    # Registers.
    bar_from = at(b, 10).date()
    p1 = ruling(
        "R-PROMO-2Y",
        f"case:{c1.case_id}",
        DecisionKind.PROMOTION_BAR,
        (person, staff["s1"]),
        as_of=at(b, 10),
        case_id=c1.case_id,
        in_force_from=bar_from,
        in_force_until=bar_from.replace(year=bar_from.year + 2) - timedelta(days=1),
    )
    p2 = ruling(
        "R-PROMO-2Y",
        f"case:{c6.case_id}",
        DecisionKind.PROMOTION_BAR,
        (person, staff["s7"]),
        as_of=at(shift(b, -30), 1),
        case_id=c6.case_id,
        in_force_from=at(shift(b, -30), 1).date(),
        in_force_until=at(shift(b, -6), 1).date(),
    )
    p3 = ruling(
        "R-PROMO-2Y",
        f"case:{c2.case_id}",
        DecisionKind.PROMOTION_BAR,
        (person, staff["s8"]),
        as_of=at(b, 25),
        case_id=c2.case_id,
        in_force_from=at(b, 25).date(),
        in_force_until=at(shift(b, 24), 24).date(),
    )
    p3_withdrawn = revised(p3, at=at(b, 28), withdrawn=True)
    v1 = ruling(
        "R-VENDOR-CUTOFF",
        f"case:{c3.case_id}",
        DecisionKind.VENDOR_CUTOFF,
        (company, companies["x"]),
        as_of=at(b, 20),
        case_id=c3.case_id,
        in_force_from=at(b, 20).date(),
        in_force_until=at(shift(b, 24), 19).date(),
    )
    v2 = ruling(
        "R-VENDOR-CUTOFF",
        f"case:{c6.case_id}",
        DecisionKind.VENDOR_CUTOFF,
        (company, companies["y"]),
        as_of=at(before, 25),
        case_id=c6.case_id,
        in_force_from=at(before, 25).date(),
        in_force_until=at(b, 24).date(),
    )
    v2_lifted = ruling(
        "R-VENDOR-CUTOFF",
        f"case:{c6.case_id}:lifted",
        DecisionKind.VENDOR_CUTOFF_LIFTED,
        (company, companies["y"]),
        as_of=at(b, 25, 0),
        case_id=c6.case_id,
        in_force_from=at(b, 25).date(),
    )
    e1 = ruling(
        "R-KICKBACK",
        f"case:{c1.case_id}:upward",
        DecisionKind.ESCALATION,
        (person, staff["s1"]),
        as_of=at(b, 10),
        case_id=c1.case_id,
        escalate_to=EscalationTarget.JUDICIAL_ORGANS,
    )
    e2 = ruling(
        "R-EVERY-COMPLAINT",
        f"case:{c5.case_id}:head",
        DecisionKind.ESCALATION,
        (case, c5.case_id),
        as_of=at(b, 19, 11),
        case_id=c5.case_id,
        escalate_to=EscalationTarget.DEPARTMENT_HEAD,
    )
    e2_withdrawn = revised(e2, at=at(b, 20), withdrawn=True)
    n1 = ruling(
        "R-RECTIFY",
        f"status:{uuid.uuid4()}",
        DecisionKind.NOTICE,
        (department, "nursing"),
        as_of=at(b, 6),
        facts={"item": items["n1"], "status": "refused"},
    )
    n2 = ruling(
        "R-RECTIFY",
        f"status:{uuid.uuid4()}",
        DecisionKind.NOTICE,
        (department, "finance"),
        as_of=at(b, 7),
        facts={"item": items["n2"], "status": "perfunctory"},
    )
    n2_corrected = revised(n2, at=at(b, 9), facts={"item": items["n2b"], "status": "ineffective"})
    n3 = ruling(
        "R-RECTIFY",
        f"status:{uuid.uuid4()}",
        DecisionKind.NOTICE,
        (department, "nursing"),
        as_of=at(b, 8),
        facts={"item": items["n3"], "status": "perfunctory"},
    )
    n3_withdrawn = revised(n3, at=at(b, 11), withdrawn=True)
    decisions = [
        d1,
        d2,
        d3,
        d3_withdrawn,
        d4,
        d4_corrected,
        d5,
        d6,
        p1,
        p2,
        p3,
        p3_withdrawn,
        v1,
        v2,
        v2_lifted,
        e1,
        e2,
        e2_withdrawn,
        n1,
        n2,
        n2_corrected,
        n3,
        n3_withdrawn,
    ]
    await inputs.publish(*decisions)

    def observation(scope: str, metric: str, value: str, on: datetime) -> Event:
        return accepted(
            "kpi_observation", occurred_at=on, metric=metric, scope=scope, period=b, value=value
        )

    def session(department: str, held: datetime, kind: str, attendees: int) -> Event:
        return accepted(
            "training_held",
            occurred_at=held,
            department=department,
            held_on=held.date(),
            topic="廉洁从业九项准则专题学习",
            kind=kind,
            attendee_ids=[f"N{index:04d}" for index in range(attendees)],
            headcount=4,
        )

    await inputs.publish(
        # The later observation (by event time) stands, whatever the order of arrival.
        observation("finance", "test_mutual_recognition", "0.5", at(after, 2)),
        observation("finance", "test_mutual_recognition", "0.9", at(after, 1)),
        observation("finance", "catalogue_drug_use", "85", at(after, 2)),  # a percentage
        observation("finance", "inpatient_wait_days", "5", at(after, 2)),
        observation("medical_affairs", "complaint_investigation_rate", "1", at(after, 2)),
        session("medical_affairs", at(b, 8), "study", 3),
        session("nursing", at(b, 15), "warning_education", 4),
        session("pharmacy", at(before, 28), "study", 4),  # the month before: not this one
    )
    await reporting.caught_up()
    return Scenario(
        month=b, cases=cases, staff=staff, companies=companies, items=items, decisions=decisions
    )


# --- 基本情况 ----------------------------------------------------------------------------------


async def test_basic_counts_every_event_once_even_when_every_record_is_delivered_again(
    reporting: Reporting, inputs: Inputs, months: Months, tokens: Tokens
) -> None:
    a = months.basic
    ours, other = "general_psychiatry", "child_psychiatry"
    staff = fresh("D")

    def complaint_in(category: str, when: datetime, department: str | None = ours) -> Event:
        return complaint(received=when, category=category, accused_department=department)

    def about(event_type: str, when: datetime, **facts: Any) -> Event:
        return accepted(event_type, occurred_at=when, **facts)

    visit = {
        "rep_id": fresh("REP"),
        "rep_name": "王五",
        "company_code": fresh("CO-"),
        "company_name": "某医药公司",
        "department": ours,
        "place_code": "R-101",
        "place_kind": "reception_room",
    }
    events = [
        # Midnight on the 1st in hospital time is still the day before in UTC: it counts here.
        complaint_in("kickback", at(a, 1, 0, 30)),
        complaint_in("kickback", at(a, 5)),
        complaint_in("kickback", at(a, 9)),
        complaint_in("attitude", at(a, 10)),
        complaint_in("attitude", at(a, 11)),
        complaint_in("red_envelope", at(a, 12)),
        complaint_in("gambling", at(a, 12), other),
        complaint_in("other", at(a, 13), None),
        about("visitor_log", at(a, 3), **visit, started_at=at(a, 3)),
        about("visitor_log", at(a, 4), **visit, started_at=at(a, 4)),
        about("satisfaction", at(a, 2), touchpoint="registration", department=ours, score=5),
        about("satisfaction", at(a, 3), touchpoint="settlement", department=ours, score=2),
        # 23:50 on the last day in hospital time: still this month.
        about(
            "satisfaction",
            end_of(a) - timedelta(minutes=10),
            touchpoint="discharge",
            department=ours,
            score=4,
        ),
        # 02:00 on the 1st of the next month in hospital time, though still this month in UTC.
        about(
            "satisfaction",
            end_of(a) + timedelta(hours=2),
            touchpoint="admission",
            department=ours,
            score=3,
        ),
        about(
            "prescription_ranking",
            at(a, 6),
            staff_id=staff,
            department=ours,
            item_code="DRUG-1",
            item_name="某药品",
            item_kind="drug",
            month=a,
            rank=1,
            justified=True,
        ),
        about(
            "training_held",
            at(a, 7),
            department=ours,
            held_on=at(a, 7).date(),
            topic="专题学习",
            kind="study",
            attendee_ids=["N1", "N2"],
            headcount=2,
        ),
        about(
            "kpi_observation",
            at(a, 8),
            metric="inpatient_wait_days",
            scope=ours,
            period=a,
            value="6",
        ),
        about("rectification_status", at(a, 8), department=ours, item="整改事项", status="done"),
        # About no department: in the hospital's report only.
        about(
            "promotion_application",
            at(a, 14),
            staff_id=staff,
            application_id=fresh("HR-"),
            target_position="主治医师",
        ),
        about(
            "investigation_finding",
            at(a, 15),
            case_id=f"CASE-{uuid.uuid4().hex[:20].upper()}",
            substantiated=True,
            confirmed_categories=["kickback"],
            staff_ids=[staff],
            summary="查实。",
        ),
        about(
            "case_action",
            at(a, 16),
            case_id=f"CASE-{uuid.uuid4().hex[:20].upper()}",
            action="start_investigation",
            actor_staff_id="S0101",
        ),
        about(
            "red_envelope_surrender",
            at(a, 17),
            staff_id=staff,
            amount_cny="200.00",
            received_on=at(a, 16).date(),
            surrendered_on=at(a, 17).date(),
        ),
    ]
    assert events[0].occurred_at.astimezone(UTC).strftime("%Y-%m") == shift(a, -1)
    before = await reporting.ends()
    await inputs.publish(*events)
    await reporting.caught_up()
    reporting.clock.now = at(shift(a, 1), 5)

    department = await reporting.monthly(tokens.conduct_office, a, ours)
    assert (department["department"], department["department_zh"]) == (ours, "普通精神科")
    expected = {
        "complaint": 6,
        "satisfaction": 3,
        "visitor_log": 2,
        "kpi_observation": 1,
        "prescription_ranking": 1,
        "rectification_status": 1,
        "training_held": 1,
    }
    assert by_type(department) == expected
    assert [row["event_type"] for row in department["basic"]["by_event_type"]] == list(expected)
    assert department["basic"]["total"] == 15
    assert department["basic"]["complaint_categories"] == [
        {"category": "kickback", "label_zh": "回扣", "count": 3},
        {"category": "attitude", "label_zh": "服务态度", "count": 2},
        {"category": "red_envelope", "label_zh": "红包", "count": 1},
    ]
    assert by_type(await reporting.monthly(tokens.conduct_office, shift(a, 1), ours)) == {
        "satisfaction": 1
    }
    hospital = await reporting.monthly(tokens.conduct_office, a)
    hospital_expected = expected | {
        "complaint": 8,
        "promotion_application": 1,
        "investigation_finding": 1,
        "case_action": 1,
        "red_envelope_surrender": 1,
    }
    assert by_type(hospital) == hospital_expected
    assert hospital["basic"]["total"] == 21
    # A finding's confirmed category is not a complaint's.
    assert by_category(hospital) == {
        "kickback": 3,
        "attitude": 2,
        "red_envelope": 1,
        "gambling": 1,
        "other": 1,
    }

    counted_months = (a, shift(a, 1))
    counted = await stored_counts(reporting.store, counted_months)
    assert sum(tally.count for _, tallies in counted.values() for tally in tallies) == len(events)

    # Stopped and started again with the same groups: nothing is read or counted again.
    await reporting.stop()
    await reporting.start()
    await reporting.caught_up()
    assert await stored_counts(reporting.store, counted_months) == counted
    # Stopped, the commits since these events undone (as after a crash before committing),
    # started with the same groups: every one is delivered again, and none counts twice.
    await reporting.stop()
    await reporting.rewind(to=before)
    assert await reporting.lag() >= len(events)
    await reporting.start()
    await reporting.caught_up()
    assert await stored_counts(reporting.store, counted_months) == counted
    assert await reporting.monthly(tokens.conduct_office, a, ours) == department
    assert await reporting.monthly(tokens.conduct_office, a) == hospital
    # Nothing was counted anew since the start, so no event counter moved.
    samples = await reporting.metrics()
    assert samples[("qinglian_events_total", (("event_type", "complaint"),))] == 0


async def test_two_instances_in_one_consumer_group_count_every_event_exactly_once(
    reporting: Reporting, inputs: Inputs, months: Months, tokens: Tokens
) -> None:
    """A second instance joins the group (the partitions are shared out between the two), one
    leaves and joins again while events are counted: every event counts once."""
    e, ours = months.shared, "general_psychiatry"
    second = Reporting(reporting.settings, reporting.clock, reporting.mongo)
    events: list[Event] = [
        complaint(received=at(e, 1 + n % 27, n % 24), accused_department=ours) for n in range(90)
    ]
    events += [
        accepted(
            "satisfaction",
            occurred_at=at(e, 1 + n % 27, n % 24),
            touchpoint="registration",
            department=ours,
            score=1 + n % 5,
        )
        for n in range(90)
    ]
    await second.start()
    try:
        await inputs.publish(*events[:60])
        await second.stop()  # leaves the group: its partitions go to the other instance
        await inputs.publish(*events[60:120])
        await second.start()  # joins again
        await inputs.publish(*events[120:])
        await reporting.caught_up()
        reporting.clock.now = at(shift(e, 1), 5)
        report = await reporting.monthly(tokens.conduct_office, e, ours)
        assert (await second.monthly(tokens.conduct_office, e, ours)) == report
    finally:
        await second.stop()
    assert by_type(report) == {"complaint": 90, "satisfaction": 90}
    counted = await stored_counts(reporting.store, [e])
    assert sum(tally.count for _, tallies in counted.values() for tally in tallies) == 180
    assert len(counted) > 1  # counted in the documents of several partitions


# --- 推进情况 and 存在问题 -----------------------------------------------------------------------


async def test_progress_and_problems_of_a_month(
    reporting: Reporting, scenario: Scenario, tokens: Tokens
) -> None:
    b = scenario.month
    office = tokens.conduct_office
    reporting.clock.now = at(shift(b, 1), 10)

    finance = await reporting.monthly(office, b, "finance")
    assert datetime.fromisoformat(finance["as_of"]) == end_of(b)
    assert finance["progress"] == {
        "cases_opened": 4,  # c1-c4; c6 was opened the month before
        "investigated": 2,  # c1 on time, c2 late
        "on_time": 1,
        "closed": 1,
        # d1, d2, e1, d4 as corrected, and d6, taken the month after on c1; d3 withdrawn.
        "measures_taken": 5,
    }
    c3, c6 = scenario.cases["c3"], scenario.cases["c6"]
    assert overdue(finance, scenario.case_ids) == [
        (c6.case_id, (end_of(b) - c6.deadline).days),
        (c3.case_id, (end_of(b) - c3.deadline).days),
    ]
    assert all(case["department"] == "finance" for case in finance["problems"]["overdue_cases"])
    assert kpi(finance) == {
        "complaint_investigation_rate": ("0.5000", "shortfall", "computed"),
        "education_coverage": (None, "no_data", None),
        "clinical_head_warning_education": (None, "no_data", None),
        "expert_slots_growth": (None, "no_data", None),
        "day_surgery_growth": (None, "no_data", None),
        "test_mutual_recognition": ("0.5", "shortfall", "observed"),
        "catalogue_drug_use": ("85", "out_of_scale", "observed"),
        "inpatient_wait_days": ("5", "met", "observed"),
        "ethics_in_promotion_rules": (None, "no_data", None),
    }
    assert [row["metric"] for row in finance["problems"]["kpi_shortfalls"]] == [
        "complaint_investigation_rate",
        "test_mutual_recognition",
        "catalogue_drug_use",
    ]
    assert finance["problems"]["without_study"] == [
        {"department": "finance", "department_zh": "财务部", "department_en": "Finance Department"}
    ]
    assert (
        await reporting.read("/v1/reports/kpi", office, period=b, scope="finance")
        == (finance["kpi"])
    )

    medical = await reporting.monthly(office, b, "medical_affairs")
    assert medical["progress"] == {
        "cases_opened": 1,
        "investigated": 0,
        "on_time": 0,
        "closed": 0,
        "measures_taken": 1,
    }
    c5 = scenario.cases["c5"]
    assert overdue(medical, scenario.case_ids) == [(c5.case_id, (end_of(b) - c5.deadline).days)]
    assert kpi(medical)["complaint_investigation_rate"] == ("1", "met", "observed")
    assert kpi(medical)["education_coverage"] == ("0.7500", "shortfall", "computed")
    assert medical["problems"]["without_study"] == []

    hospital = await reporting.monthly(office, b)
    assert hospital["progress"]["cases_opened"] == 5
    assert hospital["progress"]["measures_taken"] == 6  # and d5; e2 was withdrawn
    assert [case_id for case_id, _ in overdue(hospital, scenario.case_ids)] == [
        c6.case_id,
        c5.case_id,
        c3.case_id,
    ]
    assert [named["department"] for named in hospital["problems"]["without_study"]] == [
        code for code in DEPARTMENTS if code not in ("medical_affairs", "nursing")
    ]

    # As of a moment inside the month, what was overdue by then: c2's finding came later.
    reporting.clock.now = inside = at(b, 19, 12)
    c2 = scenario.cases["c2"]
    assert overdue(await reporting.monthly(office, b, "finance"), scenario.case_ids) == [
        (c6.case_id, (inside - c6.deadline).days),
        (c2.case_id, (inside - c2.deadline).days),
    ]

    # Reports are due by the 20th of the next month.
    reporting.clock.now = at(shift(b, 1), 10)
    confirmed = await reporting.confirm(tokens.finance_head, b)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["department"] == "finance"
    assert confirmed.json()["confirmed_by"] == tokens.ids["finance_head"]
    finance = await reporting.monthly(office, b, "finance")
    assert timeliness(finance) == {"finance": "on_time"}
    assert finance["problems"]["reports_not_on_time"] == []
    assert timeliness(await reporting.monthly(office, b, "nursing")) == {"nursing": "pending"}
    assert (await reporting.confirm(tokens.auditor, b, "nursing")).status_code == 403
    assert (await reporting.confirm(tokens.finance_head, b, "nursing")).status_code == 403
    assert (await reporting.confirm(office, b)).status_code == 422

    reporting.clock.now = at(shift(b, 1), 20, 23, 30)
    assert (await reporting.confirm(office, b, "medical_affairs")).status_code == 200
    reporting.clock.now = at(shift(b, 1), 21, 0, 30)
    assert (await reporting.confirm(tokens.nursing_head, b)).status_code == 200
    again = await reporting.confirm(tokens.finance_head, b)  # the first confirmation stands
    assert again.json()["confirmed_at"] == confirmed.json()["confirmed_at"]

    reporting.clock.now = at(shift(b, 1), 25)
    hospital = await reporting.monthly(office, b)
    assert timeliness(hospital) == {
        code: {"finance": "on_time", "medical_affairs": "on_time", "nursing": "late"}.get(
            code, "missing"
        )
        for code in DEPARTMENTS
    }
    assert [row["department"] for row in hospital["problems"]["reports_not_on_time"]] == [
        code for code in DEPARTMENTS if code not in ("finance", "medical_affairs")
    ]
    nursing = await reporting.monthly(tokens.nursing_head, b)
    assert nursing["problems"]["reports_not_on_time"][0]["status_zh"] == "逾期报送"


# --- Roles ------------------------------------------------------------------------------------


async def test_each_role_reads_what_it_may_and_every_case_read_is_logged(
    reporting: Reporting, scenario: Scenario, tokens: Tokens
) -> None:
    b = scenario.month
    office, head, auditor = tokens.conduct_office, tokens.finance_head, tokens.auditor
    c1, c5 = scenario.case_id("c1"), scenario.case_id("c5")
    reporting.clock.now = at(shift(b, 1), 25)

    # A department head: their own department, whatever they ask for.
    own = await reporting.monthly(head, b)
    assert own == await reporting.monthly(office, b, "finance")
    assert own == await reporting.monthly(head, b, "finance")
    for path in ("/v1/reports/monthly", "/v1/reports/monthly/print"):
        refused = await reporting.get(path, head, month=b, department="nursing")
        assert refused.status_code == 403, refused.text
    printed = await reporting.get("/v1/reports/monthly/print", head, month=b)
    assert printed.status_code == 200
    assert f"财务部 {b} 月度工作开展情况" in printed.text
    assert (await reporting.get(f"/v1/reports/cases/{c5}", head)).status_code == 404
    read = await reporting.read(f"/v1/reports/cases/{c1}", head)
    assert read["case"]["case_id"] == c1
    assert read["case"]["department"] == "finance"
    assert read["accessed_by"] == tokens.ids["finance_head"]
    assert CaseFact.model_validate(read["case"]).revision == scenario.cases["c1"].revision
    assert (await reporting.get("/v1/reports/registers/promotion-bars", head)).status_code == 403
    head_register = await reporting.read("/v1/reports/registers/escalations", head)
    finance_cases = {
        fact.case_id for fact in await all_cases(reporting.store) if fact.department == "finance"
    }
    assert {entry["case_id"] for entry in head_register["entries"]} <= finance_cases
    assert {scenario.case_id("c1"), scenario.case_id("c3")} <= {
        entry["case_id"] for entry in head_register["entries"]
    }
    assert head_register["by_rule"] == _counts_of(head_register["entries"])
    head_notices = await reporting.read("/v1/reports/registers/notices", head)
    assert {notice["department"] for notice in head_notices} == {"finance"}

    # The auditor: aggregates only.
    assert (await reporting.get(f"/v1/reports/cases/{c1}", auditor)).status_code == 403
    assert (await reporting.get(f"/v1/reports/cases/{c1}/accesses", auditor)).status_code == 403
    assert (await reporting.get("/v1/reports/registers/promotion-bars", auditor)).status_code == 403
    audited = await reporting.read("/v1/reports/registers/escalations", auditor)
    full = await reporting.read("/v1/reports/registers/escalations", office)
    assert audited["entries"] is None
    assert audited["by_rule"] == full["by_rule"] == _counts_of(full["entries"])
    assert {"R-KICKBACK", "R-EVERY-COMPLAINT"} <= {row["rule_id"] for row in audited["by_rule"]}
    assert await reporting.monthly(auditor, b, "nursing") == await reporting.monthly(
        office, b, "nursing"
    )

    # The conduct office: everything; and who read which case, when.
    assert (await reporting.read(f"/v1/reports/cases/{c5}", office))["case"]["case_id"] == c5
    await reporting.read(f"/v1/reports/cases/{c1}", office)
    accesses = await reporting.read(f"/v1/reports/cases/{c1}/accesses", office)
    assert sorted((a["token_id"], a["role"]) for a in accesses) == sorted(
        [
            (tokens.ids["finance_head"], "department_head"),
            (tokens.ids["conduct_office"], "conduct_office"),
        ]
    )
    assert {datetime.fromisoformat(a["at"]) for a in accesses} == {reporting.clock.now}
    assert [
        a["token_id"] for a in await reporting.read(f"/v1/reports/cases/{c5}/accesses", office)
    ] == [
        tokens.ids["conduct_office"]  # the head's refused read is not an access
    ]
    assert (await reporting.get(f"/v1/reports/cases/{c1}/accesses", head)).status_code == 403
    missing = await reporting.get("/v1/reports/cases/CASE-00000000000000000000", office)
    assert missing.status_code == 404

    # Tokens: none, unknown, malformed, revoked (made and revoked with the command line).
    assert (await reporting.get("/v1/reports/monthly", None, month=b)).status_code == 401
    unknown = f"qlr_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}"
    for bad in (unknown, "not-a-token", office + "x"):
        assert (await reporting.get("/v1/reports/monthly", bad, month=b)).status_code == 401
    created = await _command(
        reporting,
        "services.reporting.tokens",
        "create",
        "--role",
        "department_head",
        "--department",
        "nursing",
        "--label",
        "护理部 测试",
    )
    cli_token = created.stdout.strip()
    cli_id = cli_token.split("_")[1]
    assert (await reporting.monthly(cli_token, b))["department"] == "nursing"
    listed = await _command(reporting, "services.reporting.tokens", "list")
    assert cli_id in listed.stdout
    assert cli_token not in listed.stdout
    await _command(reporting, "services.reporting.tokens", "revoke", cli_id)
    revoked = await reporting.get("/v1/reports/monthly", cli_token, month=b)
    assert revoked.status_code == 401
    assert revoked.headers["www-authenticate"] == "Bearer"

    # A department head signed in at the desk reads the same, in a browser.
    finance = {"department": "finance", "staff_id": CATALOGUE.departments["finance"].head_staff_id}
    async with await _person(reporting, "department_head", **finance) as browser:
        page = await browser.get("/dashboard")
        assert page.status_code == 200, page.text
        assert "行风建设看板" in page.text
        assert f"财务部 {shift(b, 1)}" in page.text
        # The desk's session stands in for the header when reading the API, with the same
        # limits.
        assert (await browser.get(f"/v1/reports/cases/{c5}")).status_code == 404
        assert (await browser.get("/v1/reports/monthly", params={"month": b})).json() == own


def _counts_of(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["rule_id"]] = counts.get(entry["rule_id"], 0) + 1
    return [{"rule_id": rule_id, "count": n} for rule_id, n in sorted(counts.items())]


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def _command(reporting: Reporting, module: str, *arguments: str, check: bool = True) -> Ran:
    """A command-line tool against reporting's broker and database, as an operator runs it."""
    settings = reporting.settings
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *arguments,
        cwd=ROOT,
        env={
            **os.environ,
            "QINGLIAN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "QINGLIAN_MONGO_URL": settings.mongo_url,
            "QINGLIAN_MONGO_DB": settings.mongo_db,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    ran = Ran(process.returncode or 0, stdout.decode(), stderr.decode())
    if check:
        assert ran.returncode == 0, f"{module} {arguments}: {ran.stderr}"
    return ran


# --- Exports ----------------------------------------------------------------------------------


async def test_exports_hold_what_the_json_says(
    reporting: Reporting, scenario: Scenario, tokens: Tokens
) -> None:
    b = scenario.month
    office = tokens.conduct_office
    reporting.clock.now = at(shift(b, 1), 25)
    headers = [header for _, header in MONTHLY_COLUMNS]
    assert headers == ["部分", "项目", "数值", "说明"]

    for department, sheet in (("finance", f"财务部{b}"), (None, f"全院{b}")):
        report = await reporting.monthly(office, b, department)
        expected = table_of(monthly_rows(MonthlyReport.model_validate(report)), MONTHLY_COLUMNS)
        params = {"month": b} | ({} if department is None else {"department": department})
        await exports_match(
            reporting, "/v1/reports/monthly", office, expected, sheet=sheet, **params
        )
        assert expected[1] == ["基本情况", "合计", str(report["basic"]["total"]), ""]
        if department == "finance":
            assert ["推进情况", "本月受理案件", "4", ""] in expected
            assert ["推进情况", "处理措施", "5", ""] in expected
            c3 = scenario.cases["c3"]
            overdue_row = next(row for row in expected if row[1] == c3.case_id)
            assert overdue_row[0] == "存在问题·逾期案件"
            assert overdue_row[3].startswith("财务部 期限 ")
            assert ["存在问题·本月未开展专题学习", "财务部", "", ""] in expected
            assert [
                "存在问题·指标未达标",
                "检查结果互认率",
                "50.00%",
                "未达标；目标 ≥ 80.00%",
            ] in expected

    answer = await reporting.get("/v1/reports/monthly", office, month=b, format="csv")
    assert f"{b}.csv" in answer.headers["content-disposition"]
    assert (
        await reporting.get("/v1/reports/monthly", office, month=b, format="pdf")
    ).status_code == 422

    registers: list[tuple[str, str, list[tuple[str, str]]]] = [
        (
            "promotion-bars",
            "提职晋级限制",
            [
                ("staff_id", "工号"),
                ("case_id", "案件"),
                ("barred_from", "起始日"),
                ("barred_until", "截止日"),
                ("in_force", "是否在期"),
                ("explanation_zh", "说明"),
            ],
        ),
        (
            "vendor-cutoffs",
            "切断业务往来",
            [
                ("company_code", "企业代码"),
                ("case_id", "案件"),
                ("cut_off_from", "起始日"),
                ("cut_off_until", "截止日"),
                ("lifted", "已恢复"),
                ("explanation_zh", "说明"),
            ],
        ),
        (
            "notices",
            "通报",
            [
                ("department_zh", "科室"),
                ("as_of", "日期"),
                ("item", "整改事项"),
                ("explanation_zh", "说明"),
            ],
        ),
    ]
    for name, sheet, columns in registers:
        rows = await reporting.read(f"/v1/reports/registers/{name}", office)
        assert rows, name
        path = f"/v1/reports/registers/{name}"
        await exports_match(reporting, path, office, table_of(rows, columns), sheet=sheet)
    register = await reporting.read("/v1/reports/registers/escalations", office)
    entry_columns = [
        ("rule_id", "规则"),
        ("escalate_to_zh", "上报至"),
        ("subject", "对象"),
        ("case_id", "案件"),
        ("as_of", "日期"),
        ("explanation_zh", "说明"),
    ]
    await exports_match(
        reporting,
        "/v1/reports/registers/escalations",
        office,
        table_of(register["entries"], entry_columns),
        sheet="上报清单",
    )
    counted = await reporting.read("/v1/reports/registers/escalations", tokens.auditor)
    await exports_match(
        reporting,
        "/v1/reports/registers/escalations",
        tokens.auditor,
        table_of(counted["by_rule"], [("rule_id", "规则"), ("count", "件数")]),
        sheet="上报统计",
    )
    statuses = await reporting.read("/v1/reports/kpi", office, period=b, scope="finance")
    kpi_table = table_of(
        kpi_rows([KpiStatus.model_validate(s) for s in statuses], CATALOGUE), KPI_COLUMNS
    )
    await exports_match(
        reporting, "/v1/reports/kpi", office, kpi_table, sheet="指标", period=b, scope="finance"
    )
    # Rates as percentages, days as days, the department by name; the JSON keeps fractions.
    assert kpi_table[0] == ["指标", "范围", "期间", "数值", "比较", "目标", "状态", "来源", "依据"]
    rows = {row[0]: row[1:8] for row in kpi_table[1:]}
    assert rows["投诉查处率"] == ["财务部", b, "50.00%", "≥", "100.00%", "未达标", "本系统计算"]
    assert rows["住院患者平均等待天数"][2:6] == ["5", "≤", "7", "达标"]
    assert {s["metric"]: s["value"] for s in statuses}["complaint_investigation_rate"] == "0.5000"


async def test_exports_keep_text_a_spreadsheet_would_run_from_running(
    reporting: Reporting, inputs: Inputs, scenario: Scenario, tokens: Tokens
) -> None:
    b = scenario.month
    reporting.clock.now = at(shift(b, 1), 25)
    # A rectification item as a department could word it to leak the sheet when opened.
    item = f'=HYPERLINK("http://example.invalid/{fresh("")}?"&A1,"整改详情")'
    notice = ruling(
        "R-RECTIFY",
        f"status:{uuid.uuid4()}",
        DecisionKind.NOTICE,
        (SubjectKind.DEPARTMENT, "laboratory"),
        as_of=at(b, 9),
        facts={"item": item, "status": "perfunctory"},
    )
    await inputs.publish(notice)
    await reporting.caught_up()
    path, office = "/v1/reports/registers/notices", tokens.conduct_office

    (row,) = [r for r in csv_rows(await reporting.get(path, office, format="csv")) if item in r[2]]
    assert row[:3] == ["检验科", hospital_time(at(b, 9)), "'" + item]

    answer = await reporting.get(path, office, format="xlsx")
    xlsx_rows(answer, "通报")  # no formula anywhere in the sheet
    sheet = load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    (cell,) = [c for c in sheet["C"] if c.value == item]
    assert (cell.data_type, cell.quotePrefix) == ("s", True)
    assert sheet.cell(cell.row, 1).value == "检验科"


async def test_the_case_view_shows_every_change_and_every_refused_action_with_its_reason(
    reporting: Reporting, inputs: Inputs, scenario: Scenario, tokens: Tokens
) -> None:
    after = shift(scenario.month, 1)
    reporting.clock.now = at(after, 25)

    def action(case: CaseUpdated, on: datetime, **facts: Any) -> CaseUpdated:
        event = accepted(
            "case_action", occurred_at=on, case_id=case.case_id, actor_staff_id="S0101", **facts
        )
        assert isinstance(event, CaseActionReceived)
        return take_action(case, event, ROUTING, now=on)

    opened = routed_case(complaint(received=at(after, 2), category="kickback"), now=at(after, 2))
    close_early = action(opened, at(after, 3), action="close", reason="拟结案")
    same_department = action(
        close_early, at(after, 4), action="reassign", to_department="finance", reason="重新分派"
    )
    reassigned = action(
        same_department,
        at(after, 5),
        action="reassign",
        to_department="medical_affairs",
        reason="涉及服务流程，改由医务部调查",
    )
    # The router answers none of these actions' senders (intake has long said 202): reporting
    # is where the office sees what became of them, whatever order the revisions come in.
    await inputs.publish(reassigned, opened, same_department, close_early)
    await reporting.caught_up()

    view = await reporting.read(f"/v1/reports/cases/{opened.case_id}", tokens.conduct_office)

    assert view["case"]["revision"] == reassigned.revision
    assert view["case"]["department"] == "medical_affairs"
    steps = [
        (step["change"], step["change_zh"], step["state_zh"], step["by"], step["note"])
        for step in view["history"]
    ]
    assert steps[-3:] == [
        ("refused", "操作被拒绝", "已分派", "S0101", "结案被拒绝：尚无调查结论"),
        ("refused", "操作被拒绝", "已分派", "S0101", "改派被拒绝：已由该科室负责"),
        ("reassigned", "改派", "已分派", "S0101", "涉及服务流程，改由医务部调查"),
    ]
    assert [step["change"] for step in view["history"]] == [
        str(entry.change) for entry in reassigned.history
    ]
    assert [datetime.fromisoformat(step["at"]) for step in view["history"]] == [
        entry.at for entry in reassigned.history
    ]
    departments = {
        (step["department"], step["department_zh"], step["department_en"])
        for step in view["history"]
        if step["department"]
    }
    assert departments == {
        ("finance", "财务部", "Finance Department"),
        ("medical_affairs", "医务部（行风办）", "Medical Affairs Department (Conduct Office)"),
    }
    record = await reporting.store.case(opened.case_id)
    assert record is not None
    assert record.history == reassigned.history


# --- Registers --------------------------------------------------------------------------------


async def test_registers_keep_the_standing_decisions(
    reporting: Reporting, scenario: Scenario, tokens: Tokens
) -> None:
    b = scenario.month
    office = tokens.conduct_office
    staff, companies, items = scenario.staff, scenario.companies, scenario.items
    reporting.clock.now = at(shift(b, 1), 25)
    today = reporting.clock.now.date()

    bars = {
        bar["staff_id"]: bar
        for bar in await reporting.read("/v1/reports/registers/promotion-bars", office)
        if bar["staff_id"] in staff.values()
    }
    assert set(bars) == {staff["s1"], staff["s7"]}  # s8's bar was withdrawn
    in_force = bars[staff["s1"]]
    assert in_force["case_id"] == scenario.case_id("c1")
    assert date.fromisoformat(in_force["barred_until"]) >= today
    assert in_force["in_force"] is True
    assert bars[staff["s7"]]["in_force"] is False

    cutoffs = {
        cutoff["company_code"]: cutoff
        for cutoff in await reporting.read("/v1/reports/registers/vendor-cutoffs", office)
        if cutoff["company_code"] in companies.values()
    }
    assert {code: cutoff["lifted"] for code, cutoff in cutoffs.items()} == {
        companies["x"]: False,
        companies["y"]: True,
    }
    assert cutoffs[companies["x"]]["case_id"] == scenario.case_id("c3")
    assert (await reporting.read("/v1/reports/registers/vendor-cutoffs", tokens.auditor)) == (
        await reporting.read("/v1/reports/registers/vendor-cutoffs", office)
    )

    register = await reporting.read("/v1/reports/registers/escalations", office)
    ours = sorted(
        (entry["rule_id"], entry["case_id"], entry["escalate_to"], entry["escalate_to_zh"])
        for entry in register["entries"]
        if entry["case_id"] in scenario.case_ids
    )
    assert ours == [  # c5's escalation was withdrawn
        ("R-EVERY-COMPLAINT", scenario.case_id("c3"), "department_head", "科室负责人"),
        ("R-KICKBACK", scenario.case_id("c1"), "judicial_organs", "司法机关"),
    ]
    subjects = {entry["case_id"]: entry["subject"] for entry in register["entries"]}
    assert subjects[scenario.case_id("c1")] == f"staff:{staff['s1']}"

    found = {
        notice["item"]: notice["department"]
        for notice in await reporting.read("/v1/reports/registers/notices", office)
        if notice["item"] in items.values()
    }
    assert found == {items["n1"]: "nursing", items["n2b"]: "finance"}  # n2 corrected, n3 withdrawn
    assert [
        notice["item"]
        for notice in await reporting.read("/v1/reports/registers/notices", tokens.nursing_head)
        if notice["item"] in items.values()
    ] == [items["n1"]]

    # A decision published again (a redelivery upstream) changes nothing.
    decisions = await all_decisions(reporting.store)
    assert {d.event_id for d in scenario.decisions} <= {d.event_id for d in decisions}
    expected_bars = promotion_bars(decisions, today=today)
    assert [bar for bar in expected_bars if bar.staff_id in staff.values()] == [
        bar
        for bar in promotion_bars(scenario.decisions, today=today)
        if bar.staff_id in staff.values()
    ]
    assert [c for c in vendor_cutoffs(decisions) if c.company_code in companies.values()] == (
        vendor_cutoffs(scenario.decisions)
    )
    assert [n for n in notices(decisions, CATALOGUE) if n.item in items.values()] == notices(
        scenario.decisions, CATALOGUE
    )


# --- Dead letters and gauges ------------------------------------------------------------------


async def test_dead_letters_are_counted_and_case_gauges_are_kept(
    reporting: Reporting, inputs: Inputs, scenario: Scenario, tokens: Tokens
) -> None:
    b = scenario.month
    reporting.clock.now = at(shift(b, 1), 25)
    dead = ("qinglian_events_total", (("event_type", "dead_letter"),))
    before = (await reporting.metrics())[dead]

    await inputs.publish(dead_letter(at=at(b, 14)))

    async def counted() -> bool:
        return (await reporting.metrics())[dead] == before + 1

    await eventually(counted, within=30, what="the dead letter to be counted")
    hospital = await reporting.monthly(tokens.conduct_office, b)
    assert by_type(hospital)["dead_letter"] == 1
    finance = await reporting.monthly(tokens.conduct_office, b, "finance")
    assert "dead_letter" not in by_type(finance)

    async def gauges_match() -> bool:
        facts = await all_cases(reporting.store)
        now = reporting.clock.now
        samples = await reporting.metrics()
        return samples.get(("qinglian_cases", (("status", "open"),))) == sum(
            fact.closed_at is None for fact in facts
        ) and samples.get(("qinglian_cases", (("status", "overdue"),))) == sum(
            fact.overdue(now) for fact in facts
        )

    await eventually(gauges_match, within=10, what="the case gauges")
    samples = await reporting.metrics()
    mine = [case for name, case in scenario.cases.items() if name != "c1"]  # c1 is closed
    assert samples[("qinglian_cases", (("status", "open"),))] >= len(mine)
    assert samples[("qinglian_cases", (("status", "overdue"),))] >= 4  # c3, c4, c5, c6
    assert (
        samples[("qinglian_escalations_total", (("kind", "escalation"), ("rule_id", "R-KICKBACK")))]
        >= 1
    )


# --- A case against a department's head ------------------------------------------------------


async def test_a_complaint_against_a_department_head_is_invisible_to_them_everywhere(
    reporting: Reporting, inputs: Inputs, months: Months, tokens: Tokens
) -> None:
    c = months.accused_head
    head, office = tokens.finance_head, tokens.conduct_office
    finance_head = CATALOGUE.departments["finance"].head_staff_id
    against_head = complaint(
        received=at(c, 3),
        category="procurement",
        accused_staff_id=finance_head,
        accused_department="finance",
    )
    conflict = routed_case(against_head)
    assert conflict.responsible_department.code == "discipline_inspection"  # 利益冲突
    ordinary = complaint(received=at(c, 4), accused_department="finance")
    routine = routed_case(ordinary)
    assert routine.responsible_department.code == "finance"
    # Routed to finance before its accused became finance's head (the directory changed since).
    named = complaint(
        received=at(c, 5), accused_staff_id=finance_head, accused_department="pharmacy"
    )
    earlier = routed_case(named).model_copy(
        update={"responsible_department": CATALOGUE.department("finance")}
    )
    hidden = {conflict.case_id, earlier.case_id}

    def overdue_escalation(case: CaseUpdated) -> Decision:
        return ruling(
            "R-EVERY-COMPLAINT",
            f"case:{case.case_id}:head",
            DecisionKind.ESCALATION,
            (SubjectKind.CASE, case.case_id),
            as_of=case.deadline,
            case_id=case.case_id,
            escalate_to=EscalationTarget.DEPARTMENT_HEAD,
        )

    measure = ruling(
        "R-KICKBACK",
        f"case:{conflict.case_id}:measure",
        DecisionKind.MEASURE,
        (SubjectKind.STAFF, finance_head),
        as_of=at(c, 15),
        case_id=conflict.case_id,
        measure=Measure.INTERVIEW,
    )
    await inputs.publish(
        against_head,
        ordinary,
        named,
        conflict,
        routine,
        earlier,
        measure,
        *map(overdue_escalation, (conflict, routine, earlier)),
    )
    await reporting.caught_up()
    reporting.clock.now = at(c, 25)  # all three overdue; the dashboard's month is C

    own = await reporting.monthly(head, c)
    assert by_type(own) == {"complaint": 1}
    assert by_category(own) == {"kickback": 1}
    assert own["progress"]["cases_opened"] == 1
    mine = {*hidden, routine.case_id}
    assert overdue(own, mine) == [(routine.case_id, (at(c, 25) - routine.deadline).days)]

    def reveals(text: str) -> list[str]:
        return [name for name in (*hidden, "招采/期权腐败") if name in text]

    for path, params in (
        ("/v1/reports/monthly", {"month": c}),
        ("/v1/reports/monthly", {"month": c, "format": "csv"}),
        ("/v1/reports/monthly/print", {"month": c}),
        ("/v1/reports/kpi", {"period": c}),
        ("/v1/reports/registers/escalations", {}),
        ("/v1/reports/registers/escalations", {"format": "csv"}),
        ("/v1/reports/registers/notices", {}),
    ):
        answer = await reporting.get(path, head, **params)
        assert answer.status_code == 200, (path, answer.text)
        assert reveals(answer.content.decode("utf-8-sig")) == [], (path, params)
    register = await reporting.read("/v1/reports/registers/escalations", head)
    assert routine.case_id in {entry["case_id"] for entry in register["entries"]}
    missing = await reporting.get("/v1/reports/cases/CASE-00000000000000000000", head)
    for case_id in hidden:
        refused = await reporting.get(f"/v1/reports/cases/{case_id}", head)
        assert (refused.status_code, refused.json()) == (404, missing.json())
    assert (await reporting.get(f"/v1/reports/cases/{routine.case_id}", head)).status_code == 200

    head_of_finance = {"department": "finance", "staff_id": finance_head}
    async with await _person(reporting, "department_head", **head_of_finance) as browser:
        page = await browser.get("/dashboard")
        assert page.status_code == 200, page.text
        assert reveals(page.text) == []

    # Counted where it is handled: by 纪检监察室, and once in the hospital's report.
    handling = await reporting.monthly(office, c, "discipline_inspection")
    assert by_type(handling) == {"complaint": 1}
    assert by_category(handling) == {"procurement": 1}
    progress = handling["progress"]
    assert (progress["cases_opened"], progress["measures_taken"]) == (1, 2)  # and its escalation
    hospital = await reporting.monthly(office, c)
    assert by_type(hospital) == {"complaint": 3}
    assert by_category(hospital) == {"procurement": 1, "kickback": 2}
    assert hospital["progress"]["cases_opened"] == 3
    assert hidden <= {case["case_id"] for case in hospital["problems"]["overdue_cases"]}


async def test_a_head_gets_the_same_answer_for_another_department_s_case_as_for_a_missing_one(
    reporting: Reporting, scenario: Scenario, tokens: Tokens
) -> None:
    head = tokens.finance_head
    missing = await reporting.get("/v1/reports/cases/CASE-00000000000000000000", head)
    others = await reporting.get(f"/v1/reports/cases/{scenario.case_id('c5')}", head)

    assert missing.status_code == others.status_code == 404
    assert others.json() == missing.json()
    assert scenario.case_id("c5") not in others.text


# --- One sign-in: people sign in at the desk ---------------------------------------------------


async def _person(reporting: Reporting, role: str, **options: str) -> httpx.AsyncClient:
    """A browser whose person (new, with ``role``) signed in at the desk, sending the desk's
    cookie to reporting, as a browser does (cookies belong to the host, not the port)."""
    assert reporting.desk is not None
    assert reporting.app is not None
    username = f"{role}-{uuid.uuid4().hex[:6]}"
    one_time = await reporting.desk.account(username, role, **options)
    at_the_desk = desk_client(reporting.desk.http._transport)
    await sign_in_anew(at_the_desk, username, one_time, PASSWORD)
    browser = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=reporting.app), base_url="http://reporting"
    )
    browser.cookies.set(DESK_SESSION_COOKIE, at_the_desk.cookies[DESK_SESSION_COOKIE])
    return browser


def _to_the_desk_s_sign_in(answer: httpx.Response) -> bool:
    """Sent to the desk's sign-in page, which is to send the browser back to the dashboard."""
    return answer.status_code == 303 and answer.headers["location"] == (
        "http://127.0.0.1:8105/login?next=http%3A%2F%2Freporting%2Fdashboard"
    )


async def test_people_sign_in_at_the_desk_and_a_signed_out_browser_is_sent_there(
    reporting: Reporting, scenario: Scenario, tokens: Tokens
) -> None:
    month = {"month": scenario.month}
    reporting.clock.now = at(shift(scenario.month, 1), 25)
    assert reporting.app is not None
    assert reporting.desk is not None
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=reporting.app), base_url="http://reporting"
    ) as signed_out:
        # No cookie, a made-up one, a report token as a cookie: no one is signed in.
        for cookie in (None, "made-up-session-id-0000000000", tokens.finance_head):
            if cookie is not None:
                signed_out.cookies.set(DESK_SESSION_COOKIE, cookie)
            assert _to_the_desk_s_sign_in(await signed_out.get("/dashboard")), cookie
            answer = await signed_out.get("/v1/reports/monthly", params=month)
            assert answer.status_code == 401, cookie
        # The former sign-in page of the reports leads there too; tokens are for machines.
        assert _to_the_desk_s_sign_in(await signed_out.get("/login"))
        posted = await signed_out.post("/login", data={"token": tokens.finance_head})
        assert posted.status_code == 405

    expectations = {
        # role, department shown, what the open-cases tile opens
        "conduct_office": ("全院", True),
        "discipline_inspection": ("全院", True),
        "leadership": ("全院", True),
        "auditor": ("全院", False),
    }
    for role, (shown, with_cases) in expectations.items():
        async with await _person(reporting, role, staff_id="S9901") as browser:
            page = await browser.get("/dashboard")
            assert page.status_code == 200, (role, page.text)
            assert shown in page.text, role
            opens = 'href="http://127.0.0.1:8105/cases?state=open"' in page.text
            assert opens is with_cases, role
            assert page.headers["content-security-policy"].startswith("default-src 'none'")
            # Reading, yes; changing what is kept takes a token (no other page of this host
            # can make a signed-in browser confirm a report).
            assert (await browser.get("/v1/reports/monthly", params=month)).status_code == 200
            confirm = await browser.post("/v1/reports/monthly/confirm", params=month)
            assert confirm.status_code == 401, role
    async with await _person(reporting, "admin") as admin:
        assert (await admin.get("/dashboard")).status_code == 403

    # Signing out at the desk signs out of the reports.
    finance = {"department": "finance", "staff_id": CATALOGUE.departments["finance"].head_staff_id}
    async with await _person(reporting, "department_head", **finance) as browser:
        assert (await browser.get("/dashboard")).status_code == 200
        assert await reporting.desk.desk.sessions.end(browser.cookies[DESK_SESSION_COOKIE])
        assert _to_the_desk_s_sign_in(await browser.get("/dashboard"))

        # A desk that cannot be asked: the page says so (503), it does not send the browser
        # to sign in again.
        unreachable = create_app(
            reporting.settings.model_copy(update={"desk_url": "http://127.0.0.1:9"}),
            clock=reporting.clock,
        )
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=unreachable), base_url="http://reporting"
            ) as cut_off:
                cut_off.cookies.set(DESK_SESSION_COOKIE, browser.cookies[DESK_SESSION_COOKIE])
                assert (await cut_off.get("/dashboard")).status_code == 503
        finally:
            await unreachable.state.service.mongo.close()


def _tile(page: str, tile: str) -> int:
    found = re.search(rf'id="{tile}">(?:<a [^>]*>)?<b>(\d+)</b>', page)
    assert found, tile
    return int(found.group(1))


def _bar(page: str, label: str) -> int:
    found = re.search(rf'data-label="{label}" data-value="(\d+)"', page)
    assert found, label
    return int(found.group(1))


async def _against_a_leader_and_another(
    reporting: Reporting, inputs: Inputs, month: str
) -> tuple[str, ComplaintReceived, ComplaintReceived]:
    """In ``month``, a complaint against a new leader and one against nobody named, both
    routed to imaging, counted by reporting: the leader, and the two complaints."""
    leader = fresh("L")
    against = complaint(
        received=at(month, 3), accused_staff_id=leader, accused_department="imaging"
    )
    other = complaint(received=at(month, 4), accused_department="imaging")
    await inputs.publish(against, routed_case(against), other, routed_case(other))
    await reporting.caught_up()
    return leader, against, other


async def test_a_case_against_the_reader_is_in_no_figure_shown_to_them_whatever_their_role(
    reporting: Reporting, inputs: Inputs
) -> None:
    month = f"{random.randrange(3001, 9999)}-06"  # after every month the other tests draw
    leader, against, other = await _against_a_leader_and_another(reporting, inputs, month)
    reporting.clock.now = at(shift(month, 1), 25)  # both overdue by then

    async with (
        await _person(reporting, "leadership", staff_id=leader) as theirs,
        await _person(reporting, "conduct_office", staff_id=fresh("S")) as office,
    ):
        for_them, for_office = await theirs.get("/dashboard"), await office.get("/dashboard")
        assert _bar(for_office.text, month[2:]) == 2
        assert _bar(for_them.text, month[2:]) == 1
        assert _tile(for_office.text, "open-cases") - _tile(for_them.text, "open-cases") == 1
        assert _tile(for_office.text, "overdue-cases") - _tile(for_them.text, "overdue-cases") == 1
        case_id = routed_case(against).case_id
        printed = {"month": month}
        assert case_id in (await office.get("/v1/reports/monthly/print", params=printed)).text
        mine = await theirs.get("/v1/reports/monthly/print", params=printed)
        assert mine.status_code == 200
        assert case_id not in mine.text
        assert routed_case(other).case_id in mine.text


async def test_a_complaint_against_the_reader_is_in_no_count_shown_to_them(
    reporting: Reporting, inputs: Inputs
) -> None:
    month = f"{random.randrange(3001, 9999)}-07"  # after every month the other tests draw
    leader, _, _ = await _against_a_leader_and_another(reporting, inputs, month)
    reporting.clock.now = at(month, 20)

    async with (
        await _person(reporting, "leadership", staff_id=leader) as theirs,
        await _person(reporting, "conduct_office", staff_id=fresh("S")) as office,
    ):
        for_them, for_office = await theirs.get("/dashboard"), await office.get("/dashboard")
        events = "events-this-month"
        assert _tile(for_office.text, events) - _tile(for_them.text, events) == 1
        asked = {"month": month}
        mine = (await theirs.get("/v1/reports/monthly", params=asked)).json()["basic"]
        all_ = (await office.get("/v1/reports/monthly", params=asked)).json()["basic"]
        assert all_["total"] == 2
        assert mine["total"] == 1
        assert [c["count"] for c in mine["complaint_categories"]] == [1]


# --- One counting basis: 受理 ------------------------------------------------------------------


async def test_every_section_of_a_month_counts_what_the_hospital_received_in_it(
    reporting: Reporting, inputs: Inputs, months: Months, tokens: Tokens
) -> None:
    d = months.received
    before, after = shift(d, -1), shift(d, 1)
    office = tokens.conduct_office
    last_evening, first_morning = end_of(before) - timedelta(hours=2), at(d, 1, 9)
    staff = fresh("D")
    # Happened on the last evening of the month before; the hospital received it on the 1st.
    late = accepted(
        "complaint",
        occurred_at=last_evening,
        received_at=first_morning,
        channel="mailbox",
        category="attitude",
        accused_staff_id=staff,
        accused_department="medical_affairs",
        description="服务态度差。",
    )
    assert isinstance(late, ComplaintReceived)
    case = with_finding(routed_case(late), on=at(after, 3), staff=staff)
    assert case.responsible_department.code == "medical_affairs"
    # The measure rests on the finding, made the month after.
    measure = ruling(
        "R-KICKBACK",
        f"case:{case.case_id}:measure",
        DecisionKind.MEASURE,
        (SubjectKind.STAFF, staff),
        as_of=at(after, 3),
        case_id=case.case_id,
        measure=Measure.INTERVIEW,
    )
    rating = accepted(
        "satisfaction",
        occurred_at=last_evening,
        received_at=first_morning,
        touchpoint="discharge",
        department="medical_affairs",
        score=4,
    )
    session = accepted(
        "training_held",
        occurred_at=last_evening,
        received_at=first_morning,
        department="medical_affairs",
        held_on=last_evening.date(),
        topic="专题学习",
        kind="study",
        attendee_ids=["N1"],
        headcount=1,
    )
    await inputs.publish(late, rating, session, case, measure)
    await reporting.caught_up()
    reporting.clock.now = at(shift(d, 2), 5)

    expected = {
        before: ({}, 0, 0, 0),
        d: ({"complaint": 1, "satisfaction": 1, "training_held": 1}, 1, 1, 1),
        after: ({}, 0, 0, 0),
    }
    for month, (counted, opened, investigated, measures) in expected.items():
        for department in (None, "medical_affairs"):
            report = await reporting.monthly(office, month, department)
            progress = report["progress"]
            assert by_type(report) == counted, (month, department)
            assert (
                progress["cases_opened"],
                progress["investigated"],
                progress["measures_taken"],
            ) == (opened, investigated, measures), (month, department)
            assert kpi(report)["complaint_investigation_rate"][0] == ("1.0000" if opened else None)
    # Study is judged by the day a session was held (R-MONTHLY-STUDY), not by its arrival.
    assert (await reporting.monthly(office, before, "medical_affairs"))["problems"][
        "without_study"
    ] == []
    without = (await reporting.monthly(office, d, "medical_affairs"))["problems"]["without_study"]
    assert [department["department"] for department in without] == ["medical_affairs"]


# --- Rebuild ----------------------------------------------------------------------------------


async def test_a_rebuild_from_the_topics_gives_the_same_reports(
    reporting: Reporting, scenario: Scenario, months: Months, tokens: Tokens
) -> None:
    b = scenario.month
    reporting.clock.now = at(shift(b, 1), 25)
    await reporting.caught_up()
    rebuilt_name = f"{reporting.settings.mongo_db}_rebuilt"

    ran = await _command(reporting, "services.reporting.rebuild", "--into", rebuilt_name)
    summary = json.loads(ran.stdout)
    assert summary["database"] == rebuilt_name
    assert summary["unreadable"] == []
    assert summary["records"] > 0

    live = reporting.store
    rebuilt = ReportStore(MongoDocuments(reporting.mongo[rebuilt_name]))

    async def counts(store: ReportStore) -> dict[str, Any]:
        return await stored_counts(store, months.all)

    assert await counts(rebuilt) == await counts(live)
    assert await counts(live)

    def ours(report: MonthlyReport) -> dict[str, Any]:
        dumped = report.model_dump(mode="json")
        dumped["problems"]["overdue_cases"] = [
            case
            for case in dumped["problems"]["overdue_cases"]
            if case["case_id"] in scenario.case_ids
        ]
        return dumped

    for month in months.all:
        for department in (None, *DEPARTMENTS):
            live_report, rebuilt_report = [
                monthly_report(
                    await store.month_data(month, department),
                    month=month,
                    department=department,
                    catalogue=CATALOGUE,
                    targets=TARGETS,
                    study=STUDY,
                    now=reporting.clock.now,
                )
                for store in (live, rebuilt)
            ]
            assert ours(rebuilt_report) == ours(live_report), (month, department)
    served = await reporting.monthly(tokens.conduct_office, b)
    assert served["basic"]["total"] > 0
    assert (
        served["timeliness"]
        == ours(
            monthly_report(
                await rebuilt.month_data(b, None),
                month=b,
                department=None,
                catalogue=CATALOGUE,
                targets=TARGETS,
                study=STUDY,
                now=reporting.clock.now,
            )
        )["timeliness"]
    )

    today = reporting.clock.now.date()
    live_decisions, rebuilt_decisions = await all_decisions(live), await all_decisions(rebuilt)
    staff, companies = set(scenario.staff.values()), set(scenario.companies.values())
    items = set(scenario.items.values())
    for decisions_of in (live_decisions, rebuilt_decisions):
        assert {d.event_id for d in scenario.decisions} <= {d.event_id for d in decisions_of}

    def registers(decisions: list[Decision]) -> tuple[list[Any], ...]:
        return (
            [bar for bar in promotion_bars(decisions, today=today) if bar.staff_id in staff],
            [cut for cut in vendor_cutoffs(decisions) if cut.company_code in companies],
            [e for e in escalations(decisions)[0] if e.case_id in scenario.case_ids],
            [notice for notice in notices(decisions, CATALOGUE) if notice.item in items],
        )

    assert registers(rebuilt_decisions) == registers(live_decisions)
    live_cases = {f.case_id: f for f in await all_cases(live) if f.case_id in scenario.case_ids}
    rebuilt_cases = {
        f.case_id: f for f in await all_cases(rebuilt) if f.case_id in scenario.case_ids
    }
    assert rebuilt_cases == live_cases
    assert len(live_cases) == len(scenario.cases)
    for case_id in scenario.case_ids:
        assert await rebuilt.case(case_id) == await live.case(case_id)

    # What the topics cannot give back comes along: tokens, confirmations, the access log.
    for collection in ("reporting_tokens", "reporting_confirmations", "reporting_access_log"):
        copied = [
            doc async for doc in reporting.mongo[rebuilt_name][collection].find({}).sort("_id")
        ]
        kept = [doc async for doc in reporting.db[collection].find({}).sort("_id")]
        assert copied == kept, collection
        assert kept, collection

    # A database that holds anything is refused, and left as it was.
    before = await counts(rebuilt)
    refused = await _command(
        reporting, "services.reporting.rebuild", "--into", rebuilt_name, check=False
    )
    assert refused.returncode != 0
    assert f"database {rebuilt_name!r} is not empty" in refused.stderr
    assert await counts(rebuilt) == before
