"""System load: the four services end to end at a constant arrival rate, a raw aiokafka loop at
the same rate for comparison, and a replay of stored events into empty report aggregates.

    .venv/bin/python -m bench.system_load                  # 2 events/s for 60 s, replay 20000
    .venv/bin/python -m bench.system_load --rate 1,2,4 --seconds 90   # a ladder of rates
    .venv/bin/python -m bench.system_load --skip-load --replay-events 200000 --replay-limit 600
    .venv/bin/python -m bench.system_load --rate 1 --seconds 20 --replay-events 2000   # quick

Its own Kafka and FerretDB (.local/bench-system), intake, router, escalation and reporting as
subprocesses on it (log level INFO as deploy/local/services.sh runs them).

Load, per rate of --rate (lowest first; a rate not kept up with ends the ladder): POSTs at a
constant arrival rate for --seconds (``--batch N``: ``POST /v1/batch`` of N events at rate/N),
a mix of complaints, ratings, rep visits and rankings from the year generator, with an API key
issued on intake's store. Per event, from intake's 202: ``reporting`` (counted in
reporting_counts, polled every --poll s), ``router_case`` (a case on qinglian.cases.v1 names
it), ``router_commit``/``escalation_commit`` (the service's group committed past its record,
polled every --group-poll s). CPU per process from /proc; FerretDB's requests per event from its
debug metrics. Baseline, after each rate: a raw aiokafka relay process (one record at a time,
acks=all, commit after each) fed at the same rate with the same record sizes.

Replay (services stopped): --replay-events fact events produced straight into the fact topics;
``rebuild`` (``python -m services.reporting.rebuild --into NEWDB``, bounded by --replay-limit,
the counts checked against the topics; the same records read and parsed with no store beside);
``replay_unchanged`` (reporting's groups reset to 0 and reporting run on NEWDB: nothing may
change). Extrapolations to 1,000,000 records are labelled as such.
"""

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import TypeAdapter
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from bench.harness import kafka, report
from bench.harness.kafka import JSON_HEADERS
from bench.harness.load import latency_summary
from bench.harness.load import open_loop as paced
from bench.harness.processes import CpuWindow, Service, services, start_service, stop_service
from bench.harness.rebuild import rebuild, thin
from bench.harness.runtime import ROOT, SYSTEM_RUNTIME, Deadline, clean_env, free_port, tag
from bench.harness.year import Hospital
from schemas import topics
from schemas.base import HOSPITAL_TIME_ZONE, Event
from schemas.catalogue import BY_TYPE, AnyEvent
from services.common.broker import ensure_topics
from services.common.consuming import subscriber_group
from services.common.credentials import Grants
from services.common.documents import MongoDocuments
from services.intake.crypto import new_key
from services.intake.store import IntakeStore
from services.reporting.facts import report_month
from services.reporting.ingest import REPORT_TOPICS
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportStore

RUNTIME = SYSTEM_RUNTIME
SERVICE_PORTS = range(9200, 9300)
SERVICE_NAMES = ("intake", "router", "escalation", "reporting")
SOURCE = "bench"
MIX = {"complaint": 40, "satisfaction": 30, "visitor_log": 20, "prescription_ranking": 10}
MIX_TOPICS = tuple(BY_TYPE[event_type].topic for event_type in MIX)
RELAY_IN, RELAY_OUT = "qinglian.bench.relay-in.v1", "qinglian.bench.relay-out.v1"
ANY_EVENT: TypeAdapter[Any] = TypeAdapter(AnyEvent)
MILLION = 1_000_000


def settings(db: str = "unused") -> ReportingSettings:
    """Settings on the benchmark runtime, for ensure_topics and the store (arguments win over
    the environment)."""
    return ReportingSettings(
        kafka_bootstrap=RUNTIME.bootstrap, mongo_url=RUNTIME.mongo_url, mongo_db=db
    )


def mongo() -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(RUNTIME.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000)


async def partitions_of(names: Iterable[str]) -> list[TopicPartition]:
    return await kafka.partitions_of(RUNTIME.bootstrap, names)


async def topics_ready(names: Iterable[str]) -> None:
    """Created if missing, each partition with a leader."""
    await ensure_topics(settings(), tuple(names))
    await kafka.leaders_elected(RUNTIME.bootstrap, names)


async def end_offsets(partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    return await kafka.end_offsets(RUNTIME.bootstrap, partitions)


async def ferretdb_metrics() -> dict[str, float]:
    """FerretDB's own counters (its debug listener): requests by command, and the waits for
    one of its SQLite connections."""
    url = f"http://127.0.0.1:{RUNTIME.ferretdb_debug_port}/debug/metrics"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(url)).text
    except httpx.HTTPError:
        return {}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ferretdb_client_requests_total":
                name = f"requests.{sample.labels.get('command', '?')}"
            elif sample.name == "ferretdb_client_responses_total":
                if sample.labels.get("result") == "ok":
                    continue
                name = f"failed_responses.{sample.labels.get('command', '?')}"
            elif sample.name in (
                "ferretdb_sqldb_wait_count_total",
                "ferretdb_sqldb_wait_duration_seconds_total",
            ):
                name = sample.name.removeprefix("ferretdb_sqldb_").removesuffix("_total")
            else:
                continue
            values[name] = values.get(name, 0.0) + sample.value
    return values


def ferretdb_delta(
    before: dict[str, float], after: dict[str, float], events: int
) -> dict[str, Any]:
    """Per event handled: FerretDB requests by command; connection-pool waits in all."""
    if not before or not after:
        return {"unavailable": True}
    per_event: dict[str, float] = {}
    failed: dict[str, float] = {}
    for name, value in sorted(after.items()):
        delta = value - before.get(name, 0.0)
        if name.startswith("requests.") and delta:
            per_event[name.removeprefix("requests.")] = round(delta / max(events, 1), 2)
        elif name.startswith("failed_responses.") and delta:
            failed[name.removeprefix("failed_responses.")] = delta
    requests = sum(
        value - before.get(name, 0.0) for name, value in after.items() if name.startswith("req")
    )
    return {
        "requests": int(requests),
        "requests_per_event": round(requests / max(events, 1), 2),
        "requests_per_event_by_command": per_event,
        "failed_responses": failed or None,
        "sqlite_connection_waits": int(after.get("wait_count", 0) - before.get("wait_count", 0)),
        "sqlite_connection_wait_s": round(
            after.get("wait_duration_seconds", 0) - before.get("wait_duration_seconds", 0), 2
        ),
    }


# --- What is sent -----------------------------------------------------------------------------


def last_weekday_morning(now: datetime, rng: random.Random) -> datetime:
    """A visiting time (a weekday, 09:00-11:59 hospital time) in the past week."""
    local = now.astimezone(HOSPITAL_TIME_ZONE)
    for back in range(1, 8):
        day = local - timedelta(days=back)
        if day.isoweekday() <= 5:
            return day.replace(hour=rng.randint(9, 11), minute=rng.randint(0, 59), second=0)
    raise AssertionError("a week has weekdays")


def submission(hospital: Hospital, event_type: str, ref: str, now: datetime) -> dict[str, Any]:
    """A valid submission of the example hospital (JSON-ready), most of them unremarkable; 3 %
    of visits in a ward and 3 % without an appointment (leads); 30 % of complaints with the
    complainant's contact."""
    rng = hospital.rng
    given: dict[str, Any] = {"source_system": SOURCE, "source_ref": ref}
    occurred = now - timedelta(minutes=rng.uniform(1, 120))
    if event_type == "visitor_log":
        occurred = given["started_at"] = last_weekday_morning(now, rng)
        given |= {"place_kind": "ward"} if rng.random() < 0.03 else {}
        given |= {"appointment_id": None} if rng.random() < 0.03 else {}
    if event_type == "complaint" and rng.random() < 0.3:
        contact = {"name": "张三", "phone": "+86 138 0000 0000"}
        given |= {"anonymous": False, "complainant_contact": contact}
    return hospital.body(event_type, occurred, **given)


def pick_type(rng: random.Random) -> str:
    return rng.choices(list(MIX), list(MIX.values()))[0]


# --- Per-event tracking --------------------------------------------------------------------


@dataclass
class Sent:
    event_type: str
    sent_at: float
    acked_at: float | None = None
    status: int | None = None
    event_id: str | None = None
    position: tuple[str, int, int] | None = None
    month: str = ""
    reached: dict[str, float] = field(default_factory=dict)
    """Stage name → wall time the event was seen there."""


@dataclass
class Tracker:
    """What was sent and where each accepted event has been seen."""

    by_id: dict[str, Sent] = field(default_factory=dict)
    all: list[Sent] = field(default_factory=list)
    record_sizes: list[int] = field(default_factory=list)
    case_sizes: list[int] = field(default_factory=list)
    positions: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    """event id → (topic, partition, offset), as read off the fact topics (maybe before the
    202 was read)."""
    waiting: dict[tuple[str, str, int], list[tuple[int, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    """(stage, topic, partition) → sorted (offset, event id) not yet seen at that stage."""
    counted_waiting: dict[str, list[tuple[int, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    """reporting_counts document id → sorted (offset, event id) not yet counted."""
    early_cases: dict[str, float] = field(default_factory=dict)
    poll_seconds: list[float] = field(default_factory=list)
    client_errors: Counter[str] = field(default_factory=Counter)

    def accepted(self) -> list[Sent]:
        return [s for s in self.all if s.status == 202 and s.event_id is not None]

    def stages(self, sent: Sent) -> list[str]:
        stages = ["reporting", "escalation_commit"]
        if sent.event_type == "complaint":
            stages += ["router_case", "router_commit"]
        return stages

    def acked(self, sent: Sent) -> None:
        assert sent.event_id is not None  # noqa: S101
        self.by_id[sent.event_id] = sent
        if sent.event_id in self.early_cases:
            stage = "router_case" if sent.event_type == "complaint" else "lead_case"
            sent.reached[stage] = self.early_cases.pop(sent.event_id)
        if sent.event_id in self.positions:
            self.place(sent)

    def located(self, event_id: str, position: tuple[str, int, int]) -> None:
        self.positions[event_id] = position
        if event_id in self.by_id:
            self.place(self.by_id[event_id])

    def place(self, sent: Sent) -> None:
        """Its position is known and its 202 came back: wait for it at each stage."""
        assert sent.event_id is not None  # noqa: S101
        sent.position = topic, partition, offset = self.positions[sent.event_id]
        for stage in ("router_commit", "escalation_commit"):
            if stage in self.stages(sent):
                bisect.insort(self.waiting[(stage, topic, partition)], (offset, sent.event_id))
        document = f"{topic}|{partition}|{sent.month}"
        bisect.insort(self.counted_waiting[document], (offset, sent.event_id))

    def reach(self, pending: list[tuple[int, str]], upto: int, stage: str, at: float) -> None:
        """Every event waiting in ``pending`` at an offset below ``upto`` reached ``stage``."""
        cut = bisect.bisect_left(pending, (upto, ""))
        for _, event_id in pending[:cut]:
            self.by_id[event_id].reached.setdefault(stage, at)
        del pending[:cut]

    def case_seen(self, event_id: str, at: float) -> None:
        """A case names the event: a complaint's own case, or one opened on a lead escalation
        raised from a rating or a visit (``lead_case``)."""
        sent = self.by_id.get(event_id)
        if sent is None:
            self.early_cases.setdefault(event_id, at)
        else:
            stage = "router_case" if sent.event_type == "complaint" else "lead_case"
            sent.reached.setdefault(stage, at)

    def outstanding(self) -> dict[str, int]:
        left: Counter[str] = Counter()
        for sent in self.accepted():
            for stage in self.stages(sent):
                if stage not in sent.reached:
                    left[stage] += 1
        return dict(left)


async def watch_facts(tracker: Tracker, since: dict[TopicPartition, int]) -> None:
    """Read the fact records intake writes: each event's position and record size."""
    async for batch in kafka.batches_from(RUNTIME.bootstrap, since):
        for tp, records in batch.items():
            for record in records:
                value = record.value or b""
                tracker.record_sizes.append(len(value))
                position = (tp.topic, tp.partition, record.offset)
                tracker.located(json.loads(value)["event_id"], position)


async def watch_cases(tracker: Tracker, since: dict[TopicPartition, int]) -> None:
    """Read the cases the router publishes: when each complaint first shows in one."""
    async for batch in kafka.batches_from(RUNTIME.bootstrap, since):
        seen = time.time()
        for records in batch.values():
            for record in records:
                value = record.value or b""
                tracker.case_sizes.append(len(value))
                for event_id in json.loads(value)["source_event_ids"]:
                    tracker.case_seen(event_id, seen)


async def poll_counts(tracker: Tracker, db: str, every: float) -> None:
    """Poll reporting_counts; an event counts once its document's offset reached its own."""
    client = mongo()
    try:
        collection = client[db]["reporting_counts"]
        while True:
            asked = time.time()
            documents = await collection.find({}).to_list(None)
            tracker.poll_seconds.append(time.time() - asked)
            for document in documents:
                pending = tracker.counted_waiting.get(document["_id"])
                if pending:
                    offset = document["value"]["offset"]  # the head: a recent revision
                    tracker.reach(pending, offset + 1, "reporting", asked)
            await asyncio.sleep(every)
    finally:
        await client.close()


def watched_groups(prefix: str) -> dict[str, str]:
    """Consumer group → stage, for the subscribers that handle the load's fact topics."""
    groups = {subscriber_group(f"{prefix}router", topics.COMPLAINTS): "router_commit"}
    for topic in MIX_TOPICS:
        groups[subscriber_group(f"{prefix}escalation", topic)] = "escalation_commit"
    return groups


async def poll_groups(tracker: Tracker, prefix: str, every: float) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=RUNTIME.bootstrap)
    await admin.start()
    try:
        groups = watched_groups(prefix)
        while True:
            asked = time.time()
            answers = await asyncio.gather(
                *(admin.list_consumer_group_offsets(group) for group in groups)
            )
            for stage, committed in zip(groups.values(), answers, strict=True):
                for tp, meta in committed.items():
                    pending = tracker.waiting.get((stage, tp.topic, tp.partition))
                    if pending:
                        tracker.reach(pending, meta.offset, stage, asked)
            await asyncio.sleep(every)
    finally:
        await admin.close()


# --- The open loop ----------------------------------------------------------------------------


async def open_loop(
    intake: str,
    key: str,
    tracker: Tracker,
    *,
    rate: float,
    seconds: float,
    batch: int,
    rng: random.Random,
    run: str,
) -> float:
    """POST at a constant arrival rate; returns the seconds the sending took."""
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
    errors: Counter[str] = Counter()
    hospital = Hospital(rng)
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=60, limits=limits) as client:

        async def send_one(n: int) -> None:
            event_type = pick_type(rng)
            body = submission(hospital, event_type, f"{run}-{n}", datetime.now(UTC))
            slug = BY_TYPE[event_type].topic.split(".")[1]
            sent = Sent(event_type, time.time(), month=report_month(_occurred(body)))
            tracker.all.append(sent)
            try:
                response = await client.post(f"{intake}/v1/{slug}", json=body)
            except httpx.HTTPError as error:
                errors[type(error).__name__] += 1
                return
            sent.acked_at, sent.status = time.time(), response.status_code
            if response.status_code == 202:
                sent.event_id = response.json()["event_id"]
                tracker.acked(sent)

        async def send_batch(n: int) -> None:
            bodies, items = [], []
            now = datetime.now(UTC)
            for i in range(batch):
                event_type = pick_type(rng)
                body = submission(hospital, event_type, f"{run}-{n}-{i}", now)
                bodies.append(body)
                items.append(Sent(event_type, time.time(), month=report_month(_occurred(body))))
            tracker.all.extend(items)
            try:
                response = await client.post(f"{intake}/v1/batch", json={"events": bodies})
            except httpx.HTTPError as error:
                errors[type(error).__name__] += 1
                return
            acked = time.time()
            results = response.json().get("results", []) if response.status_code == 200 else []
            for item, result in zip(items, results, strict=False):
                item.acked_at = acked
                item.status = 202 if result["status"] == "accepted" else 400
                if item.status == 202:
                    item.event_id = result["event_id"]
                    tracker.acked(item)

        arrivals = rate / batch if batch else rate
        sending, _ = await paced(
            send_batch if batch else send_one, rate=arrivals, count=int(arrivals * seconds)
        )
    tracker.client_errors.update(errors)
    return sending


def _occurred(body: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(body["occurred_at"])


# --- One rate ----------------------------------------------------------------------------------


async def load_phase(
    options: argparse.Namespace,
    rate: float,
    running: dict[str, Service],
    *,
    key: str,
    db: str,
    prefix: str,
) -> dict[str, Any]:
    rng = random.Random(f"{options.seed}-{rate}")
    tracker = Tracker()
    fact_parts = await partitions_of(MIX_TOPICS)
    case_parts = await partitions_of([topics.CASES])
    fact_since = await end_offsets(fact_parts)
    case_since = await end_offsets(case_parts)
    pids: dict[str, int | None] = {name: service.pid for name, service in running.items()}
    cpu = CpuWindow(
        pids
        | {"kafka": RUNTIME.pid("kafka"), "ferretdb": RUNTIME.pid("ferretdb"), "bench": os.getpid()}
    )
    watchers = [
        asyncio.create_task(watch_facts(tracker, fact_since)),
        asyncio.create_task(watch_cases(tracker, case_since)),
        asyncio.create_task(poll_counts(tracker, db, options.poll)),
        asyncio.create_task(poll_groups(tracker, prefix, options.group_poll)),
    ]
    try:
        await asyncio.sleep(1.0)  # the watchers are reading before the first send
        store_before = await ferretdb_metrics()
        cpu.begin()
        started = time.time()
        sending = await open_loop(
            running["intake"].url,
            key,
            tracker,
            rate=rate,
            seconds=options.seconds,
            batch=options.batch,
            rng=rng,
            run=f"SL-{tag()}",
        )
        answered = time.time()
        # Drain: wait until every accepted event reached every stage, or give up.
        drained_at: float | None = None
        give_up = answered + options.drain_timeout
        while time.time() < give_up:
            cpu.sample()
            if any(task.done() for task in watchers):
                for task in watchers:
                    if task.done() and task.exception() is not None:
                        raise RuntimeError("a watcher failed") from task.exception()
            if not tracker.outstanding():
                drained_at = time.time()
                break
            for name, service in running.items():
                if not service.alive():
                    raise RuntimeError(f"{name} exited; see {service.log}")
            await asyncio.sleep(0.2)
        accepted = tracker.accepted()
        usage = cpu.end(len(accepted))
        usage["ferretdb_requests"] = ferretdb_delta(
            store_before, await ferretdb_metrics(), len(accepted)
        )
        usage["ferretdb_requests"]["of_which_this_scripts_counts_polls"] = len(tracker.poll_seconds)
    finally:
        for task in watchers:
            task.cancel()
        for task in watchers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    return phase_result(
        tracker, rate, options, started=started, sending=sending, answered=answered,
        drained_at=drained_at, usage=usage,
    )  # fmt: skip


def phase_result(
    tracker: Tracker,
    rate: float,
    options: argparse.Namespace,
    *,
    started: float,
    sending: float,
    answered: float,
    drained_at: float | None,
    usage: dict[str, Any],
) -> dict[str, Any]:
    accepted = tracker.accepted()
    statuses = Counter(str(s.status) for s in tracker.all)
    last_ack = max((s.acked_at or 0 for s in accepted), default=answered)
    stages: dict[str, Any] = {}
    for stage in ("reporting", "router_case", "router_commit", "escalation_commit", "lead_case"):
        delays = [
            s.reached[stage] - s.acked_at
            for s in accepted
            if stage in s.reached and s.acked_at is not None
        ]
        if not delays and stage not in ("reporting",):
            continue
        reached = [s.reached[stage] for s in accepted if stage in s.reached]
        entry = latency_summary(delays)
        if reached:
            # The service's own rate over the phase: events reached / first send to last one.
            entry["events_per_s"] = round(len(reached) / max(max(reached) - started, 1e-9), 2)
        by_third = thirds(accepted, stage)
        if by_third:
            entry["p50_ms_by_third_of_sends"] = by_third
        stages[stage] = entry
    by_type: dict[str, Any] = {}
    for event_type in MIX:
        delays = [
            s.reached["reporting"] - s.acked_at
            for s in accepted
            if s.event_type == event_type and "reporting" in s.reached and s.acked_at
        ]
        by_type[event_type] = latency_summary(delays)
    stages["reporting"]["by_type"] = by_type
    # From the request's start instead of its answer: intake's 202 comes after its own store
    # write, so reporting may count an event before the client reads the 202.
    stages["reporting"]["from_send"] = latency_summary(
        [s.reached["reporting"] - s.sent_at for s in accepted if "reporting" in s.reached]
    )
    outstanding = tracker.outstanding()
    accepted_per_s = len(accepted) / max(last_ack - started, 1e-9)
    keeps_up = (
        len(accepted) >= 0.95 * rate * options.seconds
        and drained_at is not None
        and drained_at - answered <= options.keep_up_drain
    )
    return {
        "offered_rate_per_s": rate,
        "seconds": options.seconds,
        "batch": options.batch or None,
        "sent": len(tracker.all),
        "statuses": dict(statuses),
        "client_errors": dict(tracker.client_errors) or None,
        "accepted": len(accepted),
        "accepted_events_per_s": round(accepted_per_s, 2),
        "sending_s": round(sending, 2),
        "intake_ack": latency_summary(
            [s.acked_at - s.sent_at for s in accepted if s.acked_at is not None]
        ),
        "ack_to": stages,
        "drained_s_after_last_answer": (
            None if drained_at is None else round(drained_at - answered, 2)
        ),
        "not_reached_at_drain_timeout": outstanding or None,
        "keeps_up": keeps_up,
        "record_bytes": sizes(tracker.record_sizes),
        "case_record_bytes": sizes(tracker.case_sizes),
        "counts_poll_query_ms": latency_summary(tracker.poll_seconds),
        "cpu": usage,
        "_record_sizes": tracker.record_sizes,
    }


def thirds(accepted: list[Sent], stage: str) -> list[float]:
    """p50 latency of the events sent in each third of the phase: growing means a backlog."""
    ordered = sorted(accepted, key=lambda s: s.sent_at)
    result = []
    for i in range(3):
        part = ordered[i * len(ordered) // 3 : (i + 1) * len(ordered) // 3]
        delays = [s.reached[stage] - s.acked_at for s in part if stage in s.reached and s.acked_at]
        if not delays:
            return []
        result.append(round(statistics.median(delays) * 1000, 1))
    return result


def sizes(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values)),
        "min": min(values),
        "max": max(values),
    }


# --- Baseline: a raw aiokafka relay at the same rate -------------------------------------------


async def relay(bootstrap: str, group: str) -> None:
    """Consume RELAY_IN one record at a time, send it to RELAY_OUT (acks=all, awaited),
    commit; as a service's subscriber does, with nothing else."""
    consumer = AIOKafkaConsumer(
        RELAY_IN,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="latest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    await consumer.start()
    print("relay ready", flush=True)
    try:
        async for record in consumer:
            await producer.send_and_wait(
                RELAY_OUT, record.value, key=record.key, headers=JSON_HEADERS
            )
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def baseline_phase(
    rate: float, seconds: float, record_sizes: list[int], *, kafka_pid: int | None
) -> dict[str, Any]:
    await topics_ready((RELAY_IN, RELAY_OUT))
    group = f"bench-relay-{tag()}"
    log = RUNTIME.log_dir / "bench-relay.log"
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.system_load",
            "relay",
            RUNTIME.bootstrap,
            group,
            cwd=ROOT,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    sizes_cycle = record_sizes or [1000]
    sent_at: dict[bytes, float] = {}
    acked_at: dict[bytes, float] = {}
    seen_at: dict[bytes, float] = {}
    out_parts = await partitions_of([RELAY_OUT])
    since = await end_offsets(out_parts)
    producer = AIOKafkaProducer(
        bootstrap_servers=RUNTIME.bootstrap, acks="all", enable_idempotence=True
    )

    async def read() -> None:
        async for batch in kafka.batches_from(RUNTIME.bootstrap, since):
            now = time.time()
            for record in (record for records in batch.values() for record in records):
                if record.key is not None:
                    seen_at.setdefault(record.key, now)

    async def send(key: bytes, size: int) -> None:
        payload = json.dumps({"id": key.hex(), "pad": "x" * max(0, size - 50)}).encode()
        sent_at[key] = time.time()
        await producer.send_and_wait(RELAY_IN, payload, key=key, headers=JSON_HEADERS)
        acked_at[key] = time.time()

    await producer.start()
    reading = asyncio.create_task(read())
    cpu = CpuWindow({"relay": process.pid, "kafka": kafka_pid, "bench": os.getpid()})
    try:
        # Warm up until the relay's group has joined and relays.
        give_up = time.time() + 60
        while time.time() < give_up:
            key = uuid.uuid4().bytes
            await send(key, 200)
            await asyncio.sleep(0.5)
            if key in seen_at:
                break
        else:
            raise RuntimeError(f"the relay did not relay within 60 s; see {log}")
        sent_at.clear()
        acked_at.clear()
        cpu.begin()

        async def send_next(n: int) -> None:
            await send(uuid.uuid4().bytes, sizes_cycle[n % len(sizes_cycle)])

        await paced(send_next, rate=rate, count=int(rate * seconds))
        give_up = time.time() + 60
        while time.time() < give_up and not all(key in seen_at for key in acked_at):
            cpu.sample()
            await asyncio.sleep(0.1)
        usage = cpu.end(len(acked_at))
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await producer.stop()
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()
    delays = [seen_at[key] - acked_at[key] for key in acked_at if key in seen_at]
    relayed = [seen_at[key] for key in acked_at if key in seen_at]
    first = min(sent_at.values())
    return {
        "offered_rate_per_s": rate,
        "sent": len(acked_at),
        "relayed": len(delays),
        "relayed_per_s": round(len(relayed) / max(max(relayed, default=first) - first, 1e-9), 2),
        "send_to_ack": latency_summary([acked_at[k] - sent_at[k] for k in acked_at]),
        "ack_to_relayed_seen": latency_summary(delays),
        "record_bytes": sizes(sizes_cycle),
        "cpu": usage,
    }


# --- Replay -----------------------------------------------------------------------------------


def replay_templates(rng: random.Random, now: datetime) -> dict[str, list[tuple[Event, str]]]:
    """Events as intake would publish them, 40 per type, each with its JSON, over 12 months."""
    templates: dict[str, list[tuple[Event, str]]] = {}
    hospital = Hospital(rng)
    for event_type in MIX:
        kind = BY_TYPE[event_type]
        made = []
        for n in range(40):
            moment = now - timedelta(days=rng.uniform(0, 360))
            body = submission(hospital, event_type, f"REPLAY-{n}", moment)
            body.pop("event_type")
            accepted = kind.submission.model_validate(body)
            event = kind.event.accept(accepted, received_at=moment)
            made.append((event, event.model_dump_json()))
        templates[event_type] = made
    return templates


async def produce_replay(count: int, rng: random.Random) -> dict[str, Any]:
    """``count`` fact events straight into the fact topics with aiokafka (not via intake)."""
    templates = replay_templates(rng, datetime.now(UTC))
    producer = AIOKafkaProducer(
        bootstrap_servers=RUNTIME.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=256 * 1024,
    )
    by_type: Counter[str] = Counter()
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for n in range(count):
            event_type = pick_type(rng)
            kind = BY_TYPE[event_type]
            event, text = templates[event_type][n % 40]
            new_id = uuid.uuid4()
            value = text.replace(str(event.event_id), str(new_id)).encode()
            key = new_id.bytes if kind.key_field == "event_id" else kind.key(event)
            pending.append(await producer.send(kind.topic, value, key=key, headers=JSON_HEADERS))
            by_type[event_type] += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    seconds = time.perf_counter() - started
    return {
        "events": count,
        "by_type": dict(by_type),
        "seconds": round(seconds, 2),
        "events_per_s": round(count / seconds, 1),
        "how": "aiokafka producer in this script (acks=all, idempotent), not through intake",
    }


async def read_only(partitions: list[TopicPartition]) -> dict[str, Any]:
    """Read every report record and parse the facts as the rebuild does, with no store:
    Kafka's and pydantic's share of a replay. Also what a rebuild must count, by type."""
    ends = await end_offsets(partitions)
    consumer = await kafka.reader(RUNTIME.bootstrap)
    records = 0
    by_type: Counter[str] = Counter()
    started = time.perf_counter()
    try:
        pending = {tp for tp in partitions if ends[tp] > 0}
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while pending:
            for tp, batch in (await consumer.getmany(*pending, timeout_ms=1000)).items():
                for record in batch:
                    if record.offset >= ends[tp]:
                        break
                    if tp.topic in topics.FACTS:
                        by_type[ANY_EVENT.validate_json(record.value or b"").event_type] += 1
                    records += 1
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    seconds = time.perf_counter() - started
    return {
        "records": records,
        "fact_records_by_type": dict(by_type),
        "seconds": round(seconds, 2),
        "records_per_s": round(records / max(seconds, 1e-9), 1),
    }


async def applied_so_far(client: AsyncMongoClient[dict[str, Any]], db: str) -> int:
    """Fact records counted into ``db``: per topic and partition the last offset counted + 1
    (a partition is counted in order; its months are separate documents)."""
    last: dict[tuple[str, str], int] = {}
    async for document in client[db]["reporting_counts"].find({}):
        topic, partition, _ = document["_id"].split("|")
        offset = document["value"]["offset"]  # a recent revision: enough to follow progress
        last[(topic, partition)] = max(last.get((topic, partition), -1), offset)
    return sum(offset + 1 for offset in last.values())


async def snapshot(client: AsyncMongoClient[dict[str, Any]], db: str) -> dict[str, Any]:
    """What the reports are made of: counts by document, cases, decisions."""
    store = ReportStore(MongoDocuments(client[db]))
    counts = {
        key: [tally.model_dump(mode="json") for tally in kept.value.tallies]
        for key, kept in (await store.counts.find()).items()
        if kept.value is not None
    }
    cases = {key: case.revision for key, case in (await store.case_facts.find()).items()}
    decisions = len(await store.decisions.find())
    return {"counts": counts, "cases": cases, "decisions": decisions}


def counts_by_type(snap: dict[str, Any]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for tallies in snap["counts"].values():
        for tally in tallies:
            totals[tally["key"]["event_type"]] += tally["count"]
    return dict(totals)


async def run_rebuild(into: str, live_db: str, limit: float) -> dict[str, Any]:
    store_before = await ferretdb_metrics()
    done = await rebuild(RUNTIME, into=into, source_db=live_db, limit=limit)
    applied = done.records_read
    if done.finished:
        client = mongo()
        try:
            applied = await applied_so_far(client, into)
        finally:
            await client.close()
    usage = done.cpu_per_record(applied)
    usage["ferretdb_requests"] = ferretdb_delta(store_before, await ferretdb_metrics(), applied)
    result: dict[str, Any] = {
        "database": into,
        "finished": done.finished,
        "seconds": round(done.seconds, 2),
        ("fact_records_counted" if done.finished else "records_read_before_the_limit"): applied,
        "cpu": usage,
        "progress_samples": done.samples,
    }
    if done.summary is not None:
        summary = done.summary
        result["rebuild_output"] = {k: summary[k] for k in ("records", "copied", "seconds")}
        result["rebuild_output"]["unreadable"] = len(summary["unreadable"])
        result["records_per_s"] = round(summary["records"] / max(done.seconds, 1e-9), 1)
    else:
        result["records_per_s"] = round(applied / max(done.seconds, 1e-9), 1)
    result["extrapolated_s_for_1M_records"] = round(MILLION / max(result["records_per_s"], 1e-9))
    return result


def reporting_groups(prefix: str) -> dict[str, tuple[str, ...]]:
    """reporting's consumer groups (one per subscriber, services/reporting/handlers.py) →
    their topics."""
    group = f"{prefix}reporting"
    return {
        subscriber_group(group, *topics.FACTS): topics.FACTS,
        subscriber_group(group, topics.DEAD_LETTERS): (topics.DEAD_LETTERS,),
        subscriber_group(group, topics.CASES): (topics.CASES,),
        subscriber_group(group, topics.DECISIONS): (topics.DECISIONS,),
    }


async def reset_offsets(prefix: str) -> int:
    """Commit offset 0 for every partition of reporting's groups (no member may be running):
    what an operator does to replay from the beginning. Returns partitions reset."""
    reset = 0
    for group, names in reporting_groups(prefix).items():
        partitions = await partitions_of(names)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=RUNTIME.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.commit(dict.fromkeys(partitions, 0))
            reset += len(partitions)
        finally:
            await consumer.stop()
    return reset


async def replay_unchanged(into: str, limit: float) -> dict[str, Any]:
    """reporting on the rebuilt database, its groups reset to the beginning: nothing changes."""
    prefix = f"bench-replay-{tag()}-"
    client = mongo()
    try:
        before = await snapshot(client, into)
        reset = await reset_offsets(prefix)
        groups = reporting_groups(prefix)
        ends = {}
        for group, names in groups.items():
            parts = await partitions_of(names)
            ends[group] = {tp: end for tp, end in (await end_offsets(parts)).items() if end > 0}
        total = sum(sum(e.values()) for e in ends.values())
        env = RUNTIME.service_env(db=into, group_prefix=prefix) | {"QINGLIAN_LOG_LEVEL": "INFO"}
        started = time.perf_counter()
        service = await asyncio.to_thread(
            start_service,
            "reporting",
            env=env,
            port=free_port(SERVICE_PORTS),
            log_dir=RUNTIME.log_dir,
        )
        cpu = CpuWindow(
            {
                "reporting": service.pid,
                "kafka": RUNTIME.pid("kafka"),
                "ferretdb": RUNTIME.pid("ferretdb"),
            }
        )
        store_before = await ferretdb_metrics()
        cpu.begin()
        healthy = time.perf_counter() - started
        admin = AIOKafkaAdminClient(bootstrap_servers=RUNTIME.bootstrap)
        await admin.start()
        done = 0
        samples = []
        try:
            give_up = time.perf_counter() + limit
            while time.perf_counter() < give_up:
                done = 0
                for group, group_ends in ends.items():
                    committed = await admin.list_consumer_group_offsets(group)
                    done += sum(
                        min(committed[tp].offset, end) if tp in committed else 0
                        for tp, end in group_ends.items()
                    )
                samples.append((round(time.perf_counter() - started, 1), done))
                if done >= total:
                    break
                if not service.alive():
                    raise RuntimeError(f"reporting exited; see {service.log}")
                cpu.sample()
                await asyncio.sleep(1.0)
            seconds = time.perf_counter() - started
            usage = cpu.end(done)
            usage["ferretdb_requests"] = ferretdb_delta(
                store_before, await ferretdb_metrics(), done
            )
        finally:
            await admin.close()
            await asyncio.to_thread(stop_service, service)
        after = await snapshot(client, into)
    finally:
        await client.close()
    finished = done >= total
    rate = done / max(seconds - healthy, 1e-9)
    return {
        "database": into,
        "group_prefix": prefix,
        "partitions_reset_to_0": reset,
        "records_to_replay": total,
        "records_replayed": done,
        "finished": finished,
        "seconds_from_start": round(seconds, 2),
        "seconds_to_healthy": round(healthy, 2),
        "records_per_s": round(rate, 1),
        "extrapolated_s_for_1M_records": round(MILLION / max(rate, 1e-9)),
        "unchanged": {
            "counts": before["counts"] == after["counts"],
            "cases": before["cases"] == after["cases"],
            "decisions": before["decisions"] == after["decisions"],
        },
        "progress_samples": thin(samples, 12),
        "cpu": usage,
    }


async def store_probe(count: int) -> dict[str, Any]:
    """The store's share of a replay: reporting's count write (a conditional upsert by _id on
    a small collection, as ReportRepository.count does) timed from here, one at a time, first
    as new records (it counts), then as the same records again (it changes nothing: the
    filter misses and the upsert hits the duplicate key)."""
    client = mongo()
    collection = client[f"bench_probe_{tag()}"]["reporting_counts"]
    cpu = CpuWindow({"ferretdb": RUNTIME.pid("ferretdb"), "bench": os.getpid()})
    result: dict[str, Any] = {"writes": count}
    try:
        for label in ("counting", "changing_nothing"):
            cpu.begin()
            latencies = []
            for n in range(count):
                started = time.perf_counter()
                with contextlib.suppress(DuplicateKeyError):
                    await collection.update_one(
                        {"_id": f"topic|{n % 12}|2026-{n % 12 + 1:02d}", "offset": {"$lt": n}},
                        {
                            "$inc": {"counts.cardiology|complaint|kickback": 1},
                            "$set": {"offset": n, "month": "2026-11"},
                        },
                        upsert=True,
                    )
                latencies.append(time.perf_counter() - started)
            result[label] = latency_summary(latencies) | {
                "writes_per_s": round(count / sum(latencies), 1),
                "cpu": cpu.end(count)["processes"],
            }
        await client.drop_database(collection.database.name)
    finally:
        await client.close()
    return result


async def replay(options: argparse.Namespace, live_db: str) -> dict[str, Any]:
    rng = random.Random(options.seed)
    await topics_ready(REPORT_TOPICS)
    produced = await produce_replay(options.replay_events, rng)
    report_parts = await partitions_of(REPORT_TOPICS)
    ends = await end_offsets(report_parts)
    stored = {
        "fact_records": sum(end for tp, end in ends.items() if tp.topic in topics.FACTS),
        "all_report_records": sum(ends.values()),
    }
    parse = await read_only(report_parts)
    probe = await store_probe(options.probe_writes)
    into = f"bench_rebuilt_{tag()}"
    rebuilt = await run_rebuild(into, live_db, options.replay_limit)
    client = mongo()
    try:
        snap = await snapshot(client, into)
    finally:
        await client.close()
    got = counts_by_type(snap)
    rebuilt["counts_by_type"] = got
    # Every fact record in the topics counted once (the load's and the produced ones).
    rebuilt["counts_equal_records_in_topics"] = rebuilt["finished"] and (
        {k: v for k, v in got.items() if v} == parse["fact_records_by_type"]
    )
    result: dict[str, Any] = {
        "produced": produced,
        "stored_in_topics": stored,
        "read_and_parse_without_store": parse,
        "store_write_probe": probe,
        "rebuild": rebuilt,
    }
    if rebuilt["finished"] and not options.skip_second_replay:
        result["replay_unchanged"] = await replay_unchanged(into, options.replay_limit)
    return result


# --- The run ----------------------------------------------------------------------------------


async def make_key(db: str) -> str:
    client = mongo()
    try:
        keys = IntakeStore.on(MongoDocuments(client[db]), key_cache_seconds=0).keys
        grants: Grants = {"source_system": SOURCE, "scopes": sorted(MIX)}
        _, key = await keys.issue(grants, label="bench", now=datetime.now(UTC))
    finally:
        await client.close()
    return key


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    RUNTIME.start_fresh(deadline)
    db, prefix = "bench_system", f"bench-system-{tag()}-"
    env = RUNTIME.service_env(db=db, group_prefix=prefix) | {
        "QINGLIAN_LOG_LEVEL": options.log_level,
        "QINGLIAN_CONTACT_KEY": new_key(),
    }
    if not options.skip_load:
        key = deadline.run(make_key(db))
        phases: list[dict[str, Any]] = []
        result["load"] = {"phases": phases}
        with services(SERVICE_NAMES, env=env, ports=SERVICE_PORTS, log_dir=RUNTIME.log_dir) as up:
            result["load"]["services"] = {name: s.port for name, s in up.items()}
            for rate in options.rate:
                print(f"load at {rate}/s for {options.seconds:.0f} s", file=sys.stderr)
                phase = deadline.run(load_phase(options, rate, up, key=key, db=db, prefix=prefix))
                phases.append(phase)
                if not options.skip_baseline:
                    print(f"baseline at {rate}/s", file=sys.stderr)
                    sizes_seen = phase.pop("_record_sizes", None)
                    phase["baseline_raw_aiokafka"] = deadline.run(
                        baseline_phase(
                            rate,
                            options.seconds,
                            sizes_seen or [phase["record_bytes"].get("mean", 1000)],
                            kafka_pid=RUNTIME.pid("kafka"),
                        )
                    )
                if not phase["keeps_up"]:
                    print(f"{rate}/s not kept up with: the ladder ends", file=sys.stderr)
                    break
            kept = [p["offered_rate_per_s"] for p in phases if p["keeps_up"]]
            result["load"]["highest_rate_kept_up_with"] = max(kept, default=None)
    if options.replay_events > 0:
        print(f"replay of {options.replay_events} events", file=sys.stderr)
        result["replay"] = deadline.run(replay(options, db))


NOTES = (
    "Latencies are from intake's 202 (read by this script) to the event seen at each stage, on "
    "this machine's wall clock: reporting = counted in reporting_counts (polled), router_case = "
    "its case record read off qinglian.cases.v1, *_commit = the service's consumer group "
    "committed past its record (polled). events_per_s in each stage: events reached / time "
    "from the first send to the last one reached. keeps_up: >= 95 % of the offered events "
    "accepted and every stage reached by all within --keep-up-drain s of the last answer. "
    "cpu: /proc CPU seconds per process over the phase, per accepted event. The baseline "
    "relay is the counterpart of router_case without the router's store work. Replay events "
    "were produced with aiokafka directly; rebuild and replay_unchanged run the services' own "
    "code; any extrapolation to 1M records is records_per_s carried linearly, not a measurement."
)


def parse_rates(text: str) -> list[float]:
    rates = sorted(float(part) for part in text.split(",") if part.strip())
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError("rates must be positive numbers, comma-separated")
    return rates


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "relay":  # the baseline's relay process
        asyncio.run(relay(sys.argv[2], sys.argv[3]))
        return 0
    parser = report.parser(__doc__, timeout=2700)
    parser.add_argument("--rate", type=parse_rates, default=[2.0], help="events/s, e.g. 1,2,4")
    parser.add_argument("--seconds", type=float, default=60.0, help="sending time per rate")
    parser.add_argument("--batch", type=int, default=0, help="events per POST /v1/batch")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument(
        "--keep-up-drain",
        type=float,
        default=15.0,
        help="seconds after the last answer within which all must be through to keep up",
    )
    parser.add_argument("--poll", type=float, default=0.2, help="reporting_counts poll, s")
    parser.add_argument("--group-poll", type=float, default=0.5, help="group offsets poll, s")
    parser.add_argument("--replay-events", type=int, default=20000)
    parser.add_argument("--replay-limit", type=float, default=600.0, help="seconds per replay")
    parser.add_argument(
        "--probe-writes", type=int, default=300, help="count writes timed alone, per kind"
    )
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-second-replay", action="store_true")
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    parser.add_argument("--seed", type=int, default=5)
    options = parser.parse_args()
    if options.batch < 0 or options.replay_events < 0:
        parser.error("--batch and --replay-events must not be negative")
    head = {"rates": options.rate, "seconds_per_rate": options.seconds, "mix": MIX}
    return report.run("system_load", options, measure, runtime=RUNTIME, head=head, notes=NOTES)


if __name__ == "__main__":
    sys.exit(main())
