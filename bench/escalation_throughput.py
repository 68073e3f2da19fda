"""Escalation throughput: the rule engine alone, in process, and the escalation service on its
own Kafka and FerretDB (.local/bench-escalation).

    .venv/bin/python -m bench.escalation_throughput --events 300   # --engine-only: no broker

engine: rules.evaluate then conduct.reconcile over whole conduct files built in memory, each
reconciled against what was published before its latest event; rates from the fastest round.
service_feed_in_process: the service's feed, one event at a time, through the steps of
filing.Escalation.update on files in a dict (rules only, then with the store's
(de)serialisation; best of 3), then its first --store-replay-events over FerretDB, each step
timed; one core at most. service: python -m services.escalation (11 subscribers, 4 of them fed
here, each handling one record at a time, loading and saving whole files, awaiting acks=all
for each decision; the clock check a year away), warmed up, fed as intake publishes, timed
until its /metrics count every event handled. store.all_filed_once false: an event handled
(acked) but missing from a file it belongs to, a lost update. decisions_topic.repeated_records:
a decision published again after a save lost a race (same id, by design). Kafka, FerretDB, the
service and this script share the machine's cores with whatever else runs.
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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import bson
import httpx
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import processes, report
from bench.harness.kafka import batches_from, kind_of, producer, publish, topic_ends
from bench.harness.runtime import Deadline, Runtime, free_port, tag
from bench.harness.year import Hospital, routing
from schemas import topics
from schemas.base import Event
from schemas.case import derive_case_id
from schemas.complaint import ComplaintCategory
from schemas.decision import Decision, SubjectKind
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

RUNTIME = Runtime.numbered("bench-escalation", 3)
SERVICE_PORTS = range(8700, 8800)
STEPS = ("load", "rules", "save", "set_watched")
HANDLED = "faststream_received_processed_messages_total"
FEED = {
    "investigation_finding": 15,
    "promotion_application": 20,
    "visitor_log": 35,
    "prescription_ranking": 30,
}
"""The service feed's mix, by event type: facts that go into staff and company files."""
WARMUP_PER_TYPE = 5
VISIT_BREACH_SHARE = 0.3  # visits breaking a visiting rule, so that the feed exercises the rules
BENEFIT_TRANSFER = tuple(map(ComplaintCategory, ("kickback", "procurement", "red_envelope")))
STAFF_FILE_EXTRAS = {
    "promotion_application": 3,
    "prescription_ranking": 10,
    "red_envelope_surrender": 2,
}
"""Up to so many of each in a staff file (besides complaints and findings)."""
SEED, LOG_LEVEL, ENGINE_FILES = 11, "INFO", 200  # staff files for the engine


class World:
    """Staff and companies (``ids`` before their codes) of the example hospital
    (bench/harness/year.py), and events about them over the year before ``now``."""

    def __init__(
        self, rng: random.Random, now: datetime, *, staff: int, companies: int, ids: str = ""
    ) -> None:
        self.hospital = Hospital(rng, companies=companies, prefix=f"BENCH-{tag()}")
        self.rng, self.now = rng, now
        self.staff = [f"{ids}S{n:05d}" for n in range(staff)]
        self.companies = [f"{ids}C{n:04d}" for n in range(companies)]

    def moment(self, *, days: float = 365) -> datetime:
        return self.now - timedelta(days=self.rng.uniform(1, days))

    def event(self, event_type: str, at: datetime, **given: Any) -> Any:
        """Received up to a day after it occurred."""
        received = min(at + timedelta(minutes=self.rng.uniform(1, 1440)), self.now)
        return self.hospital.event(event_type, occurred_at=at, received_at=received, **given)

    def finding(
        self,
        staff_ids: tuple[str, ...],
        at: datetime,
        *,
        case_id: str | None = None,
        company: str | None = None,
        categories: tuple[ComplaintCategory, ...] = (),
    ) -> Any:
        """Substantiated if ``categories`` are given, else 70 % of them, with drawn ones."""
        rng = self.rng
        substantiated = bool(categories) or rng.random() < 0.7
        if substantiated and not categories:
            drawn = {
                self.hospital.drawn("complaint", "category", at)
                for _ in range(rng.choice((1, 1, 2)))
            }
            categories = tuple(sorted(ComplaintCategory(c) for c in drawn))
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

    def visit(self, company: str, at: datetime) -> Any:
        given: dict[str, Any] = {"company_code": company}
        started = at.replace(hour=14, minute=self.rng.randrange(60))
        if self.rng.random() < VISIT_BREACH_SHARE:
            breach = self.rng.choice(("place", "hour", "appointment"))
            if breach == "hour":
                started = started.replace(hour=self.rng.choice((6, 7, 8, 9, 10, 13)))
            elif breach == "place":
                given["place_kind"] = self.rng.choice(list(PlaceKind))
            else:
                given["appointment_id"] = None
        host = self.rng.choice(self.staff)
        return self.event("visitor_log", started, started_at=started, host_staff_id=host, **given)

    def about(self, event_type: str, subject: str, at: datetime) -> Any:
        """An event of this type about a staff member (rectification_status: a department)."""
        field = {"complaint": "accused_staff_id", "rectification_status": "department"}
        given: dict[str, Any] = {field.get(event_type, "staff_id"): subject}
        if event_type == "prescription_ranking":
            given["rank"] = self.rng.randint(1, 30)
        elif event_type == "red_envelope_surrender":
            days = self.rng.choice((0, 1, 2, 3, 5, 7, 9, 14))
            given["received_on"] = at.date() - timedelta(days=days)
        return self.event(event_type, at, **given)


def filings(event: Event) -> list[tuple[SubjectKind, str]]:
    """The conduct files an event belongs in, as the service files it."""
    return [(f.subject_kind, f.subject_id) for f in subjects_of(cast(FileEvent, event))]


def service_feed(world: World, count: int) -> list[Event]:
    """``count`` events of the service's mix in order of receipt; about one finding in ten
    revises an earlier one (same case, later date)."""
    rng, staff = world.rng, world.staff
    events: list[Event] = []
    cases: list[tuple[str, tuple[str, ...], datetime]] = []
    for event_type in rng.choices(list(FEED), list(FEED.values()), k=count):
        at = world.moment()
        if event_type == "investigation_finding" and cases and rng.random() < 0.1:
            case_id, staff_ids, first = rng.choice(cases)
            at = min(first + timedelta(days=rng.uniform(1, 30)), world.now)
            events.append(world.finding(staff_ids, at, case_id=case_id))
        elif event_type == "investigation_finding":
            staff_ids = tuple(rng.sample(staff, rng.choice((1, 1, 1, 2))))
            company = rng.choice(world.companies) if rng.random() < 0.15 else None
            categories = (rng.choice(BENEFIT_TRANSFER),) if company else ()
            finding = world.finding(staff_ids, at, company=company, categories=categories)
            events.append(finding)
            cases.append((finding.case_id, staff_ids, at))
        elif event_type == "visitor_log":
            events.append(world.visit(rng.choice(world.companies), at))
        else:
            events.append(world.about(event_type, rng.choice(staff), at))
    return sorted(events, key=lambda event: (event.received_at, str(event.event_id)))


def conduct_files(world: World, *, staff: int) -> list[tuple[ConductFile, ConductFile]]:
    """Whole files of ``staff`` staff, the companies, staff / 5 departments and staff / 2 cases,
    each with the same file as it stood before its latest event."""
    rng, moment = world.rng, world.moment
    pairs: list[tuple[ConductFile, ConductFile]] = []

    def add(kind: SubjectKind, subject_id: str, events: list[Any]) -> None:
        events.sort(key=lambda event: event.received_at)
        whole = ConductFile(subject_kind=kind, subject_id=subject_id, events=tuple(events))
        pairs.append((whole.model_copy(update={"events": whole.events[:-1]}), whole))

    for who in world.staff[:staff]:
        others = [s for s in world.staff if s != who]
        events = [world.about("complaint", who, moment()) for _ in range(rng.randint(0, 5))]
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            staff_ids = (who, rng.choice(others)) if rng.random() < 0.2 else (who,)
            events.append(world.finding(staff_ids, moment()))
        for event_type, most in STAFF_FILE_EXTRAS.items():
            events += [world.about(event_type, who, moment()) for _ in range(rng.randint(0, most))]
        add(SubjectKind.STAFF, who, events or [world.about("promotion_application", who, moment())])
    for company in world.companies:
        events = [world.visit(company, moment()) for _ in range(rng.randint(5, 40))]
        for _ in range(rng.choice((0, 0, 0, 1, 2))):
            staff_ids, category = (rng.choice(world.staff),), (rng.choice(BENEFIT_TRANSFER),)
            at = moment(days=4 * 365)
            events.append(world.finding(staff_ids, at, company=company, categories=category))
        add(SubjectKind.COMPANY, company, events)
    for department in itertools.islice(itertools.cycle(world.hospital.departments), staff // 5):
        count = rng.randint(1, 8)
        events = [world.about("rectification_status", department, moment()) for _ in range(count)]
        add(SubjectKind.DEPARTMENT, department, events)
    for _ in range(staff // 2):
        complaint = world.about("complaint", rng.choice(world.staff), moment(days=60))
        case = open_case(Opening.of_complaint(complaint), routing(), now=complaint.received_at)
        before = ConductFile(subject_kind=SubjectKind.CASE, subject_id=case.case_id, case=case)
        after = before
        if rng.random() < 0.6:
            found_at = min(case.opened_at + timedelta(days=rng.uniform(2, 40)), world.now)
            staff_ids = (complaint.accused_staff_id or world.staff[0],)
            finding = world.finding(staff_ids, found_at, case_id=case.case_id)
            after = before.model_copy(update={"case": record_finding(case, finding, now=found_at)})
        pairs.append((before, after))
    return pairs


def time_engine(
    pairs: list[tuple[ConductFile, ConductFile]], book: RuleBook, now: datetime, seconds: float
) -> dict[str, Any]:
    """Rounds over every file until ``seconds`` passed; rates from the fastest round (the
    machine is shared), time per step and subject from all rounds."""
    work = [  # each file with what the desk had published before its latest event
        (file, {d.key: d for d in reconcile({}, evaluate(before, book, now=now), now=now)})
        for before, file in pairs
    ]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
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
                counts[kind].update(evaluations=1, decisions=len(fresh), published=len(published))
        rounds.append(time.perf_counter() - round_started)
        cpu_rounds.append(time.process_time() - cpu_started)
    total = sum(counts.values(), Counter[str]())
    evaluations, outcomes = total["evaluations"], ("decisions", "published")
    evaluate_s, reconcile_s = (sum(s[step] for s in spent.values()) for step in (0, 1))
    files, sizes = Counter[str](), Counter[str]()
    for file, _ in work:
        files[str(file.subject_kind)] += 1
        sizes[str(file.subject_kind)] += len(file.case.history) if file.case else len(file.events)
    return {
        "files": dict(files),
        "mean_events_per_file": {k: round(sizes[k] / files[k], 1) for k in files},
        "rounds": len(rounds),
        "best_round_s": round(min(rounds), 4),
        "mean_round_s": round(statistics.fmean(rounds), 4),
        "evaluations_per_round": evaluations,
        "cpu_s_per_wall_s": round(sum(cpu_rounds) / sum(rounds), 2),
        "evaluations_per_cpu_s": round(evaluations / min(cpu_rounds), 1),
        **{f"{k}_per_s": round(total[k] / min(rounds), 1) for k in ("evaluations", *outcomes)},
        **{f"{k}_per_evaluation": round(total[k] / evaluations, 2) for k in outcomes},
        "share_of_time_in_reconcile": round(reconcile_s / (evaluate_s + reconcile_s), 3),
        "by_subject": {
            kind: {
                "us_per_evaluate": round(spent[kind][0] * 1e6 / (c["evaluations"] * len(rounds))),
                "us_per_reconcile": round(spent[kind][1] * 1e6 / (c["evaluations"] * len(rounds))),
                "decisions_per_evaluation": round(c["decisions"] / c["evaluations"], 2),
            }
            for kind, c in sorted(counts.items())
        },
        "note": "A case file's size is its history entries. decisions: what evaluate returned "
        "(all the rules decide on the whole file); published: what reconcile returned against "
        "what the desk had published before the file's latest event.",
    }


def replay_in_memory(
    feed: list[Event], book: RuleBook, now: datetime, *, serialise: bool
) -> dict[str, Any]:
    """Each event into each of its files, one at a time, as filing.Escalation.update does, with
    the files in a dict; ``serialise``: stored as the service stores them (JSON-mode dumps,
    validated again on load)."""
    kept: dict[str, Any] = {}
    evaluations = published_total = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for event in feed:
        for kind, subject_id in filings(event):
            key, blank = (
                subject_key(kind, subject_id),
                ConductFile(subject_kind=kind, subject_id=subject_id),
            )
            file, emitted = kept.get(key, (blank, {}))
            if serialise and key in kept:
                file = ConductFile.model_validate(file)
                emitted = {k: Decision.model_validate(d) for k, d in emitted.items()}
            file = with_events([cast(FileEvent, event)])(file)
            fresh = evaluate(file, book, now=now)
            published = reconcile(emitted, fresh, now=now)
            emitted = {**emitted, **{d.key: d for d in published}}
            depends_on_clock(file, fresh)
            kept[key] = (file, emitted)
            if serialise:
                dumped = {k: d.model_dump(mode="json") for k, d in emitted.items()}
                kept[key] = (file.model_dump(mode="json"), dumped)
            evaluations += 1
            published_total += len(published)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "events_per_s": round(len(feed) / seconds, 1),
        "cpu_ms_per_event": round(cpu * 1000 / len(feed), 3),
        "evaluations_per_s": round(evaluations / seconds, 1),
        "decisions_published_per_s": round(published_total / seconds, 1),
        "ms_per_event": round(seconds * 1000 / len(feed), 3),
        "decisions_published": published_total,
    }


async def replay_over_store(
    feed: list[Event], book: RuleBook, db: AsyncDatabase[Document]
) -> dict[str, Any]:
    """The steps of filing.Escalation.update over FerretDB (the store adapter), one event at a
    time, each step timed; decisions are counted, not published."""
    store = EscalationStore(MongoDocuments(db))
    steps: dict[str, float] = defaultdict(float)
    saves_by_size: dict[str, list[float]] = defaultdict(list)
    published_total = evaluations = conflicts = 0
    cpu = processes.CpuWindow({"bench_process": os.getpid(), "ferretdb": RUNTIME.pid("ferretdb")})
    cpu.begin()
    started = time.perf_counter()
    for event in feed:
        for kind, subject_id in filings(event):
            blank = ConductFile(subject_kind=kind, subject_id=subject_id)
            update = FileUpdate(blank, with_events([cast(FileEvent, event)]), datetime.now(UTC))
            marks = [time.perf_counter()]
            loaded = await store.files.load(blank.key)
            marks.append(time.perf_counter())
            step = decide_again(update, loaded, Sent(), book)
            marks.append(time.perf_counter())
            conflicts += not await store.files.save(step.key, step.kept, over=step.revision)
            marks.append(time.perf_counter())
            if step.watched:
                await store.watched.put(step.key, Watched.of(blank))
            else:
                await store.watched.delete(step.key)
            marks.append(time.perf_counter())
            for name, (a, b) in zip(STEPS, itertools.pairwise(marks), strict=True):
                steps[name] += b - a
            size = len(step.kept.file.events)
            bucket = "1" if size <= 1 else next((f"<={n}" for n in (9, 29) if size <= n), ">29")
            saves_by_size[bucket].append(marks[3] - marks[2])
            evaluations += 1
            published_total += len(step.published)
    seconds = time.perf_counter() - started
    sizes = [len(bson.encode(doc)) async for doc in db["escalation_conduct_files"].find({})]
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


async def wait_handled(
    client: httpx.AsyncClient,
    service: processes.Service,
    count: float,
    *,
    patience: float,
    progress: dict[str, Any] | None = None,
) -> processes.Metrics:
    """Poll /metrics until ``count`` records were handled (acked) in all; ``progress`` is kept
    up to date (records handled since the call, seconds), for a run cut short."""
    started = time.perf_counter()
    first: float | None = None
    while True:
        try:
            metrics = await processes.scrape(client, f"{service.url}/metrics")
        except httpx.TransportError:
            metrics = {}
        handled = processes.total(metrics, HANDLED, status="acked")
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
        if processes.cpu_seconds(service.pid) is None:
            raise RuntimeError("the escalation service exited")
        if time.perf_counter() - started > patience:
            raise RuntimeError(f"only {handled:.0f} of {count} handled")
        await asyncio.sleep(0.1)


async def decisions_on_topic(subjects: set[str]) -> dict[str, int]:
    """Decision records on the decisions topic about ``subjects``: records and distinct ids."""
    ends = await topic_ends(RUNTIME.bootstrap, [topics.DECISIONS])
    left = {tp for tp, end in ends.items() if end > 0}
    records, ids, corrections, withdrawals = 0, set(), 0, 0
    async for batch in batches_from(RUNTIME.bootstrap, dict.fromkeys(ends, 0)):
        for tp, part in batch.items():
            for decision in (json.loads(record.value or b"{}") for record in part):
                if decision["subject_id"] in subjects:
                    records += 1
                    ids.add(decision["event_id"])
                    corrections += decision["corrects"] is not None
                    withdrawals += decision["withdrawn"]
            if part and part[-1].offset + 1 >= ends[tp]:
                left.discard(tp)
        if not left:
            break
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
        (subject_key(*filed), str(event.event_id)) for event in feed for filed in filings(event)
    )
    found: Counter[tuple[str, str]] = Counter()
    revisions = files = 0
    conduct_files = EscalationStore(MongoDocuments(db)).files
    for key in {key for key, _ in expected}:
        # As the service reads a file: its latest copy may lag behind its last revision.
        loaded = await conduct_files.load(key)
        if loaded.value is not None:
            files += 1
            revisions += loaded.revision
            found.update((loaded.key, str(event.event_id)) for event in loaded.value.file.events)
    return {
        "filings_expected": sum(expected.values()),
        "filings_found": sum(found.values()),
        "filings_missing": sum(1 for key in expected if found[key] == 0),
        "all_filed_once": found == expected,
        "files": files,
        "sum_of_revisions": revisions,
    }


async def run_service(
    feed: list[Event],
    warmup: list[Event],
    service: processes.Service,
    db: str,
    progress: dict[str, Any],
) -> dict[str, Any]:
    """The warm-up handled, then the feed published and timed until handled; what it did."""
    sender = producer(RUNTIME.bootstrap, client_id="bench-feed")
    async with httpx.AsyncClient() as client:  # start_service waited for /healthz
        await sender.start()
        try:
            await publish(sender, warmup)
            before = await wait_handled(client, service, len(warmup), patience=120)
            pids = {"service": service.pid, "ferretdb": RUNTIME.pid("ferretdb")}
            pids |= {"kafka": RUNTIME.pid("kafka"), "bench_client": os.getpid()}
            cpu = processes.CpuWindow(pids)
            cpu.begin()
            log_offset = service.log.stat().st_size
            started = time.perf_counter()
            await publish(sender, feed)
            published_s = time.perf_counter() - started
            after = await wait_handled(  # the run's deadline applies
                client, service, len(warmup) + len(feed), patience=86400, progress=progress
            )
            seconds = time.perf_counter() - started
            usage = cpu.end(len(feed))
            with service.log.open("rb") as log:
                log.seek(log_offset)
                logged = log.read().decode(errors="replace").splitlines()
        finally:
            await sender.stop()

    def delta(name: str, label: str) -> dict[str, float]:
        early = processes.by_label(before, name, label)
        now = processes.by_label(after, name, label)
        return {k: round(v - early.get(k, 0.0), 4) for k, v in now.items()}

    by_kind = delta("qinglian_decisions_total", "kind")
    busy = delta("faststream_received_processed_messages_duration_seconds_sum", "handler")
    publishes = sum(delta("faststream_published_messages_total", "destination").values())
    publish_s = sum(
        delta("faststream_published_messages_duration_seconds_sum", "destination").values()
    )
    async with RUNTIME.database(db) as stored:
        store = await check_store(stored, feed)
    return {
        "events": len(feed),
        "seconds": round(seconds, 3),
        "events_per_s": round(len(feed) / seconds, 1),
        "decisions_per_s": round(sum(by_kind.values()) / seconds, 1),
        "decisions": int(sum(by_kind.values())),
        "decisions_by_kind": {k: int(v) for k, v in by_kind.items()},
        "published_in_s": round(published_s, 3),
        "handled_by_status": {k: int(v) for k, v in delta(HANDLED, "status").items()},
        "handler_failures": int(sum(delta("qinglian_handler_failures_total", "topic").values())),
        "handler_busy_s_by_topic": {k.split(".")[-2]: round(v, 2) for k, v in busy.items()},
        "handler_busy_s_total": round(sum(busy.values()), 2),
        "mean_handler_ms": round(sum(busy.values()) * 1000 / len(feed), 2),
        "decision_publishes": int(publishes),
        "mean_publish_ms": round(publish_s * 1000 / max(1.0, publishes), 2),
        "publish_wait_s_total": round(publish_s, 2),
        "cpu": usage,
        "store": store,
        "decisions_topic": await decisions_on_topic({s for e in feed for _, s in filings(e)}),
        "service_log_while_measured": {
            "lines": len(logged),
            "rebalance_warnings": sum("rebalanc" in line for line in logged),
            "errors": sum(" ERROR " in line or "Traceback" in line for line in logged),
        },
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    book = RuleBook.from_file(EscalationSettings().rules)
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(SEED)
    files_world = World(rng, now, staff=max(ENGINE_FILES, 50), companies=ENGINE_FILES // 5)
    pairs = conduct_files(files_world, staff=ENGINE_FILES)
    print(f"engine: {len(pairs)} conduct files", file=sys.stderr)
    result["engine"] = time_engine(pairs, book, now, options.engine_seconds)

    staff, companies = max(10, options.events // 8), max(3, options.events // 80)
    feed = service_feed(World(rng, now, staff=staff, companies=companies), options.events)
    warm_world = World(random.Random(SEED + 1), now, staff=20, companies=4, ids="WARM")
    warmup = service_feed(warm_world, WARMUP_PER_TYPE * len(FEED))
    sizes = Counter(subject_key(*filed) for event in feed for filed in filings(event))
    result["feed"] = {
        "events": len(feed),
        "by_type": dict(Counter(kind_of(event).event_type for event in feed)),
        "staff": staff,
        "companies": companies,
        "filings": sum(sizes.values()),
        "files": len(sizes),
        "largest_file_events": max(sizes.values()),
        "seed": SEED,
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
    run = tag()
    db = f"bench_service_{run}"
    result["service"] = progress = {"complete": False}  # what a run cut short got to
    env = RUNTIME.service_env(db=db, group_prefix=f"bench-{run}-")
    env |= {"QINGLIAN_LOG_LEVEL": LOG_LEVEL, "QINGLIAN_CLOCK_CHECK_SECONDS": str(365 * 86400.0)}
    escalation = processes.start_service(
        "escalation", env=env, port=free_port(SERVICE_PORTS), log_dir=RUNTIME.log_dir
    )
    try:
        service = deadline.run(run_service(feed, warmup, escalation, db, progress))
    finally:
        processes.stop_service(escalation)
    service |= {"complete": True, "log_level": LOG_LEVEL, "http_port": escalation.port}
    result["service"] = service
    print(f"service: {service['events_per_s']} events/s", file=sys.stderr)
    ratio = service["events_per_s"] / in_process["rules_only"]["events_per_s"]
    result["ratios"] = {"service_to_in_process_rules_only": round(ratio, 4)}
    if options.store_replay_events <= 0:
        return

    async def over_store() -> dict[str, Any]:
        async with RUNTIME.database(f"bench_inproc_{run}") as db:
            prefix = feed[: options.store_replay_events]
            outcome = await replay_over_store(prefix, book, db)
            return {"events": len(prefix), "of_feed": "the first events"} | outcome

    over = in_process["over_ferretdb"] = deadline.run(over_store())
    print(f"over FerretDB: {over['events_per_s']} events/s", file=sys.stderr)
    ratio = service["events_per_s"] / over["events_per_s"]
    result["ratios"]["service_to_in_process_over_ferretdb"] = round(ratio, 3)


def main() -> int:
    parser = report.parser(__doc__, timeout=3600)
    parser.add_argument("--events", type=int, default=2000, help="fact events for the service")
    parser.add_argument("--engine-seconds", type=float, default=3.0)
    parser.add_argument("--engine-only", action="store_true", help="no broker, no store")
    parser.add_argument(
        "--store-replay-events",
        type=int,
        default=500,
        help="the feed's first events replayed in process over FerretDB (after the service)",
    )
    options = parser.parse_args()
    if options.events < 1:
        parser.error("need at least 1 event")
    runtime = None if options.engine_only else RUNTIME
    notes = " ".join((__doc__ or "").split("\n\n", 2)[2].split())
    head = {"events": options.events}
    return report.run(
        "escalation_throughput", options, measure, runtime=runtime, head=head, notes=notes
    )


if __name__ == "__main__":
    sys.exit(main())
