"""System load: the four services end to end at a constant arrival rate, a raw aiokafka relay at
the same rate for comparison, then a replay of stored events into empty report aggregates.

    .venv/bin/python -m bench.system_load --rate 1,2,4 --seconds 90   # a ladder of rates
    .venv/bin/python -m bench.system_load --skip-load --replay-events 200000 --replay-limit 600

Its own Kafka and FerretDB (.local/bench-system), the services as subprocesses. Per rate, lowest
first (one not kept up with ends the ladder): the year generator's events POSTed (--batch N: N
a POST), then the relay fed as many records of the same sizes. Replay, services stopped: events
produced into the fact topics, services.reporting.rebuild into a new database (bounded by
--replay-limit), then reporting on it from offset 0, which must change nothing.

Latencies are from intake's 202 (read by this script) to the event seen at each stage, on
this machine's wall clock: reporting = counted in reporting_counts (polled), router_case =
its case record read off qinglian.cases.v1, *_commit = the service's consumer group
committed past its record (polled). events_per_s in each stage: events reached / time
from the first send to the last one reached. keeps_up: >= 95 % of the offered events
accepted and every stage reached by all within --keep-up-drain s of the last answer.
cpu: /proc CPU seconds per process over the phase, per accepted event. The baseline
relay is the counterpart of router_case without the router's store work. Replay events
were produced with aiokafka directly; rebuild and replay_unchanged run the services' own
code; any extrapolation to 1M records is records_per_s carried linearly, not a measurement.
"""

import argparse
import asyncio
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import TypeAdapter
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from bench.harness import kafka, processes, report
from bench.harness.kafka import JSON_HEADERS
from bench.harness.load import latency_summary, timed
from bench.harness.load import open_loop as paced
from bench.harness.processes import CpuWindow, Metrics, Service
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

NOTES = " ".join((__doc__ or "").split("\n\n")[-1].split())  # the docstring's last paragraph
RUNTIME = SYSTEM_RUNTIME
SERVICE_PORTS = range(9200, 9300)
SOURCE = "bench"
MIX = {"complaint": 40, "satisfaction": 30, "visitor_log": 20, "prescription_ranking": 10}
MIX_TOPICS = tuple(BY_TYPE[event_type].topic for event_type in MIX)
STAGES = ("reporting", "router_case", "router_commit", "escalation_commit", "lead_case")
RELAY_IN, RELAY_OUT = "qinglian.bench.relay-in.v1", "qinglian.bench.relay-out.v1"
ANY_EVENT: TypeAdapter[Any] = TypeAdapter(AnyEvent)
MILLION = 1_000_000
Database = AsyncDatabase[dict[str, Any]]
Position = tuple[str, int, int]  # a record's topic, partition and offset


async def topics_ready(names: tuple[str, ...]) -> None:
    """Created if missing, each partition with a leader."""
    await ensure_topics(ReportingSettings(kafka_bootstrap=RUNTIME.bootstrap), names)
    await kafka.leaders_elected(RUNTIME.bootstrap, names)


def server_pids() -> dict[str, int | None]:
    return {"kafka": RUNTIME.pid("kafka"), "ferretdb": RUNTIME.pid("ferretdb")}


async def ferretdb_metrics() -> Metrics:
    """FerretDB's own counters, from its debug listener (none if it does not answer)."""
    url = f"http://127.0.0.1:{RUNTIME.ferretdb_debug_port}/debug/metrics"
    try:
        async with httpx.AsyncClient() as client:
            return await processes.scrape(client, url)
    except httpx.HTTPError:
        return {}


async def ferretdb_since(before: Metrics, events: int) -> dict[str, Any]:
    """Since ``before``, per event handled: FerretDB requests by command; failed responses and
    waits for one of its SQL connections in all."""
    after = await ferretdb_metrics()
    if not before or not after:
        return {"unavailable": True}

    def grown(name: str, unless: tuple[str, str] = ("", "")) -> dict[str, float]:
        """By command, how much the samples of ``name`` (but those labelled ``unless``) grew."""
        deltas: dict[str, float] = defaultdict(float)
        for (sample, labels), value in after.items():
            if sample == name and unless not in labels:
                command = dict(labels).get("command", "?")
                deltas[command] += value - before.get((sample, labels), 0.0)
        return {command: delta for command, delta in sorted(deltas.items()) if delta}

    requests = grown("ferretdb_client_requests_total")
    count, per = sum(requests.values()), max(events, 1)
    waits = [
        sum(grown(f"ferretdb_sqldb_wait_{n}_total").values()) for n in ("count", "duration_seconds")
    ]
    return {
        "requests": int(count),
        "requests_per_event": round(count / per, 2),
        "requests_per_event_by_command": {c: round(n / per, 2) for c, n in requests.items()},
        "failed_responses": grown("ferretdb_client_responses_total", ("result", "ok")) or None,
        "sqlite_connection_waits": int(waits[0]),
        "sqlite_connection_wait_s": round(waits[1], 2),
    }


def submission(hospital: Hospital, event_type: str, ref: str, now: datetime) -> dict[str, Any]:
    """A valid submission (JSON-ready), most of them unremarkable; 3 % of visits in a ward and
    3 % without an appointment (leads); 30 % of complaints with the complainant's contact."""
    rng = hospital.rng
    given: dict[str, Any] = {"source_system": SOURCE, "source_ref": ref}
    occurred = now - timedelta(minutes=rng.uniform(1, 120))
    if event_type == "visitor_log":  # a weekday morning (hospital time) in the past week
        local = now.astimezone(HOSPITAL_TIME_ZONE)
        day = next(d for b in range(1, 8) if (d := local - timedelta(days=b)).isoweekday() <= 5)
        day = day.replace(hour=rng.randint(9, 11), minute=rng.randint(0, 59), second=0)
        occurred = given["started_at"] = day
        given |= {"place_kind": "ward"} if rng.random() < 0.03 else {}
        given |= {"appointment_id": None} if rng.random() < 0.03 else {}
    if event_type == "complaint" and rng.random() < 0.3:
        contact = {"name": "张三", "phone": "+86 138 0000 0000"}
        given |= {"anonymous": False, "complainant_contact": contact}
    return hospital.body(event_type, occurred, **given)


def pick_type(rng: random.Random) -> str:
    return rng.choices(list(MIX), list(MIX.values()))[0]


@dataclass
class Sent:
    event_type: str
    sent_at: float
    month: str
    acked_at: float = 0.0
    status: int | None = None
    event_id: str = ""
    reached: dict[str, float] = field(default_factory=dict)
    """Stage → wall time the event was seen there."""

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages it must reach (a rating or a visit reaches lead_case if it raised a lead)."""
        if self.event_type == "complaint":
            return ("reporting", "escalation_commit", "router_case", "router_commit")
        return ("reporting", "escalation_commit")


@dataclass
class Tracker:
    all: list[Sent] = field(default_factory=list)
    acked: list[Sent] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)
    """Event id → its fact record (maybe read before its 202)."""
    cases: dict[str, float] = field(default_factory=dict)
    """Event id → when a case record first named it (maybe before its 202)."""
    record_sizes: list[int] = field(default_factory=list)
    case_sizes: list[int] = field(default_factory=list)
    poll_seconds: list[float] = field(default_factory=list)
    client_errors: Counter[str] = field(default_factory=Counter)

    def accepted(self) -> list[Sent]:
        """The events answered 202, each with when a case first named it."""
        for sent in self.acked:
            if sent.event_id in self.cases:
                stage = "router_case" if sent.event_type == "complaint" else "lead_case"
                sent.reached.setdefault(stage, self.cases[sent.event_id])
        return self.acked

    def reach(self, stage: str, at: float, ends: dict[str, int]) -> None:
        """Each accepted event whose record lies before ``ends[key]`` reached ``stage``; the key
        is "topic|partition", and "|month" after it for reporting (its count document)."""
        for sent in self.acked:
            position = self.positions.get(sent.event_id)
            if stage in sent.reached or stage not in sent.stages or position is None:
                continue
            topic, partition, offset = position
            key = f"{topic}|{partition}" + (f"|{sent.month}" if stage == "reporting" else "")
            if offset < ends.get(key, 0):
                sent.reached[stage] = at

    def outstanding(self) -> dict[str, int]:
        return dict(Counter(s for e in self.accepted() for s in e.stages if s not in e.reached))


async def watch_topics(tracker: Tracker, since: dict[TopicPartition, int]) -> None:
    """Read the fact records intake writes (each event's position) and the cases the router
    publishes (when each event first shows in one)."""
    async for batch in kafka.batches_from(RUNTIME.bootstrap, since):
        seen = time.time()
        for tp, records in batch.items():
            for record in records:
                value = record.value or b""
                if tp.topic != topics.CASES:
                    tracker.record_sizes.append(len(value))
                    position = (tp.topic, tp.partition, record.offset)
                    tracker.positions[json.loads(value)["event_id"]] = position
                    continue
                tracker.case_sizes.append(len(value))
                for event_id in json.loads(value)["source_event_ids"]:
                    tracker.cases.setdefault(event_id, seen)


async def poll_counts(tracker: Tracker, db: str, every: float) -> None:
    """Poll reporting_counts; an event counts once its document's offset reached its own."""
    async with RUNTIME.database(db) as database:
        while True:
            asked = time.time()
            documents = await database["reporting_counts"].find({}).to_list(None)
            tracker.poll_seconds.append(time.time() - asked)
            # The head (a recent revision) of each document, past which its records are counted.
            ends = {document["_id"]: document["value"]["offset"] + 1 for document in documents}
            tracker.reach("reporting", asked, ends)
            await asyncio.sleep(every)


async def committed(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    answer = await admin.list_consumer_group_offsets(group)
    return {tp: meta.offset for tp, meta in answer.items()}


async def poll_groups(tracker: Tracker, prefix: str, every: float) -> None:
    """Poll the commits of the groups that handle the load's fact topics."""
    groups = {subscriber_group(f"{prefix}router", topics.COMPLAINTS): "router_commit"}
    for topic in MIX_TOPICS:
        groups[subscriber_group(f"{prefix}escalation", topic)] = "escalation_commit"
    admin = AIOKafkaAdminClient(bootstrap_servers=RUNTIME.bootstrap)
    await admin.start()
    try:
        while True:
            asked = time.time()
            answers = await asyncio.gather(*(committed(admin, group) for group in groups))
            ends: dict[str, dict[str, int]] = defaultdict(dict)
            for stage, offsets in zip(groups.values(), answers, strict=True):
                ends[stage] |= {f"{tp.topic}|{tp.partition}": n for tp, n in offsets.items()}
            for stage, stage_ends in ends.items():
                tracker.reach(stage, asked, stage_ends)
            await asyncio.sleep(every)
    finally:
        await admin.close()


def answers(response: httpx.Response, batch: int) -> list[tuple[int, str]]:
    """(status, event id) per event sent; a batch is answered 200 with a result for each."""
    if not batch:
        code = response.status_code
        return [(code, response.json()["event_id"] if code == 202 else "")]
    results = response.json().get("results", []) if response.status_code == 200 else []
    return [(202, r["event_id"]) if r["status"] == "accepted" else (400, "") for r in results]


async def open_loop(
    intake: str, key: str, tracker: Tracker, options: argparse.Namespace, rate: float
) -> float:
    """POST at a constant arrival rate; returns the seconds the sending took."""
    batch, rng, run = options.batch, random.Random(f"{options.seed}-{rate}"), f"SL-{tag()}"
    hospital = Hospital(rng)
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=60, limits=limits) as client:

        async def send(n: int) -> None:
            now, bodies, items = datetime.now(UTC), [], []
            for i in range(batch or 1):
                event_type = pick_type(rng)
                ref = f"{run}-{n}" + (f"-{i}" if batch else "")
                bodies.append(body := submission(hospital, event_type, ref, now))
                month = report_month(datetime.fromisoformat(body["occurred_at"]))
                items.append(Sent(event_type, time.time(), month))
            tracker.all.extend(items)
            path = "batch" if batch else BY_TYPE[items[0].event_type].topic.split(".")[1]
            try:
                json_body = {"events": bodies} if batch else bodies[0]
                response = await client.post(f"{intake}/v1/{path}", json=json_body)
            except httpx.HTTPError as error:
                tracker.client_errors[type(error).__name__] += 1
                return
            acked = time.time()
            for item, (status, event_id) in zip(items, answers(response, batch), strict=False):
                item.acked_at, item.status, item.event_id = acked, status, event_id
                if status == 202:
                    tracker.acked.append(item)

        arrivals = rate / batch if batch else rate
        sending, _ = await paced(send, rate=arrivals, count=int(arrivals * options.seconds))
    return sending


async def load_phase(
    options: argparse.Namespace, rate: float, up: dict[str, Service], key: str, db: str, prefix: str
) -> dict[str, Any]:
    tracker = Tracker()
    since = await kafka.topic_ends(RUNTIME.bootstrap, (*MIX_TOPICS, topics.CASES))
    pids = {name: service.pid for name, service in up.items()}
    cpu = CpuWindow(pids | server_pids() | {"bench": os.getpid()})
    watchers = [
        asyncio.create_task(watch_topics(tracker, since)),
        asyncio.create_task(poll_counts(tracker, db, options.poll)),
        asyncio.create_task(poll_groups(tracker, prefix, options.group_poll)),
    ]
    try:
        await asyncio.sleep(1.0)  # the watchers are reading before the first send
        store_before = await ferretdb_metrics()
        cpu.begin()
        started = time.time()
        sending = await open_loop(up["intake"].url, key, tracker, options, rate)
        answered, drained_at = time.time(), None
        # Drain: wait until every accepted event reached every stage, or give up.
        while time.time() < answered + options.drain_timeout:
            cpu.sample()
            if failed := [task for task in watchers if task.done()]:
                raise RuntimeError("a watcher failed") from failed[0].exception()
            if not tracker.outstanding():
                drained_at = time.time()
                break
            if exited := [service for service in up.values() if not service.alive()]:
                raise RuntimeError(f"{exited[0].name} exited; see {exited[0].log}")
            await asyncio.sleep(0.2)
        accepted = len(tracker.accepted())
        usage = cpu.end(accepted)
        usage["ferretdb_requests"] = await ferretdb_since(store_before, accepted)
        usage["ferretdb_requests"]["of_which_this_scripts_counts_polls"] = len(tracker.poll_seconds)
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    return phase_result(tracker, rate, options, (started, sending, answered, drained_at), usage)


def delays(sents: Iterable[Sent], stage: str, *, from_send: bool = False) -> list[float]:
    """Seconds from each event's 202 (or its sending) to its being seen at ``stage``."""
    return [
        e.reached[stage] - (e.sent_at if from_send else e.acked_at)
        for e in sents
        if stage in e.reached
    ]


def phase_result(
    tracker: Tracker,
    rate: float,
    options: argparse.Namespace,
    times: tuple[float, float, float, float | None],
    usage: dict[str, Any],
) -> dict[str, Any]:
    """The phase's figures; ``times``: its start, the seconds its sending took, when its last
    answer came and when every event had reached every stage (None: not by the drain timeout)."""
    started, sending, answered, drained_at = times
    accepted = tracker.accepted()
    stages: dict[str, Any] = {}
    for stage in STAGES:
        entry = latency_summary(delays(accepted, stage))
        if entry["count"] == 0 and stage != "reporting":
            continue
        if reached := [s.reached[stage] for s in accepted if stage in s.reached]:
            # The service's own rate over the phase: events reached / first send to last one.
            entry["events_per_s"] = round(len(reached) / max(max(reached) - started, 1e-9), 2)
        if by_third := thirds(accepted, stage):
            entry["p50_ms_by_third_of_sends"] = by_third
        stages[stage] = entry
    stages["reporting"]["by_type"] = {
        kind: latency_summary(delays((s for s in accepted if s.event_type == kind), "reporting"))
        for kind in MIX
    }
    # From the request's start instead of its answer: intake's 202 comes after its own store
    # write, so reporting may count an event before the client reads the 202.
    stages["reporting"]["from_send"] = latency_summary(
        delays(accepted, "reporting", from_send=True)
    )
    last_ack = max((s.acked_at for s in accepted), default=answered)
    drained = None if drained_at is None else drained_at - answered
    return {
        "offered_rate_per_s": rate,
        "seconds": options.seconds,
        "batch": options.batch or None,
        "sent": len(tracker.all),
        "statuses": dict(Counter(str(s.status) for s in tracker.all)),
        "client_errors": dict(tracker.client_errors) or None,
        "accepted": len(accepted),
        "accepted_events_per_s": round(len(accepted) / max(last_ack - started, 1e-9), 2),
        "sending_s": round(sending, 2),
        "intake_ack": latency_summary([s.acked_at - s.sent_at for s in accepted]),
        "ack_to": stages,
        "drained_s_after_last_answer": None if drained is None else round(drained, 2),
        "not_reached_at_drain_timeout": tracker.outstanding() or None,
        "keeps_up": len(accepted) >= 0.95 * rate * options.seconds
        and drained is not None
        and drained <= options.keep_up_drain,
        "record_bytes": sizes(tracker.record_sizes),
        "case_record_bytes": sizes(tracker.case_sizes),
        "counts_poll_query_ms": latency_summary(tracker.poll_seconds),
        "cpu": usage,
        "_record_sizes": tracker.record_sizes,
    }


def thirds(accepted: list[Sent], stage: str) -> list[float]:
    """p50 latency of the events sent in each third of the phase: growing means a backlog."""
    ordered = sorted(accepted, key=lambda s: s.sent_at)
    size = len(ordered)
    parts = [delays(ordered[i * size // 3 : (i + 1) * size // 3], stage) for i in range(3)]
    return [round(statistics.median(part) * 1000, 1) for part in parts] if all(parts) else []


def sizes(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    mean = round(statistics.fmean(values))
    return {"count": len(values), "mean": mean, "min": min(values), "max": max(values)}


async def relay(bootstrap: str, group: str) -> None:
    """Consume RELAY_IN one record at a time, send it to RELAY_OUT (acks=all, awaited),
    commit; as a service's subscriber does, with nothing else."""
    consumer = AIOKafkaConsumer(
        RELAY_IN, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    producer = kafka.producer(bootstrap)
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


async def baseline_phase(rate: float, seconds: float, record_sizes: list[int]) -> dict[str, Any]:
    """The relay in a process of its own, fed at ``rate`` records of these sizes."""
    await topics_ready((RELAY_IN, RELAY_OUT))
    log = RUNTIME.log_dir / "bench-relay.log"
    argv = ("-m", "bench.system_load", "relay", RUNTIME.bootstrap, f"bench-relay-{tag()}")
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=ROOT, env=clean_env(), stdout=out, stderr=subprocess.STDOUT
        )
    sent_at: dict[bytes, float] = {}
    acked_at: dict[bytes, float] = {}
    seen_at: dict[bytes, float] = {}
    since = await kafka.topic_ends(RUNTIME.bootstrap, [RELAY_OUT])
    producer = kafka.producer(RUNTIME.bootstrap)

    async def read() -> None:
        async for batch in kafka.batches_from(RUNTIME.bootstrap, since):
            now = time.time()
            for record in (record for records in batch.values() for record in records):
                seen_at.setdefault(record.key or b"", now)

    async def send(key: bytes, size: int) -> None:
        payload = json.dumps({"id": key.hex(), "pad": "x" * max(0, size - 50)}).encode()
        sent_at[key] = time.time()
        await producer.send_and_wait(RELAY_IN, payload, key=key, headers=JSON_HEADERS)
        acked_at[key] = time.time()

    async def send_next(n: int) -> None:
        await send(uuid.uuid4().bytes, record_sizes[n % len(record_sizes)])

    await producer.start()
    reading = asyncio.create_task(read())
    cpu = CpuWindow({"relay": process.pid, "kafka": RUNTIME.pid("kafka"), "bench": os.getpid()})
    try:
        give_up = time.time() + 60  # until the relay's group has joined and relays
        while time.time() < give_up:
            await send(key := uuid.uuid4().bytes, 200)
            await asyncio.sleep(0.5)
            if key in seen_at:
                break
        else:
            raise RuntimeError(f"the relay did not relay within 60 s; see {log}")
        sent_at.clear()
        acked_at.clear()
        cpu.begin()
        await paced(send_next, rate=rate, count=int(rate * seconds))
        give_up = time.time() + 60
        while time.time() < give_up and not all(key in seen_at for key in acked_at):
            cpu.sample()
            await asyncio.sleep(0.1)
        usage = cpu.end(len(acked_at))
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        await producer.stop()
        process.terminate()  # the relay has no handler for SIGTERM: it ends at once
        await process.wait()
    relayed = {key: seen_at[key] for key in acked_at if key in seen_at}
    first = min(sent_at.values())
    return {
        "offered_rate_per_s": rate,
        "sent": len(acked_at),
        "relayed": len(relayed),
        "relayed_per_s": round(
            len(relayed) / max(max(relayed.values(), default=first) - first, 1e-9), 2
        ),
        "send_to_ack": latency_summary([acked_at[key] - sent_at[key] for key in acked_at]),
        "ack_to_relayed_seen": latency_summary([at - acked_at[key] for key, at in relayed.items()]),
        "record_bytes": sizes(record_sizes),
        "cpu": usage,
    }


def replay_templates(rng: random.Random) -> dict[str, list[tuple[Event, str]]]:
    """Events as intake would publish them, 40 per type, each with its JSON, over 12 months."""
    templates: dict[str, list[tuple[Event, str]]] = defaultdict(list)
    hospital, now = Hospital(rng), datetime.now(UTC)
    for event_type in MIX:
        kind = BY_TYPE[event_type]
        for n in range(40):
            moment = now - timedelta(days=rng.uniform(0, 360))
            body = submission(hospital, event_type, f"REPLAY-{n}", moment)
            body.pop("event_type")
            event = kind.event.accept(kind.submission.model_validate(body), received_at=moment)
            templates[event_type].append((event, event.model_dump_json()))
    return templates


async def produce_replay(count: int, rng: random.Random) -> dict[str, Any]:
    """``count`` fact events straight into the fact topics with aiokafka (not via intake)."""
    templates, by_type = replay_templates(rng), Counter[str]()

    def records() -> Iterator[tuple[str, bytes | None, bytes]]:
        for n in range(count):
            event_type = pick_type(rng)
            kind, (event, text) = BY_TYPE[event_type], templates[event_type][n % 40]
            new_id = uuid.uuid4()
            key = new_id.bytes if kind.key_field == "event_id" else kind.key(event)
            by_type[event_type] += 1
            yield kind.topic, key, text.replace(str(event.event_id), str(new_id)).encode()

    producer = kafka.producer(RUNTIME.bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        await kafka.send_all(producer, records())
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


async def read_only(ends: dict[TopicPartition, int]) -> dict[str, Any]:
    """Read every report record and parse the facts as the rebuild does, with no store:
    Kafka's and pydantic's share of a replay. Also what a rebuild must count, by type."""
    consumer = await kafka.reader(RUNTIME.bootstrap)
    records, by_type = 0, Counter[str]()
    started = time.perf_counter()
    try:
        pending = {tp for tp, end in ends.items() if end > 0}
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        while pending:
            for tp, batch in (await consumer.getmany(*pending, timeout_ms=1000)).items():
                for record in (record for record in batch if record.offset < ends[tp]):
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


async def applied_so_far(database: Database) -> int:
    """Fact records counted: per topic and partition the last offset counted + 1 (a partition
    is counted in order; its months are separate documents)."""
    last: dict[str, int] = {}
    async for document in database["reporting_counts"].find({}):
        topic_partition = document["_id"].rsplit("|", 1)[0]
        offset = document["value"]["offset"]  # a recent revision: enough to follow progress
        last[topic_partition] = max(last.get(topic_partition, -1), offset)
    return sum(offset + 1 for offset in last.values())


async def snapshot(database: Database) -> dict[str, Any]:
    """What the reports are made of: counts by document, cases, decisions."""
    store = ReportStore(MongoDocuments(database))
    counts = {
        key: [tally.model_dump(mode="json") for tally in kept.value.tallies]
        for key, kept in (await store.counts.find()).items()
        if kept.value is not None
    }
    cases = {key: case.revision for key, case in (await store.case_facts.find()).items()}
    return {"counts": counts, "cases": cases, "decisions": len(await store.decisions.find())}


async def run_rebuild(into: str, live_db: str, limit: float) -> dict[str, Any]:
    store_before = await ferretdb_metrics()
    done = await rebuild(RUNTIME, into=into, source_db=live_db, limit=limit)
    applied = done.records_read
    if done.finished:
        async with RUNTIME.database(into) as database:
            applied = await applied_so_far(database)
    usage = done.cpu_per_record(applied)
    usage["ferretdb_requests"] = await ferretdb_since(store_before, applied)
    result: dict[str, Any] = {
        "database": into,
        "finished": done.finished,
        "seconds": round(done.seconds, 2),
        ("fact_records_counted" if done.finished else "records_read_before_the_limit"): applied,
        "cpu": usage,
        "progress_samples": done.samples,
    }
    records = applied
    if done.summary is not None:
        result["rebuild_output"] = {k: done.summary[k] for k in ("records", "copied", "seconds")}
        result["rebuild_output"]["unreadable"] = len(done.summary["unreadable"])
        records = done.summary["records"]
    result["records_per_s"] = round(records / max(done.seconds, 1e-9), 1)
    result["extrapolated_s_for_1M_records"] = round(MILLION / max(result["records_per_s"], 1e-9))
    return result


async def reset_offsets(prefix: str) -> tuple[int, dict[str, dict[TopicPartition, int]]]:
    """reporting's consumer groups (one per subscriber, services/reporting/handlers.py) set to
    offset 0, as an operator does to replay from the beginning (no member may be running): the
    partitions reset, and each group's partitions that hold records with their end offsets."""
    group = f"{prefix}reporting"
    groups = {subscriber_group(group, *topics.FACTS): topics.FACTS} | {
        subscriber_group(group, name): (name,)
        for name in (topics.DEAD_LETTERS, topics.CASES, topics.DECISIONS)
    }
    reset, ends = 0, {}
    for group_id, names in groups.items():
        partitions = await kafka.partitions_of(RUNTIME.bootstrap, names)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=RUNTIME.bootstrap, group_id=group_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.commit(dict.fromkeys(partitions, 0))
            reset += len(partitions)
        finally:
            await consumer.stop()
        group_ends = await kafka.end_offsets(RUNTIME.bootstrap, partitions)
        ends[group_id] = {tp: end for tp, end in group_ends.items() if end > 0}
    return reset, ends


async def replay_unchanged(into: str, limit: float) -> dict[str, Any]:
    """reporting on the rebuilt database, its groups reset to the beginning: nothing changes."""
    prefix = f"bench-replay-{tag()}-"
    async with RUNTIME.database(into) as database:
        before = await snapshot(database)
        reset, ends = await reset_offsets(prefix)
        to_replay = sum(sum(group_ends.values()) for group_ends in ends.values())
        env = RUNTIME.service_env(db=into, group_prefix=prefix) | {"QINGLIAN_LOG_LEVEL": "INFO"}
        port, started = free_port(SERVICE_PORTS), time.perf_counter()
        service = await asyncio.to_thread(
            processes.start_service, "reporting", env=env, port=port, log_dir=RUNTIME.log_dir
        )
        cpu = CpuWindow({"reporting": service.pid, **server_pids()})
        store_before = await ferretdb_metrics()
        cpu.begin()
        healthy = time.perf_counter() - started
        admin = AIOKafkaAdminClient(bootstrap_servers=RUNTIME.bootstrap)
        await admin.start()
        done, samples = 0, []
        try:
            give_up = time.perf_counter() + limit
            while time.perf_counter() < give_up:
                done = 0
                for group, group_ends in ends.items():
                    offsets = await committed(admin, group)
                    done += sum(min(offsets.get(tp, 0), end) for tp, end in group_ends.items())
                samples.append((round(time.perf_counter() - started, 1), done))
                if done >= to_replay:
                    break
                if not service.alive():
                    raise RuntimeError(f"reporting exited; see {service.log}")
                cpu.sample()
                await asyncio.sleep(1.0)
            seconds = time.perf_counter() - started
            usage = cpu.end(done)
            usage["ferretdb_requests"] = await ferretdb_since(store_before, done)
        finally:
            await admin.close()
            await asyncio.to_thread(processes.stop_service, service)
        after = await snapshot(database)
    rate = done / max(seconds - healthy, 1e-9)
    return {
        "database": into,
        "group_prefix": prefix,
        "partitions_reset_to_0": reset,
        "records_to_replay": to_replay,
        "records_replayed": done,
        "finished": done >= to_replay,
        "seconds_from_start": round(seconds, 2),
        "seconds_to_healthy": round(healthy, 2),
        "records_per_s": round(rate, 1),
        "extrapolated_s_for_1M_records": round(MILLION / max(rate, 1e-9)),
        "unchanged": {
            part: before[part] == after[part] for part in ("counts", "cases", "decisions")
        },
        "progress_samples": thin(samples, 12),
        "cpu": usage,
    }


async def store_probe(count: int) -> dict[str, Any]:
    """The store's share of a replay: reporting's count write (a conditional upsert by _id on
    a small collection, as ReportRepository.count does) timed from here, one at a time, first
    as new records (it counts), then as the same records again (it changes nothing: the
    filter misses and the upsert hits the duplicate key)."""
    cpu = CpuWindow({"ferretdb": RUNTIME.pid("ferretdb"), "bench": os.getpid()})
    result: dict[str, Any] = {"writes": count}
    async with RUNTIME.database(f"bench_probe_{tag()}") as database:
        collection = database["reporting_counts"]
        for label in ("counting", "changing_nothing"):
            cpu.begin()
            latencies: list[float] = []
            for n in range(count):
                found = {"_id": f"topic|{n % 12}|2026-{n % 12 + 1:02d}", "offset": {"$lt": n}}
                counted = {"counts.cardiology|complaint|kickback": 1}
                change = {"$inc": counted, "$set": {"offset": n, "month": "2026-11"}}
                with contextlib.suppress(DuplicateKeyError):
                    await timed(collection.update_one(found, change, upsert=True), latencies)
            result[label] = latency_summary(latencies) | {
                "writes_per_s": round(count / sum(latencies), 1),
                "cpu": cpu.end(count)["processes"],
            }
        await database.client.drop_database(database.name)
    return result


async def replay(options: argparse.Namespace, live_db: str) -> dict[str, Any]:
    await topics_ready(REPORT_TOPICS)
    produced = await produce_replay(options.replay_events, random.Random(options.seed))
    ends = await kafka.topic_ends(RUNTIME.bootstrap, REPORT_TOPICS)
    stored = {
        "fact_records": sum(end for tp, end in ends.items() if tp.topic in topics.FACTS),
        "all_report_records": sum(ends.values()),
    }
    parse = await read_only(ends)
    probe = await store_probe(options.probe_writes)
    into = f"bench_rebuilt_{tag()}"
    rebuilt = await run_rebuild(into, live_db, options.replay_limit)
    async with RUNTIME.database(into) as database:
        tallies = (
            tally for kept in (await snapshot(database))["counts"].values() for tally in kept
        )
    got: Counter[str] = Counter()
    for tally in tallies:
        got[tally["key"]["event_type"]] += tally["count"]
    rebuilt["counts_by_type"] = dict(got)
    # Every fact record in the topics counted once (the load's and the produced ones).
    rebuilt["counts_equal_records_in_topics"] = rebuilt["finished"] and (
        {k: v for k, v in got.items() if v} == parse["fact_records_by_type"]
    )
    result: dict[str, Any] = {
        "produced": produced,
        "stored_in_topics": stored,
        "read_and_parse_without_store": parse,
    }
    result |= {"store_write_probe": probe, "rebuild": rebuilt}
    if rebuilt["finished"] and not options.skip_second_replay:
        result["replay_unchanged"] = await replay_unchanged(into, options.replay_limit)
    return result


async def make_key(db: str) -> str:
    async with RUNTIME.database(db) as database:
        keys = IntakeStore.on(MongoDocuments(database), key_cache_seconds=0).keys
        grants: Grants = {"source_system": SOURCE, "scopes": sorted(MIX)}
        _, key = await keys.issue(grants, label="bench", now=datetime.now(UTC))
    return key


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    RUNTIME.start_fresh(deadline)
    db, prefix = "bench_system", f"bench-system-{tag()}-"
    env = RUNTIME.service_env(db=db, group_prefix=prefix)
    env |= {"QINGLIAN_LOG_LEVEL": options.log_level, "QINGLIAN_CONTACT_KEY": new_key()}
    names = ("intake", "router", "escalation", "reporting")
    if not options.skip_load:
        key = deadline.run(make_key(db))
        phases: list[dict[str, Any]] = []
        result["load"] = {"phases": phases}
        with processes.services(names, env=env, ports=SERVICE_PORTS, log_dir=RUNTIME.log_dir) as up:
            result["load"]["services"] = {name: s.port for name, s in up.items()}
            for rate in options.rate:
                print(f"load at {rate}/s for {options.seconds:.0f} s", file=sys.stderr)
                phases.append(phase := deadline.run(load_phase(options, rate, up, key, db, prefix)))
                record_sizes = phase.pop("_record_sizes") or [1000]
                if not options.skip_baseline:
                    print(f"baseline at {rate}/s", file=sys.stderr)
                    baseline = baseline_phase(rate, options.seconds, record_sizes)
                    phase["baseline_raw_aiokafka"] = deadline.run(baseline)
                if not phase["keeps_up"]:
                    print(f"{rate}/s not kept up with: the ladder ends", file=sys.stderr)
                    break
            kept = [p["offered_rate_per_s"] for p in phases if p["keeps_up"]]
            result["load"]["highest_rate_kept_up_with"] = max(kept, default=None)
    if options.replay_events > 0:
        print(f"replay of {options.replay_events} events", file=sys.stderr)
        result["replay"] = deadline.run(replay(options, db))


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
    parser.add_argument("--keep-up-drain", type=float, default=15.0, help="see keeps_up")
    parser.add_argument("--poll", type=float, default=0.2, help="reporting_counts poll, s")
    parser.add_argument("--group-poll", type=float, default=0.5, help="group offsets poll, s")
    parser.add_argument("--replay-events", type=int, default=20000)
    parser.add_argument("--replay-limit", type=float, default=600.0, help="seconds per replay")
    parser.add_argument("--probe-writes", type=int, default=300, help="count writes per kind")
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
