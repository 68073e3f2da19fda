"""Reporting at a year's scale: how long the monthly report, the dashboard and the registers take
to answer for a 3,000-bed hospital's year (about 2 million events), and how long a rebuild from
the topics takes.

    .venv/bin/python -m bench.reporting_queries                      # a full year: ~2M events
    .venv/bin/python -m bench.reporting_queries --scale 0.01         # a quick run
    .venv/bin/python -m bench.reporting_queries --rebuild-scale 0.01 # a larger rebuild

Its own Kafka and FerretDB (.local/bench-reporting). The year (bench/harness/year.py, volumes
and shapes in bench/harness/hospital.toml) is generated in the order intake would publish it,
with escalation's lead rules and decisions and the router's own case functions; every record
goes through reporting's own ``Ingest`` into a store in memory. --scale multiplies every volume.

1. ``queries`` (at --scale): what ingest left, written into FerretDB one insert at a time;
   ``python -m services.reporting`` on it and, with a conduct-office token, the monthly report
   (hospital, busiest department), the dashboard and the four registers, --runs times each
   after a warm-up; then the same reads and computations in this process; then what each
   repository write costs against the full-size store (``write_costs``).
2. ``rebuild`` (at --rebuild-scale): a smaller year published to the topics, then
   ``python -m services.reporting.rebuild --into …``, compared document by document with the
   same year written as in phase 1; records per second, and the full year EXTRAPOLATED.
"""

import argparse
import asyncio
import itertools
import json
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
from typing import Any, TypeVar

import httpx
from aiokafka.partitioner import murmur2
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import report
from bench.harness.kafka import KIND_BY_CLASS, producer, send_all, topic_ends
from bench.harness.load import percentile
from bench.harness.processes import cpu_seconds, start_service, stop_service
from bench.harness.rebuild import rebuild
from bench.harness.report import load_average
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
from services.common.store import Document, connect
from services.reporting.access import grants, report_tokens
from services.reporting.facts import report_month
from services.reporting.ingest import DEAD_LETTER, REPORT_TOPICS, Ingest
from services.reporting.kpi import KpiTargets
from services.reporting.monthly import MEASURE_KINDS, MonthData, monthly_report
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportStore
from services.reporting.study import StudyRule

T = TypeVar("T")

RUNTIME = Runtime.of("bench-reporting", 49292, 47228, 48298, 45232)
SERVICE_PORTS = range(9100, 9200)
TZ = HOSPITAL_TIME_ZONE
BATCH = 5000
"""Records applied at once, as a rebuild applies them (services/reporting/rebuild.py)."""


class Fold:
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


def make_year(
    *, scale: float, seed: int, now: datetime, keep_records: bool, base: dict[Any, int]
) -> tuple[Fold, float]:
    """The year at ``scale``, and the seconds it took to generate."""
    started, cpu = time.perf_counter(), time.process_time()
    settings = ReportingSettings()
    year = Fold(partitions=settings.kafka_partitions, keep_records=keep_records, base=base)
    hospital = Hospital(random.Random(seed), prefix=f"Y-{tag()}")
    generator = Year(hospital, year, now=now, scale=scale)
    generator.generate(lambda line: print(f"  year at scale {scale}: {line}", file=sys.stderr))
    year.generated_cpu_s = time.process_time() - cpu
    return year, time.perf_counter() - started


# --- The runtime and the service ------------------------------------------------------------


def service_env(db: str) -> dict[str, str]:
    return RUNTIME.service_env(db=db) | {"QINGLIAN_LOG_LEVEL": "WARNING"}


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


async def seed(db: AsyncDatabase[Document], year: Fold) -> dict[str, Any]:
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


async def write_costs(db: AsyncDatabase[Document], year: Fold, *, repeats: int) -> dict[str, Any]:
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
    ferretdb = RUNTIME.pid("ferretdb")
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
    options: argparse.Namespace, deadline: Deadline, year: Fold, now: datetime, db_name: str
) -> dict[str, Any]:
    mongo = connect(settings_here())
    db = mongo[db_name]
    result: dict[str, Any] = {"database": db_name, "load_average_at_start": load_average()}
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
    started = time.perf_counter()
    # The case gauges are refreshed once at start, not again for a day.
    env = service_env(db_name) | {"QINGLIAN_GAUGE_REFRESH_SECONDS": "86400"}
    port = free_port(SERVICE_PORTS)
    service = await asyncio.to_thread(
        start_service, "reporting", env=env, port=port, log_dir=RUNTIME.log_dir
    )
    result |= {"month": month, "department": department, "runs": options.runs, "http_port": port}
    try:
        await wait_ready(service.url, service.pid, patience=min(300.0, deadline.left()))
        result["service_ready_s_incl_first_gauge_refresh"] = round(time.perf_counter() - started, 1)
        result["load_average_before_queries"] = load_average()
        result["http"] = await time_queries(
            service.url, token, queries, runs=options.runs, pid=service.pid
        )
    finally:
        await asyncio.to_thread(stop_service, service)
    mongo = connect(settings_here())
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
    return ReportingSettings(kafka_bootstrap=RUNTIME.bootstrap, mongo_url=RUNTIME.mongo_url)


async def end_offsets() -> dict[Any, int]:
    """The end of every partition of the report topics (created if missing)."""
    await ensure_topics(settings_here(), REPORT_TOPICS)
    ends = await topic_ends(RUNTIME.bootstrap, REPORT_TOPICS)
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


async def publish(records: list[tuple[str, bytes, bytes]]) -> float:
    """Every record in order, keyed, acks=all; seconds taken."""
    sender = producer(
        RUNTIME.bootstrap, linger_ms=20, max_batch_size=512 * 1024, client_id="bench-reporting"
    )
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
    full: Fold | None,
    source_db: str,
) -> dict[str, Any]:
    scale = options.rebuild_scale
    result: dict[str, Any] = {"scale": scale, "load_average_at_start": load_average()}
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
    result["rebuild"] = deadline.run(
        run_rebuild(into=into, source_db=source_db, limit=deadline.left())
    )
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
    RUNTIME.start_fresh(deadline)
    full: Fold | None = None
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
    parser = report.parser(__doc__, timeout=2400)
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
