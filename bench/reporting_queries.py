"""Reporting at a year's scale (bench/harness/year.py: ~2 million events at --scale 1) on its
own Kafka and FerretDB (.local/bench-reporting). 1. queries (--scale): the year, folded by
reporting's own Ingest in memory, is written into FerretDB one document at a time; the service
answers the monthly report (hospital, busiest department), the dashboard and the four registers
--runs times each after a warm-up; then the same reads and computations in this process, and what
each repository write costs. 2. rebuild (--rebuild-scale): a year published to the topics, rebuilt
by ``python -m services.reporting.rebuild``, compared document by document with the same year
written as in 1; the full year's rebuild EXTRAPOLATED.

    .venv/bin/python -m bench.reporting_queries --scale 0.01 [--rebuild-scale 0.01]
"""

import argparse
import asyncio
import dataclasses
import functools
import inspect
import itertools
import math
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka.partitioner import murmur2
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import report
from bench.harness.kafka import KIND_BY_CLASS, producer, send_all, topic_ends
from bench.harness.load import percentile
from bench.harness.processes import CpuWindow, start_service, stop_service
from bench.harness.rebuild import rebuild
from bench.harness.runtime import Deadline, Runtime, free_port, tag
from bench.harness.year import Hospital, Year, routing
from schemas import topics
from schemas.base import HOSPITAL_TIME_ZONE, Event
from schemas.case import CaseUpdated
from schemas.dead_letter import DeadLetter
from schemas.decision import Decision
from services.common.broker import ensure_topics
from services.common.consuming import Received
from services.common.departments import DepartmentCatalogue
from services.common.documents import MemoryDocuments, MongoDocuments
from services.common.roles import Role
from services.common.store import Document
from services.reporting.access import grants, report_tokens
from services.reporting.facts import report_month
from services.reporting.ingest import DEAD_LETTER, REPORT_TOPICS, Ingest
from services.reporting.kpi import KpiTargets
from services.reporting.monthly import MEASURE_KINDS, MonthData, monthly_report
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportStore
from services.reporting.study import StudyRule

RUNTIME = Runtime.numbered("bench-reporting", 4)
BATCH = 5000
"""Records applied at once, as a rebuild applies them (services/reporting/rebuild.py)."""
COLLECTIONS = {
    "reporting_counts": "counts",
    "reporting_cases": "cases",
    "reporting_case_facts": "case_facts",
    "reporting_case_events": "case_events",
    "reporting_decisions": "decisions",
    "reporting_kpi": "observations",
    "reporting_training": "sessions",
}
"""The collections reporting builds from the topics, and the ReportStore attributes for them."""
VERSIONED = ("reporting_counts", "reporting_cases")
"""Collections of versioned documents: each document's revisions are kept beside it."""


log = functools.partial(print, file=sys.stderr)


class Fold:
    """A year's records as they reach reporting: applied in order, ``BATCH`` at a time, by
    reporting's own Ingest to a store in memory, each at the partition Kafka's default
    partitioner gives its key and the next offset there (after ``base``); every record (topic,
    key, value) kept for publishing if ``keep``."""

    def __init__(self, *, keep: bool, base: dict[tuple[str, int], int]) -> None:
        self.partitions = ReportingSettings().kafka_partitions
        self.offsets: Counter[tuple[str, int]] = Counter(base)
        self.store = ReportStore(MemoryDocuments())
        self.ingest = Ingest(self.store, departments=routing().catalogue)
        self.loop = asyncio.new_event_loop()
        self.pending: dict[str, list[Received[Any]]] = {}
        self.records: list[tuple[str, bytes, bytes]] | None = [] if keep else None
        self.events_by_type: Counter[str] = Counter()
        self.decisions_by_kind: Counter[str] = Counter()
        self.records_by_topic: Counter[str] = Counter()
        self.sample: dict[str, Any] = {}
        """The last record of each kind, for the write-cost probes."""

    def add(self, handler: str, topic: str, key: bytes, value: Any) -> Received[Any]:
        """Queue a record for ``Ingest.<handler>``; a full queue is applied as one batch."""
        partition = (murmur2(key) & 0x7FFFFFFF) % self.partitions
        received = Received(value, topic, partition, self.offsets[topic, partition])
        self.offsets[topic, partition] += 1
        self.records_by_topic[topic] += 1
        if self.records is not None:
            self.records.append((topic, key, value.model_dump_json().encode()))
        queued = self.pending.setdefault(handler, [])
        queued.append(received)
        if len(queued) >= BATCH:
            self.flush(handler)
        return received

    def flush(self, *handlers: str) -> None:
        for handler in handlers or list(self.pending):
            if batch := self.pending.pop(handler, []):
                self.loop.run_until_complete(getattr(self.ingest, handler)(batch))

    def fact(self, event: Event) -> None:
        kind = KIND_BY_CLASS[type(event)]
        self.events_by_type[kind.event_type] += 1
        self.sample[kind.event_type] = self.add("facts", kind.topic, kind.key(event), event)

    def dead_letter(self, letter: DeadLetter) -> None:
        self.events_by_type[DEAD_LETTER] += 1
        self.add("dead_letters", topics.DEAD_LETTERS, letter.dead_letter_id.bytes, letter)

    def case(self, case: CaseUpdated) -> None:
        self.sample["case"] = case
        self.add("cases", topics.CASES, case.case_id.encode(), case)

    def decision(self, decision: Decision) -> None:
        self.decisions_by_kind[str(decision.kind)] += 1
        self.sample["decision"] = decision
        self.add("decisions", topics.DECISIONS, decision.subject_id.encode(), decision)

    @functools.cached_property
    def kept(self) -> dict[str, dict[str, Any]]:
        """What ingest left in the memory store, by collection (read once it is all applied)."""
        self.flush()
        stored = {name: getattr(self.store, attr) for name, attr in COLLECTIONS.items()}
        return {name: self.loop.run_until_complete(kept.find()) for name, kept in stored.items()}

    def busiest_department(self, month: str) -> str:
        cases = self.kept["reporting_case_facts"].values()
        counts = Counter(case.department for case in cases if case.month == month)
        return counts.most_common(1)[0][0] if counts else sorted(routing().catalogue.departments)[0]


def make_year(
    *, scale: float, seed: int, now: datetime, keep: bool, base: dict[tuple[str, int], int]
) -> tuple[Fold, dict[str, Any]]:
    """The year at ``scale`` folded, and what it holds (and how long it took to generate)."""
    started, cpu = time.perf_counter(), time.process_time()
    year = Fold(keep=keep, base=base)
    hospital = Hospital(random.Random(seed), prefix=f"Y-{tag()}")
    Year(hospital, year, now=now, scale=scale).generate(lambda line: log(f"  year: {line}"))
    generated_in_s = round(time.perf_counter() - started, 1)
    generated_cpu_s = round(time.process_time() - cpu, 1)
    cases = year.kept["reporting_case_facts"].values()
    return year, {
        "events": sum(year.events_by_type.values()),
        "events_by_type": dict(year.events_by_type.most_common()),
        "cases": len(cases),
        "cases_by_kind": dict(Counter(str(case.kind) for case in cases).most_common()),
        "case_revisions": year.records_by_topic[topics.CASES],
        "decisions": sum(year.decisions_by_kind.values()),
        "decisions_by_kind": dict(year.decisions_by_kind.most_common()),
        "records_on_topics": sum(year.records_by_topic.values()),
        "documents": {name: len(documents) for name, documents in year.kept.items()},
        "generated_in_s": generated_in_s,
        "generated_cpu_s": generated_cpu_s,
    }


# --- Writing the store as reporting would have it, and what a write costs ---------------------


async def seed(db: AsyncDatabase[Document], year: Fold) -> dict[str, Any]:
    """What ingest left in the memory store, one document at a time (FerretDB stalls on large
    bulk writes): a record with a put, a versioned document as its first revision. Seconds,
    writes/s and ms per write in each fifth (a write may cost more as the collection grows)."""
    target, timings = ReportStore(MongoDocuments(db)), {}
    for name, kept in year.kept.items():
        log(f"  seeding: {len(kept)} documents into {name}")
        records, items = getattr(target, COLLECTIONS[name]), list(kept.items())
        size, fifths, started = max(1, math.ceil(len(items) / 5)), [], time.perf_counter()
        for start in range(0, len(items), size):
            chunk, chunk_started = items[start : start + size], time.perf_counter()
            for key, value in chunk:
                if name in VERSIONED:
                    await records.save(key, value.value, over=0)
                else:
                    await records.put(key, value)
            fifths.append(round((time.perf_counter() - chunk_started) * 1000 / len(chunk), 2))
        seconds = time.perf_counter() - started
        timings[name] = {
            "documents_written": len(items),
            "seconds": round(seconds, 2),
            "writes_per_s": round(len(items) / seconds, 1) if seconds else None,
            "ms_per_write_by_fifth": fifths,
        }
    await target.documents.prepare()
    return timings


async def median_ms(make: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The median ms of ``repeats`` calls (their outcome awaited), and the last outcome."""
    times, outcome = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        outcome = make()
        outcome = await outcome if inspect.isawaitable(outcome) else outcome
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1), outcome


async def write_costs(db: AsyncDatabase[Document], year: Fold, *, repeats: int) -> dict[str, Any]:
    """Each of ingest's writes against the store as it is, for a batch of one record (after the
    queries: the probes add a few documents); the median of ``repeats``, in ms."""
    store = ReportStore(MongoDocuments(db))
    ingest = Ingest(store, departments=routing().catalogue)
    probes: dict[str, Callable[[], Awaitable[Any]]] = {}
    if rating := year.sample.get("satisfaction"):
        offsets = itertools.count(rating.offset + 1)
        probes["count_next_offset (a fact record)"] = lambda: ingest.facts(
            [dataclasses.replace(rating, offset=next(offsets))]
        )
    if case := year.sample.get("case"):
        revisions = itertools.count(case.revision + 1000)

        def copy(**update: Any) -> list[Received[CaseUpdated]]:
            return [Received(case.model_copy(update=update), topics.CASES, 0, 0)]

        probes["record_case_new_case (a case's first revision)"] = lambda: ingest.cases(
            copy(case_id=f"CASE-{uuid.uuid4().hex[:20].upper()}")
        )
        probes["record_case_next_revision (a later revision)"] = lambda: ingest.cases(
            copy(revision=next(revisions))
        )
        probes["load_case_by_id (the case view)"] = lambda: store.case(case.case_id)
    if decision := year.sample.get("decision"):
        probes["record_decision_new (a decision)"] = lambda: ingest.decisions(
            [Received(decision.model_copy(update={"event_id": uuid.uuid4()}), "d", 0, 0)]
        )
    costs = {name: (await median_ms(probe, repeats))[0] for name, probe in probes.items()}
    sizes = {name: await db[name].count_documents({}) for name in VERSIONED}
    return {"ms": costs, "collection_sizes": sizes, "repeats": repeats}


# --- Timing the queries -----------------------------------------------------------------------


async def time_queries(
    base: str, token: str, queries: dict[str, str], *, runs: int, pid: int
) -> dict[str, Any]:
    """Each query ``runs`` times after one warm-up, round-robin, one at a time."""
    times: dict[str, list[float]] = {name: [] for name in queries}
    cpu = {name: dict.fromkeys(("service", "ferretdb"), 0.0) for name in queries}
    sizes: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as client:
        for run in range(runs + 1):
            for name, path in queries.items():
                window = CpuWindow({"service": pid, "ferretdb": RUNTIME.pid("ferretdb")})
                window.begin()
                started = time.perf_counter()
                response = await client.get(path)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                if run > 0:  # not the warm-up
                    times[name].append(elapsed)
                    sizes[name] = len(response.content)
                    for process, used in window.used().items():
                        cpu[name][process] += used
            log(f"  queries: run {run}/{runs} done")
    return {
        name: {
            "path": queries[name],
            "median_ms": round(statistics.median(seconds) * 1000, 1),
            "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
            "min_ms": round(min(seconds) * 1000, 1),
            "response_bytes": sizes[name],
            "service_cpu_ms_per_request": round(cpu[name]["service"] * 1000 / runs, 1),
            "ferretdb_cpu_ms_per_request": round(cpu[name]["ferretdb"] * 1000 / runs, 1),
        }
        for name, seconds in times.items()
    }


async def breakdown(
    db: AsyncDatabase[Document], *, month: str, department: str, now: datetime, repeats: int
) -> dict[str, Any]:
    """The reads a report request makes, and its computations, one by one in this process."""
    store, settings = ReportStore(MongoDocuments(db)), ReportingSettings()
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
    reads = {}
    for name, read in readers.items():
        read_ms, found = await median_ms(read, repeats)
        size = len(found.cases) if isinstance(found, MonthData) else len(found)
        reads[name] = {"read_ms": read_ms, "documents_or_cases": size}
        log(f"  breakdown: {name} {reads[name]}")
    data = await store.month_data(month, None)
    report_of = functools.partial(
        monthly_report,
        catalogue=DepartmentCatalogue.from_file(settings.departments),
        targets=KpiTargets.from_file(settings.kpi_targets),
        study=StudyRule.from_file(settings.study_rule),
        now=now,
    )
    report_ms, hospital = await median_ms(
        lambda: report_of(data, month=month, department=None), repeats
    )
    json_ms, _ = await median_ms(hospital.model_dump_json, repeats)
    return {
        "repeats": repeats,
        "reads": reads,
        "computations": {
            "monthly_report_hospital_ms": report_ms,
            "monthly_report_hospital_to_json_ms": json_ms,
        },
    }


async def query_phase(
    options: argparse.Namespace, deadline: Deadline, year: Fold, now: datetime, db_name: str
) -> dict[str, Any]:
    result: dict[str, Any] = {"database": db_name, "load_average_at_start": report.load_average()}
    async with RUNTIME.database(db_name) as db:
        result["seeding"] = await seed(db, year)
        _, token = await report_tokens(MongoDocuments(db), cache_seconds=0).issue(
            grants(Role.CONDUCT_OFFICE, None), label="bench", now=datetime.now(UTC)
        )
    month = report_month(now.astimezone(HOSPITAL_TIME_ZONE).replace(day=1) - timedelta(days=1))
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
    started = time.perf_counter()
    # The case gauges are refreshed once at start, not again for a day.
    env = RUNTIME.service_env(db=db_name) | {
        "QINGLIAN_LOG_LEVEL": "WARNING",
        "QINGLIAN_GAUGE_REFRESH_SECONDS": "86400",
    }
    port = free_port(range(9100, 9200))
    service = await asyncio.to_thread(
        start_service, "reporting", env=env, port=port, log_dir=RUNTIME.log_dir
    )
    result |= {"month": month, "department": department, "runs": options.runs, "http_port": port}
    try:
        give_up = time.monotonic() + min(300.0, deadline.left())
        gauge = 'qinglian_cases{status="open"}'  # there once the gauges' first refresh is done
        async with httpx.AsyncClient(timeout=5) as client:
            while gauge not in (await client.get(f"{service.url}/metrics")).text:
                if not service.alive() or time.monotonic() > give_up:
                    raise RuntimeError(f"the reporting service was not ready; see {service.log}")
                await asyncio.sleep(0.5)
        result["service_ready_s_incl_first_gauge_refresh"] = round(time.perf_counter() - started, 1)
        result["load_average_before_queries"] = report.load_average()
        result["http"] = await time_queries(
            service.url, token, queries, runs=options.runs, pid=service.pid
        )
    finally:
        await asyncio.to_thread(stop_service, service)
    async with RUNTIME.database(db_name) as db:
        result["in_process"] = await breakdown(
            db, month=month, department=department, now=now, repeats=options.repeats
        )
        log("  write costs at this size")
        result["write_costs"] = await write_costs(db, year, repeats=options.probe_repeats)
    return result


# --- The rebuild ------------------------------------------------------------------------------


async def end_offsets() -> dict[tuple[str, int], int]:
    """The end of every partition of the report topics (created if missing)."""
    settings = ReportingSettings(kafka_bootstrap=RUNTIME.bootstrap, mongo_url=RUNTIME.mongo_url)
    await ensure_topics(settings, REPORT_TOPICS)
    ends = await topic_ends(RUNTIME.bootstrap, REPORT_TOPICS)
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


async def publish(records: list[tuple[str, bytes, bytes]]) -> float:
    """Every record in order, keyed, acks=all; seconds taken."""
    sender = producer(RUNTIME.bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await sender.start()
    try:
        started = time.perf_counter()
        await send_all(sender, records)
        return time.perf_counter() - started
    finally:
        await sender.stop()


async def run_rebuild(*, into: str, source_db: str, limit: float) -> dict[str, Any]:
    """The rebuild tool's summary, wall time and CPU per record (its own, FerretDB's, Kafka's)."""
    done = await rebuild(RUNTIME, into=into, source_db=source_db, limit=limit)
    if done.summary is None:
        raise RuntimeError(f"the rebuild did not finish; see {RUNTIME.log_dir}")
    records = int(done.summary["records"])
    usage = done.cpu_per_record(records)["processes"]
    return {
        "summary": {**done.summary, "unreadable": len(done.summary["unreadable"])},
        "wall_s": round(done.seconds, 2),
        "records_per_s": round(records / float(done.summary["seconds"]), 1),
        "cpu_ms_per_record": {
            "rebuild_process": usage["rebuild"]["cpu_ms_per_event"],
            "ferretdb": usage.get("ferretdb", {}).get("cpu_ms_per_event"),
            "kafka": usage.get("kafka", {}).get("cpu_ms_per_event"),
        },
    }


async def compare(expected: AsyncDatabase[Document], rebuilt: AsyncDatabase[Document]) -> Any:
    """Document by document, each collection built from the topics (revisions too)."""
    outcome: dict[str, Any] = {}
    for name in [*COLLECTIONS, *(f"{name}_revisions" for name in VERSIONED)]:
        ours = {document["_id"]: document async for document in expected[name].find({})}
        theirs = {document["_id"]: document async for document in rebuilt[name].find({})}
        differing = sum(ours.get(key) != theirs.get(key) for key in ours.keys() | theirs.keys())
        outcome[name] = {
            "seeded": len(ours),
            "rebuilt": len(theirs),
            "differing_documents": differing,
        }
    outcome["identical"] = all(item["differing_documents"] == 0 for item in outcome.values())
    return outcome


def rebuild_phase(
    options: argparse.Namespace, deadline: Deadline, now: datetime, full: Fold | None, db: str
) -> dict[str, Any]:
    scale = options.rebuild_scale
    result: dict[str, Any] = {"scale": scale, "load_average_at_start": report.load_average()}
    base = deadline.run(end_offsets())
    year, result["data"] = make_year(
        scale=scale, seed=options.seed + 1, now=now, keep=True, base=base
    )
    records, year.records = year.records or [], None
    log(f"rebuild: publishing {len(records)} records")
    result["published_in_s"] = round(deadline.run(publish(records)), 1)
    run = tag()
    into = f"bench_rebuilt_{run}"
    log(f"rebuild: python -m services.reporting.rebuild --into {into}")
    result["rebuild"] = deadline.run(run_rebuild(into=into, source_db=db, limit=deadline.left()))

    async def check() -> tuple[Any, Any]:
        async with RUNTIME.database(f"bench_seeded_{run}") as seeded:
            await seed(seeded, year)
            same = await compare(seeded, seeded.client[into])
            log("  write costs at this size")
            return same, await write_costs(seeded, year, repeats=options.probe_repeats)

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


NOTES = (
    "queries.http: wall time per request from this script (one at a time, after a warm-up "
    "round), median and nearest-rank p95 of --runs; service_cpu and ferretdb_cpu: CPU those "
    "processes used per request (/proc). queries.in_process: the repository reads a request "
    "makes and the pure computations, medians of --repeats, in this process. write_costs: ms per "
    "repository write against the store as seeded. rebuild.records_per_s: the tool's own "
    "records / seconds. seeded_equals_rebuilt: the store seeded as in the queries phase against "
    "the rebuilt one, document by document. Extrapolations are labelled as such."
)


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    result["now"] = now.isoformat()
    RUNTIME.start_fresh(deadline)
    full: Fold | None = None
    source_db = f"bench_reporting_{tag()}"
    if not options.no_queries:
        log(f"queries: generating the year at scale {options.scale}")
        full, result["data"] = make_year(
            scale=options.scale, seed=options.seed, now=now, keep=False, base={}
        )
        log(str(result["data"]))
        result["queries"] = deadline.run(query_phase(options, deadline, full, now, source_db))
    if not options.no_rebuild:
        result["rebuild"] = rebuild_phase(options, deadline, now, full, source_db)


def main() -> int:
    parser = report.parser(__doc__, timeout=2400)
    for flag, kind, default, meaning in (
        ("--scale", float, 1.0, "of a 3,000-bed year (~2M events)"),
        ("--rebuild-scale", float, None, "the rebuild's year (default: min(scale, 0.002))"),
        ("--runs", int, 5, "timed requests per query"),
        ("--repeats", int, 3, "in-process timings per step"),
        ("--probe-repeats", int, 9, "timed writes per repository write kind"),
        ("--seed", int, 2026, "of the year's random draws"),
    ):
        parser.add_argument(flag, type=kind, default=default, help=meaning)
    parser.add_argument("--no-queries", action="store_true")
    parser.add_argument("--no-rebuild", action="store_true")
    options = parser.parse_args()
    # This process, the service and the rebuild read the same (default) settings.
    for name in [name for name in os.environ if name.startswith("QINGLIAN_")]:
        del os.environ[name]
    if options.rebuild_scale is None:
        options.rebuild_scale = min(options.scale, 0.002)
    if options.scale <= 0 or options.rebuild_scale <= 0 or options.runs < 1:
        parser.error("scales must be positive and runs at least 1")
    head = {"scale": options.scale, "rebuild_scale": options.rebuild_scale}
    return report.run(
        "reporting_queries", options, measure, runtime=RUNTIME, head=head, notes=NOTES
    )


if __name__ == "__main__":
    sys.exit(main())
