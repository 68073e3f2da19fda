"""Escalation throughput: the rule engine alone, in process, and the escalation service on a
real broker and store.

    .venv/bin/python -m bench.escalation_throughput                  # 2000 events
    .venv/bin/python -m bench.escalation_throughput --events 300     # a quick run
    .venv/bin/python -m bench.escalation_throughput --engine-only    # no broker, no store

Its own Kafka and FerretDB (.local/bench-escalation). Prints JSON with:

- ``engine``: ``rules.evaluate`` then ``conduct.reconcile`` over realistic conduct files built
  in memory (staff, company, department and case files), each evaluated whole and reconciled
  against what was published before its latest event; rates from the fastest round.
- ``service_feed_in_process``: the service's feed, one event at a time through the steps of
  ``filing.Escalation.update`` on files in a dict (rules only, then with the store's
  (de)serialisation, best of 3); then the feed's first --store-replay-events over FerretDB
  through the store adapter, each step timed.
- ``service``: ``python -m services.escalation`` (the clock check pushed a year away), warmed
  up, then the feed published as intake publishes it; timed until its /metrics count every
  event handled; then the store checked (every event in each of its files, once) and the
  decisions topic read. CPU per event of the service, FerretDB and Kafka from /proc.
"""

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import bson
import httpx
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import report
from bench.harness.kafka import kind_of, partitions_of, producer, publish, reader
from bench.harness.processes import (
    CpuWindow,
    Metrics,
    by_label,
    cpu_seconds,
    scrape,
    start_service,
    stop_service,
    total,
)
from bench.harness.runtime import Deadline, Runtime, free_port, tag
from bench.harness.year import Hospital, routing
from schemas import topics
from schemas.base import Event
from schemas.case import derive_case_id
from schemas.complaint import ComplaintCategory, ComplaintReceived
from schemas.decision import Decision, SubjectKind
from schemas.finding import InvestigationFindingReceived
from schemas.visitor_log import PlaceKind
from services.common.documents import MongoDocuments
from services.common.store import Document
from services.escalation.conduct import ConductFile, FileEvent, reconcile, subject_key, subjects_of
from services.escalation.filing import FileUpdate, Sent, decide_again, with_events
from services.escalation.rulebook import RuleBook
from services.escalation.rules import depends_on_clock, evaluate
from services.escalation.settings import EscalationSettings
from services.escalation.store import EscalationStore, Watched
from services.router.domain import Opening, open_case, record_finding

RUNTIME = Runtime.of("bench-escalation", 49192, 47128, 48198, 45132)
SERVICE_PORTS = range(8700, 8800)
CLOCK_CHECK_SECONDS = 365 * 86400.0
HANDLED = "faststream_received_processed_messages_total"

FEED_WEIGHTS = {
    "investigation_finding": 15,
    "promotion_application": 20,
    "visitor_log": 35,
    "prescription_ranking": 30,
}
"""The service feed's mix, by event type: facts that go into staff and company files."""
WARMUP_PER_TYPE = 5
VISIT_BREACH_SHARE = 0.3
"""Visits that break a visiting rule (place, hour, appointment): the feed exercises the rules."""
BENEFIT_TRANSFER = (
    ComplaintCategory.KICKBACK,
    ComplaintCategory.PROCUREMENT,
    ComplaintCategory.RED_ENVELOPE,
)


@dataclass
class World:
    """Staff, companies and departments of the example hospital (bench/harness/year.py), and
    events about them over the year before ``now``."""

    hospital: Hospital
    now: datetime
    staff: list[str]
    companies: list[str]

    @property
    def rng(self) -> random.Random:
        return self.hospital.rng

    @property
    def departments(self) -> list[str]:
        return self.hospital.departments

    def moment(self, *, days: float = 365) -> datetime:
        return self.now - timedelta(days=self.rng.uniform(1, days))

    def event(self, event_type: str, at: datetime, **given: Any) -> Any:
        """Received up to a day after it occurred."""
        received = min(at + timedelta(minutes=self.rng.uniform(1, 1440)), self.now)
        return self.hospital.event(event_type, occurred_at=at, received_at=received, **given)

    def complaint(self, staff_id: str, at: datetime) -> Any:
        return self.event("complaint", at, accused_staff_id=staff_id)

    def finding(
        self,
        staff_ids: tuple[str, ...],
        at: datetime,
        *,
        case_id: str | None = None,
        company: str | None = None,
        substantiated: bool | None = None,
        categories: tuple[ComplaintCategory, ...] = (),
    ) -> Any:
        rng = self.rng
        if substantiated is None:
            substantiated = rng.random() < 0.7
        if substantiated and not categories:
            drawn = {
                self.hospital.drawn("complaint", "category", at)
                for _ in range(rng.choice((1, 1, 2)))
            }
            categories = tuple(sorted(ComplaintCategory(c) for c in drawn))
        if not substantiated:
            categories = ()
        if company is None and any(c in BENEFIT_TRANSFER for c in categories):
            company = rng.choice(self.companies) if rng.random() < 0.4 else None
        kickback = ComplaintCategory.KICKBACK in categories
        return self.event(
            "investigation_finding",
            at,
            case_id=case_id or derive_case_id(uuid.UUID(int=rng.getrandbits(128))),
            substantiated=substantiated,
            confirmed_categories=categories,
            staff_ids=staff_ids,
            confirmed_amount_cny=Decimal(rng.randint(5, 600) * 100) if kickback else None,
            severe_social_impact=ComplaintCategory.IMPROPER_RELATIONSHIP in categories
            and rng.random() < 0.5,
            company_code=company,
            company_name=None if company is None else f"{company} 医药有限公司",
            summary="经调查核实。" if substantiated else "经调查未查实。",
        )

    def application(self, staff_id: str, at: datetime) -> Any:
        return self.event("promotion_application", at, staff_id=staff_id)

    def ranking(self, staff_id: str, at: datetime) -> Any:
        return self.event(
            "prescription_ranking", at, staff_id=staff_id, rank=self.rng.randint(1, 30)
        )

    def surrender(self, staff_id: str, at: datetime) -> Any:
        days = self.rng.choice((0, 1, 2, 3, 5, 7, 9, 14))
        return self.event(
            "red_envelope_surrender",
            at,
            staff_id=staff_id,
            received_on=at.date() - timedelta(days=days),
        )

    def visit(self, company: str, at: datetime) -> Any:
        given: dict[str, Any] = {"company_code": company}
        started = at.replace(hour=14, minute=self.rng.randrange(60))
        if self.rng.random() < VISIT_BREACH_SHARE:
            breach = self.rng.choice(("place", "hour", "appointment"))
            if breach == "hour":
                started = started.replace(hour=self.rng.choice((6, 7, 8, 9, 10, 13)))
            given |= {"place_kind": self.rng.choice(list(PlaceKind))} if breach == "place" else {}
            given |= {"appointment_id": None} if breach == "appointment" else {}
        host = self.rng.choice(self.staff)
        return self.event("visitor_log", started, started_at=started, host_staff_id=host, **given)

    def rectification(self, department: str, at: datetime) -> Any:
        return self.event("rectification_status", at, department=department)


def make_world(
    rng: random.Random, now: datetime, *, staff: int, companies: int, ids: str = ""
) -> World:
    """``ids``: before each staff id and company code (the warm-up's are its own)."""
    return World(
        Hospital(rng, companies=companies, prefix=f"BENCH-{tag()}"),
        now,
        staff=[f"{ids}S{n:05d}" for n in range(staff)],
        companies=[f"{ids}C{n:04d}" for n in range(companies)],
    )


def filings(event: Event) -> list[tuple[SubjectKind, str]]:
    """The conduct files an event belongs in, as the service files it."""
    return [(f.subject_kind, f.subject_id) for f in subjects_of(cast(FileEvent, event))]


def service_feed(world: World, count: int) -> list[Event]:
    """``count`` events of the service's mix in order of receipt; about one finding in ten
    revises an earlier one (same case, later date)."""
    rng = world.rng
    staff, companies = world.staff, world.companies
    events: list[Event] = []
    cases: list[tuple[str, tuple[str, ...], datetime]] = []
    types = rng.choices(list(FEED_WEIGHTS), list(FEED_WEIGHTS.values()), k=count)
    for event_type in types:
        at = world.moment()
        if event_type == "investigation_finding":
            if cases and rng.random() < 0.1:
                case_id, staff_ids, first = rng.choice(cases)
                at = first + timedelta(days=rng.uniform(1, 30))
                events.append(world.finding(staff_ids, min(at, world.now), case_id=case_id))
                continue
            staff_ids = tuple(rng.sample(staff, rng.choice((1, 1, 1, 2))))
            company = rng.choice(companies) if rng.random() < 0.15 else None
            substantiated = True if company else None
            categories = (rng.choice(BENEFIT_TRANSFER),) if company else ()
            finding = world.finding(
                staff_ids, at, company=company, substantiated=substantiated, categories=categories
            )
            if isinstance(finding, InvestigationFindingReceived):
                cases.append((finding.case_id, staff_ids, at))
            events.append(finding)
        elif event_type == "promotion_application":
            events.append(world.application(rng.choice(staff), at))
        elif event_type == "visitor_log":
            events.append(world.visit(rng.choice(companies), at))
        else:
            events.append(world.ranking(rng.choice(staff), at))
    events.sort(key=lambda event: (event.received_at, str(event.event_id)))
    return events


def conduct_files(
    world: World, *, staff: int, companies: int, departments: int, cases: int
) -> list[tuple[ConductFile, ConductFile]]:
    """Realistic whole files, each with the same file as it stood before its latest event."""
    rng = world.rng
    pairs: list[tuple[ConductFile, ConductFile]] = []

    def add(kind: SubjectKind, subject_id: str, events: list[Event]) -> None:
        events.sort(key=lambda event: event.received_at)
        whole = ConductFile(
            subject_kind=kind, subject_id=subject_id, events=cast(Any, tuple(events))
        )
        pairs.append((whole.model_copy(update={"events": whole.events[:-1]}), whole))

    for staff_id in world.staff[:staff]:
        events: list[Event] = []
        colleagues = [s for s in world.staff if s != staff_id]
        events += [world.complaint(staff_id, world.moment()) for _ in range(rng.randint(0, 5))]
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            staff_ids = (staff_id, rng.choice(colleagues)) if rng.random() < 0.2 else (staff_id,)
            events.append(world.finding(staff_ids, world.moment()))
        events += [world.application(staff_id, world.moment()) for _ in range(rng.randint(0, 3))]
        events += [world.ranking(staff_id, world.moment()) for _ in range(rng.randint(0, 10))]
        events += [world.surrender(staff_id, world.moment()) for _ in range(rng.randint(0, 2))]
        if not events:
            events.append(world.application(staff_id, world.moment()))
        add(SubjectKind.STAFF, staff_id, events)
    for company in world.companies[:companies]:
        events = [world.visit(company, world.moment()) for _ in range(rng.randint(5, 40))]
        for _ in range(rng.choice((0, 0, 0, 1, 2))):
            staff_ids = (rng.choice(world.staff),)
            category = (rng.choice(BENEFIT_TRANSFER),)
            at = world.moment(days=4 * 365)
            events.append(
                world.finding(
                    staff_ids, at, company=company, substantiated=True, categories=category
                )
            )
        add(SubjectKind.COMPANY, company, events)
    for department in itertools.islice(itertools.cycle(world.departments), departments):
        events = [world.rectification(department, world.moment()) for _ in range(rng.randint(1, 8))]
        add(SubjectKind.DEPARTMENT, department, events)
    for _ in range(cases):
        complaint = world.complaint(rng.choice(world.staff), world.moment(days=60))
        if not isinstance(complaint, ComplaintReceived):
            raise TypeError(complaint)
        case = open_case(Opening.of_complaint(complaint), routing(), now=complaint.received_at)
        before = ConductFile(subject_kind=SubjectKind.CASE, subject_id=case.case_id, case=case)
        after = before
        if rng.random() < 0.6:
            found_at = min(case.opened_at + timedelta(days=rng.uniform(2, 40)), world.now)
            staff_ids = (complaint.accused_staff_id or world.staff[0],)
            finding = world.finding(staff_ids, found_at, case_id=case.case_id)
            if not isinstance(finding, InvestigationFindingReceived):
                raise TypeError(finding)
            recorded = record_finding(case, finding, now=found_at)
            after = before.model_copy(update={"case": recorded})
        pairs.append((before, after))
    return pairs


# --- The engine alone -----------------------------------------------------------------------


def decided(
    pairs: list[tuple[ConductFile, ConductFile]], book: RuleBook, now: datetime
) -> list[dict[str, Decision]]:
    """What the desk had published on each file before its latest event."""
    return [
        {d.key: d for d in reconcile({}, evaluate(before, book, now=now), now=now)}
        for before, _ in pairs
    ]


def time_engine(
    pairs: list[tuple[ConductFile, ConductFile]], book: RuleBook, now: datetime, seconds: float
) -> dict[str, Any]:
    """Rounds over every file until ``seconds`` passed; rates from the fastest round (the
    machine is shared), time per step and subject from all rounds."""
    emitted = decided(pairs, book, now)
    work = [(file, before) for (_, file), before in zip(pairs, emitted, strict=True)]
    per_round: dict[str, Counter[str]] = defaultdict(Counter)
    spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    rounds: list[float] = []
    cpu_rounds: list[float] = []
    started = time.perf_counter()
    while not rounds or time.perf_counter() - started < seconds:
        round_started, cpu_started = time.perf_counter(), time.process_time()
        for file, before in work:
            t0 = time.perf_counter()
            fresh = evaluate(file, book, now=now)
            t1 = time.perf_counter()
            published = reconcile(before, fresh, now=now)
            t2 = time.perf_counter()
            kind = str(file.subject_kind)
            spent[kind][0] += t1 - t0
            spent[kind][1] += t2 - t1
            if not rounds:
                per_round[kind].update(
                    evaluations=1, decisions=len(fresh), published=len(published)
                )
        rounds.append(time.perf_counter() - round_started)
        cpu_rounds.append(time.process_time() - cpu_started)
    best = min(rounds)
    counts = sum(per_round.values(), Counter[str]())
    evaluate_s = sum(s[0] for s in spent.values())
    reconcile_s = sum(s[1] for s in spent.values())
    files = Counter(str(file.subject_kind) for file, _ in work)
    sizes = Counter[str]()
    for file, _ in work:
        sizes[str(file.subject_kind)] += len(file.case.history) if file.case else len(file.events)
    return {
        "files": dict(files),
        "mean_events_per_file": {k: round(sizes[k] / files[k], 1) for k in files},
        "rounds": len(rounds),
        "best_round_s": round(best, 4),
        "mean_round_s": round(statistics.fmean(rounds), 4),
        "evaluations_per_round": counts["evaluations"],
        "cpu_s_per_wall_s": round(sum(cpu_rounds) / sum(rounds), 2),
        "evaluations_per_cpu_s": round(counts["evaluations"] / min(cpu_rounds), 1),
        "evaluations_per_s": round(counts["evaluations"] / best, 1),
        "decisions_per_s": round(counts["decisions"] / best, 1),
        "published_per_s": round(counts["published"] / best, 1),
        "decisions_per_evaluation": round(counts["decisions"] / counts["evaluations"], 2),
        "published_per_evaluation": round(counts["published"] / counts["evaluations"], 2),
        "share_of_time_in_reconcile": round(reconcile_s / (evaluate_s + reconcile_s), 3),
        "by_subject": {
            kind: {
                "us_per_evaluate": round(spent[kind][0] * 1e6 / (c["evaluations"] * len(rounds))),
                "us_per_reconcile": round(spent[kind][1] * 1e6 / (c["evaluations"] * len(rounds))),
                "decisions_per_evaluation": round(c["decisions"] / c["evaluations"], 2),
            }
            for kind, c in sorted(per_round.items())
        },
        "note": (
            "A case file's size is its history entries. decisions: what evaluate returned (all "
            "the rules decide on the whole file); published: what reconcile returned against "
            "what the desk had published before the file's latest event."
        ),
    }


# --- The service's feed, in process -------------------------------------------------------------


def replay_in_memory(
    feed: list[Event], book: RuleBook, now: datetime, *, serialise: bool
) -> dict[str, Any]:
    """Each event into each of its files, one at a time, as filing.Escalation.update does, with
    the files in a dict; ``serialise``: stored as the service stores them (JSON-mode dumps,
    validated again on load)."""
    kept: dict[str, tuple[ConductFile, dict[str, Decision]]] = {}
    documents: dict[str, Document] = {}
    evaluations = published_total = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for event in feed:
        for kind, subject_id in filings(event):
            key = subject_key(kind, subject_id)
            blank = ConductFile(subject_kind=kind, subject_id=subject_id)
            if serialise:
                document = documents.get(key)
                file = blank if document is None else ConductFile.model_validate(document["file"])
                emitted = (
                    {}
                    if document is None
                    else {k: Decision.model_validate(d) for k, d in document["emitted"].items()}
                )
            else:
                file, emitted = kept.get(key, (blank, {}))
            file = with_events([cast(FileEvent, event)])(file)
            fresh = evaluate(file, book, now=now)
            published = reconcile(emitted, fresh, now=now)
            emitted = {**emitted, **{d.key: d for d in published}}
            depends_on_clock(file, fresh)
            if serialise:
                documents[key] = {
                    "file": file.model_dump(mode="json"),
                    "emitted": {k: d.model_dump(mode="json") for k, d in emitted.items()},
                }
            else:
                kept[key] = (file, emitted)
            evaluations += 1
            published_total += len(published)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "events_per_s": round(len(feed) / seconds, 1),
        "cpu_ms_per_event": round(cpu * 1000 / len(feed), 3),
        "evaluations_per_s": round(evaluations / seconds, 1),
        "decisions_published_per_s": round(published_total / seconds, 1),
        "ms_per_event": round(seconds * 1000 / len(feed), 3),
        "decisions_published": published_total,
    }


def size_bucket(events: int) -> str:
    for upper in (1, 9, 29):
        if events <= upper:
            return f"{upper}" if upper == 1 else f"<={upper}"
    return ">29"


async def replay_over_store(
    feed: list[Event], book: RuleBook, db: AsyncDatabase[Document]
) -> dict[str, Any]:
    """The steps of filing.Escalation.update over FerretDB (the store adapter), one event at a
    time, each step timed; decisions are counted, not published."""
    store = EscalationStore(MongoDocuments(db))
    steps: dict[str, float] = defaultdict(float)
    saves_by_size: dict[str, list[float]] = defaultdict(list)
    published_total = evaluations = conflicts = 0
    cpu = CpuWindow({"bench_process": os.getpid(), "ferretdb": RUNTIME.pid("ferretdb")})
    cpu.begin()
    started = time.perf_counter()
    for event in feed:
        for kind, subject_id in filings(event):
            blank = ConductFile(subject_kind=kind, subject_id=subject_id)
            update = FileUpdate(blank, with_events([event]), datetime.now(UTC))  # type: ignore[list-item]
            t0 = time.perf_counter()
            loaded = await store.files.load(blank.key)
            t1 = time.perf_counter()
            step = decide_again(update, loaded, Sent(), book)
            t2 = time.perf_counter()
            conflicts += not await store.files.save(step.key, step.kept, over=step.revision)
            t3 = time.perf_counter()
            if step.watched:
                await store.watched.put(step.key, Watched.of(blank))
            else:
                await store.watched.delete(step.key)
            t4 = time.perf_counter()
            for name, spent in zip(
                ("load", "rules", "save", "set_watched"),
                (t1 - t0, t2 - t1, t3 - t2, t4 - t3),
                strict=True,
            ):
                steps[name] += spent
            saves_by_size[size_bucket(len(step.kept.file.events))].append(t3 - t2)
            evaluations += 1
            published_total += len(step.published)
    seconds = time.perf_counter() - started
    sizes = [
        len(bson.encode(document)) async for document in db["escalation_conduct_files"].find({})
    ]
    return {
        "events_per_s": round(len(feed) / seconds, 1),
        "ms_per_event": round(seconds * 1000 / len(feed), 3),
        "decisions_published": published_total,
        "save_conflicts": conflicts,
        "ms_per_filing_by_step": {k: round(v * 1000 / evaluations, 3) for k, v in steps.items()},
        "share_by_step": {k: round(v / seconds, 3) for k, v in steps.items()},
        "save_ms_by_events_in_file": {
            bucket: {"saves": len(spent), "mean_ms": round(statistics.fmean(spent) * 1000, 2)}
            for bucket, spent in sorted(saves_by_size.items())
        },
        "stored_file_kb": {
            "mean": round(statistics.fmean(sizes) / 1024, 1),
            "max": round(max(sizes) / 1024, 1),
        },
        "cpu": cpu.end(len(feed)),
    }


# --- The runtime and the service ------------------------------------------------------------


async def wait_handled(
    client: httpx.AsyncClient,
    url: str,
    count: float,
    pid: int,
    *,
    patience: float,
    progress: dict[str, Any] | None = None,
) -> Metrics:
    """Poll /metrics until ``count`` records were handled (acked) in all; ``progress`` is kept
    up to date (records handled since the call, seconds), for a run cut short."""
    started = time.perf_counter()
    first: float | None = None
    while True:
        try:
            metrics = await scrape(client, url)
        except httpx.TransportError:
            metrics = {}
        handled = total(metrics, HANDLED, status="acked")
        first = handled if first is None else first
        if progress is not None:
            seconds = time.perf_counter() - started
            progress |= {
                "handled_so_far": int(handled - first),
                "seconds_so_far": round(seconds, 1),
                "events_per_s_so_far": round((handled - first) / max(seconds, 1e-9), 2),
            }
        if handled >= count:
            return metrics
        if cpu_seconds(pid) is None:
            raise RuntimeError("the escalation service exited")
        if time.perf_counter() - started > patience:
            raise RuntimeError(f"only {handled:.0f} of {count} handled")
        await asyncio.sleep(0.1)


async def decisions_on_topic(subjects: set[str]) -> dict[str, int]:
    """Decision records on the decisions topic about ``subjects``: records and distinct ids."""
    consumer = await reader(RUNTIME.bootstrap)
    try:
        partitions = await partitions_of(RUNTIME.bootstrap, [topics.DECISIONS])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records, ids, corrections, withdrawals = 0, set(), 0, 0
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    decision = json.loads(record.value)
                    if decision["subject_id"] not in subjects:
                        continue
                    records += 1
                    ids.add(decision["event_id"])
                    corrections += decision["corrects"] is not None
                    withdrawals += decision["withdrawn"]
    finally:
        await consumer.stop()
    return {
        "records": records,
        "distinct_decision_ids": len(ids),
        "repeated_records": records - len(ids),
        "corrections": corrections,
        "withdrawals": withdrawals,
    }


async def check_store(db: AsyncDatabase[Document], feed: list[Event]) -> dict[str, Any]:
    """Every measured event in every file it belongs to, each once."""
    expected = Counter(
        (subject_key(kind, subject_id), str(event.event_id))
        for event in feed
        for kind, subject_id in filings(event)
    )
    found: Counter[tuple[str, str]] = Counter()
    revisions = files = 0
    subjects = {(kind, subject_id) for event in feed for kind, subject_id in filings(event)}
    conduct_files = EscalationStore(MongoDocuments(db)).files
    for kind, subject_id in subjects:
        # As the service reads a file: its latest copy may lag behind its last revision.
        loaded = await conduct_files.load(subject_key(kind, subject_id))
        if loaded.value is None:
            continue
        files += 1
        revisions += loaded.revision
        for event in loaded.value.file.events:
            found[(loaded.key, str(event.event_id))] += 1
    return {
        "filings_expected": sum(expected.values()),
        "filings_found": sum(found.values()),
        "filings_missing": sum(1 for key in expected if found[key] == 0),
        "all_filed_once": found == expected,
        "files": files,
        "sum_of_revisions": revisions,
    }


def log_lines_since(path: Path, offset: int) -> tuple[int, list[str]]:
    """The log's size now, and its lines after ``offset``."""
    with path.open("rb") as log:
        log.seek(offset)
        text = log.read()
    return offset + len(text), text.decode(errors="replace").splitlines()


async def run_service(
    feed: list[Event],
    warmup: list[Event],
    *,
    port: int,
    pid: int,
    log: Path,
    db: str,
    progress: dict[str, Any],
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    sender = producer(RUNTIME.bootstrap, client_id="bench-feed")
    async with httpx.AsyncClient() as client:  # start_service waited for /healthz
        await sender.start()
        try:
            await publish(sender, warmup)
            before = await wait_handled(client, f"{url}/metrics", len(warmup), pid, patience=120)
            cpu = CpuWindow(
                {
                    "service": pid,
                    "ferretdb": RUNTIME.pid("ferretdb"),
                    "kafka": RUNTIME.pid("kafka"),
                    "bench_client": os.getpid(),
                }
            )
            cpu.begin()
            log_offset = log_lines_since(log, 0)[0]
            started = time.perf_counter()
            await publish(sender, feed)
            published_s = time.perf_counter() - started
            after = await wait_handled(
                client,
                f"{url}/metrics",
                len(warmup) + len(feed),
                pid,
                patience=24 * 3600,  # the run's deadline applies
                progress=progress,
            )
            seconds = time.perf_counter() - started
            usage = cpu.end(len(feed))
            logged = log_lines_since(log, log_offset)[1]
        finally:
            await sender.stop()

    def delta(name: str, label: str) -> dict[str, float]:
        early = by_label(before, name, label)
        return {k: round(v - early.get(k, 0.0), 4) for k, v in by_label(after, name, label).items()}

    handled = delta(HANDLED, "status")
    decisions = sum(delta("qinglian_decisions_total", "kind").values())
    busy = delta("faststream_received_processed_messages_duration_seconds_sum", "handler")
    publishes = delta("faststream_published_messages_total", "destination")
    publish_s = delta("faststream_published_messages_duration_seconds_sum", "destination")
    async with RUNTIME.database(db) as stored:
        store = await check_store(stored, feed)
    subjects = {subject for event in feed for _, subject in filings(event)}
    return {
        "events": len(feed),
        "seconds": round(seconds, 3),
        "events_per_s": round(len(feed) / seconds, 1),
        "decisions_per_s": round(decisions / seconds, 1),
        "decisions": int(decisions),
        "decisions_by_kind": {
            k: int(v) for k, v in delta("qinglian_decisions_total", "kind").items()
        },
        "published_in_s": round(published_s, 3),
        "handled_by_status": {k: int(v) for k, v in handled.items()},
        "handler_failures": int(sum(delta("qinglian_handler_failures_total", "topic").values())),
        "handler_busy_s_by_topic": {k.split(".")[-2]: round(v, 2) for k, v in busy.items()},
        "handler_busy_s_total": round(sum(busy.values()), 2),
        "mean_handler_ms": round(sum(busy.values()) * 1000 / len(feed), 2),
        "decision_publishes": int(sum(publishes.values())),
        "mean_publish_ms": round(
            sum(publish_s.values()) * 1000 / max(1.0, sum(publishes.values())), 2
        ),
        "publish_wait_s_total": round(sum(publish_s.values()), 2),
        "cpu": usage,
        "store": store,
        "decisions_topic": await decisions_on_topic(subjects),
        "service_log_while_measured": {
            "lines": len(logged),
            "rebalance_warnings": sum("rebalanc" in line for line in logged),
            "errors": sum(" ERROR " in line or "Traceback" in line for line in logged),
        },
    }


# --- The run --------------------------------------------------------------------------------


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    book = RuleBook.from_file(EscalationSettings().rules)
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(options.seed)
    files_world = make_world(rng, now, staff=max(options.files, 50), companies=options.files // 5)
    pairs = conduct_files(
        files_world,
        staff=options.files,
        companies=options.files // 5,
        departments=options.files // 5,
        cases=options.files // 2,
    )
    print(f"engine: {len(pairs)} conduct files", file=sys.stderr)
    result["engine"] = time_engine(pairs, book, now, options.engine_seconds)

    world = make_world(rng, now, staff=options.staff, companies=options.companies)
    feed = service_feed(world, options.events)
    warm_world = make_world(random.Random(options.seed + 1), now, staff=20, companies=4, ids="WARM")
    warmup = service_feed(warm_world, WARMUP_PER_TYPE * len(FEED_WEIGHTS))
    sizes = Counter(subject_key(k, s) for event in feed for k, s in filings(event))
    result["feed"] = {
        "events": len(feed),
        "by_type": dict(Counter(kind_of(event).event_type for event in feed)),
        "staff": options.staff,
        "companies": options.companies,
        "filings": sum(sizes.values()),
        "files": len(sizes),
        "largest_file_events": max(sizes.values()),
        "seed": options.seed,
    }
    in_process: dict[str, Any] = {
        name: max(
            (replay_in_memory(feed, book, now, serialise=serialise) for _ in range(3)),
            key=lambda outcome: float(outcome["events_per_s"]),
        )
        | {"best_of": 3}
        for name, serialise in (("rules_only", False), ("rules_and_serialisation", True))
    }
    result["service_feed_in_process"] = in_process
    print(f"in process: {in_process['rules_only']['events_per_s']} events/s", file=sys.stderr)
    if options.engine_only:
        return

    RUNTIME.start_fresh(deadline)
    tag = uuid.uuid4().hex[:8]
    db = f"bench_service_{tag}"
    progress: dict[str, Any] = {"complete": False}
    result["service"] = progress  # what a run cut short by --timeout got to
    escalation = start_service(
        "escalation",
        env=RUNTIME.service_env(db=db, group_prefix=f"bench-{tag}-")
        | {
            "QINGLIAN_LOG_LEVEL": options.log_level,
            "QINGLIAN_CLOCK_CHECK_SECONDS": str(CLOCK_CHECK_SECONDS),
        },
        port=free_port(SERVICE_PORTS),
        log_dir=RUNTIME.log_dir,
    )
    try:
        service = deadline.run(
            run_service(
                feed,
                warmup,
                port=escalation.port,
                pid=escalation.pid,
                log=escalation.log,
                db=db,
                progress=progress,
            )
        )
    finally:
        stop_service(escalation)
    service |= {"complete": True, "log_level": options.log_level, "http_port": escalation.port}
    result["service"] = service
    print(f"service: {service['events_per_s']} events/s", file=sys.stderr)
    result["ratios"] = {
        "service_to_in_process_rules_only": round(
            service["events_per_s"] / in_process["rules_only"]["events_per_s"], 4
        )
    }
    if options.store_replay_events <= 0:
        return

    async def over_store() -> dict[str, Any]:
        async with RUNTIME.database(f"bench_inproc_{tag}") as db:
            prefix = feed[: options.store_replay_events]
            outcome = await replay_over_store(prefix, book, db)
            return {"events": len(prefix), "of_feed": "the first events"} | outcome

    over = in_process["over_ferretdb"] = deadline.run(over_store())
    print(f"over FerretDB: {over['events_per_s']} events/s", file=sys.stderr)
    result["ratios"]["service_to_in_process_over_ferretdb"] = round(
        service["events_per_s"] / over["events_per_s"], 3
    )


NOTES = (
    "engine and service_feed_in_process run in this process, one core at most; the service "
    "runs its 11 subscribers (4 of them fed here) in one process and event loop, each "
    "handling one record at a time, loading and saving whole conduct files in FerretDB and "
    "awaiting Kafka's acks=all for each decision. service.store.all_filed_once false means "
    "events were handled (acked) but are missing from a file they belong to: a lost update "
    "(the file's compare-and-set save lost a race). decisions_topic.repeated_records: the same "
    "decision published again after a save lost a race (same id, by design). Kafka, FerretDB, "
    "the service and this script share the machine's cores with whatever else runs."
)


def main() -> int:
    parser = report.parser(__doc__, timeout=3600)
    parser.add_argument("--events", type=int, default=2000, help="fact events for the service")
    parser.add_argument("--staff", type=int, help="staff ids in the feed (default: events / 8)")
    parser.add_argument(
        "--companies", type=int, help="companies in the feed (default: events / 80)"
    )
    parser.add_argument("--files", type=int, default=200, help="staff files for the engine")
    parser.add_argument("--engine-seconds", type=float, default=3.0)
    parser.add_argument("--engine-only", action="store_true", help="no broker, no store")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--store-replay-events",
        type=int,
        default=500,
        help="the feed's first events replayed in process over FerretDB (after the service)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the service's (INFO, as deploy/local/services.sh runs it)",
    )
    options = parser.parse_args()
    if options.events < 1 or options.files < 5:
        parser.error("need at least 1 event and 5 files")
    options.staff = options.staff or max(10, options.events // 8)
    options.companies = options.companies or max(3, options.events // 80)
    return report.run(
        "escalation_throughput",
        options,
        measure,
        runtime=None if options.engine_only else RUNTIME,
        head={"events": options.events},
        notes=NOTES,
    )


if __name__ == "__main__":
    sys.exit(main())
