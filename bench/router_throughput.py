"""Router throughput: complaints routed per second by the router service, against a raw aiokafka
consume-transform-produce loop doing the same store writes, on the same broker and data.

    .venv/bin/python -m bench.router_throughput                 # 2000 complaints, 1 round
    .venv/bin/python -m bench.router_throughput --events 300 --rounds 2

Needs nothing running: the script wipes, starts and finally stops a Kafka and FerretDB of its
own (deploy/local/runtime.sh with QINGLIAN_LOCAL_DIR=.local/bench-runtime and Kafka on
29192/29193, FerretDB on 27128/18198, PostgreSQL on 25192, or the first free set 10, 20, ...
above; all on
127.0.0.1), so a `make up` system or a test run is left alone. The ports lie below Linux's
ephemeral range (32768-60999): a port in it can be taken for a moment by any outgoing
connection, and FerretDB then fails to start. The JSON says which ports were used.

It publishes N complaints to the complaints topic once (acks=all), then, per round, on a fresh
database and consumer group each time:

- router: ``python -m services.router`` as a subprocess (HTTP on a free 127.0.0.1:8531-8599), as
  deploy/local/services.sh runs it (log level INFO unless --router-log-level);
- raw loop: in this process, AIOKafkaConsumer (own group, earliest, manual commit after each
  fetched batch) and AIOKafkaProducer (acks=all, idempotent) around the same
  ``Cases.open_or_link`` over the same ``CaseStore``, one call per fetched batch of a
  partition, publishing each case it gives back as JSON, keyed by case id, to a benchmark
  topic; the sends of a batch are awaited before its commit (--raw-delivery per-message: one
  call, its sends awaited and its record committed per record).

Both are timed the same way, from the output records' Kafka timestamps: from the first case
published to the one that made all N complaints show in some case's source_event_ids;
events_per_second = (N - 1) / that span, so start-up and group joining are left out. Rounds
alternate which goes first. CPU per event of the consuming process, FerretDB and Kafka come
from /proc (Linux). Prints JSON; the ratio is router / raw loop, best round against best round.
Everything runs on the same cores; the numbers are for comparison within one run.

Slow by nature on the local runtime: on FerretDB 1.24's SQLite backend a lookup or update by
_id that matches nothing (a new event, a new case: several per complaint) takes time in
proportion to the collection's size, so each complaint costs more than the one before
(events_per_second_by_quarter shows it). 2000 complaints take about 10-15 minutes per
contender on 2 cores, hence one round and a 45-minute limit (--timeout) by default.
"""

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench._runtime import Deadline, clean_env, cpu_seconds, machine
from schemas import topics
from schemas.case import CaseChange
from schemas.complaint import ComplaintCategory, ComplaintChannel, ComplaintReceived
from services.common.broker import ensure_topics
from services.common.documents import MongoDocuments
from services.common.store import connect, database
from services.router.cases import Cases
from services.router.domain import Opening
from services.router.routing import Routing
from services.router.settings import RouterSettings
from services.router.store import CaseStore
from tests.factories import complaint_event

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = ROOT / ".local" / "bench-runtime"
ROUTER_PORTS = range(8531, 8600)
RAW_CASES = "qinglian.bench.raw-cases.v1"
JSON_HEADERS = [("content-type", b"application/json")]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def is_free(port: int) -> bool:
    """Whether nothing listens on, or holds, 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Ports:
    """The benchmark runtime's ports: the first free set of 29192/29193/27128/18198/25192
    + 10 k."""

    kafka: int = 29192
    kafka_controller: int = 29193
    ferretdb: int = 27128
    ferretdb_debug: int = 18198
    postgres: int = 25192

    def choose_free(self) -> None:
        for step in range(0, 200, 10):
            ports = (29192 + step, 29193 + step, 27128 + step, 18198 + step, 25192 + step)
            if all(is_free(port) for port in ports):
                (
                    self.kafka,
                    self.kafka_controller,
                    self.ferretdb,
                    self.ferretdb_debug,
                    self.postgres,
                ) = ports
                return
        raise RuntimeError("no free set of ports for the benchmark runtime")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.ferretdb}/"

    def runtime_env(self) -> dict[str, str]:
        return {
            "QINGLIAN_LOCAL_DIR": str(LOCAL_DIR),
            "QINGLIAN_KAFKA_PORT": str(self.kafka),
            "QINGLIAN_KAFKA_CONTROLLER_PORT": str(self.kafka_controller),
            "QINGLIAN_FERRETDB_PORT": str(self.ferretdb),
            "QINGLIAN_FERRETDB_DEBUG_PORT": str(self.ferretdb_debug),
            "QINGLIAN_POSTGRES_PORT": str(self.postgres),
        }


PORTS = Ports()
"""Set once by main() before anything starts."""

CATEGORY_WEIGHTS = {
    ComplaintCategory.KICKBACK: 30,
    ComplaintCategory.RED_ENVELOPE: 25,
    ComplaintCategory.ATTITUDE: 20,
    ComplaintCategory.OUTSIDE_PHARMACY: 8,
    ComplaintCategory.PROCUREMENT: 5,
    ComplaintCategory.DUPLICATE_TEST: 4,
    ComplaintCategory.UNREASONABLE_TEST: 4,
    ComplaintCategory.APPOINTMENT_SCALPING: 2,
    ComplaintCategory.OTHER: 2,
}
DESCRIPTIONS = (
    "医生收取医药代表回扣。",
    "手术前家属被暗示送红包。",
    "门诊医生态度恶劣，拒绝解释检查结果。",
    "医生建议到院外药店购买指定药品。",
    "同一检查一周内重复开具。",
)


# --- The runtime and the processes --------------------------------------------------------------


def runtime(command: str, *, timeout: float) -> None:
    """deploy/local/runtime.sh on the benchmark's own data folder and ports; output to stderr."""
    subprocess.run(  # noqa: S603 (our own script)
        [str(ROOT / "deploy" / "local" / "runtime.sh"), command],
        env=clean_env() | PORTS.runtime_env(),
        stdout=sys.stderr,
        stderr=sys.stderr,
        check=True,
        timeout=max(1.0, timeout),
    )


def runtime_pid(name: str) -> int | None:
    try:
        return int((LOCAL_DIR / "run" / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


@contextmanager
def router_process(*, port: int, db: str, group_prefix: str, log_level: str) -> Iterator[int]:
    """``python -m services.router`` on the benchmark runtime; its pid. Stopped on exit."""
    env = clean_env() | {
        "QINGLIAN_KAFKA_BOOTSTRAP": PORTS.bootstrap,
        "QINGLIAN_MONGO_URL": PORTS.mongo_url,
        "QINGLIAN_MONGO_DB": db,
        "QINGLIAN_KAFKA_GROUP_PREFIX": group_prefix,
        "QINGLIAN_HTTP_PORT": str(port),
        "QINGLIAN_LOG_LEVEL": log_level,
    }
    log_path = LOCAL_DIR / "logs" / f"bench-router-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.router"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield process.pid
        if process.poll() is not None:
            raise RuntimeError(f"the router exited early; see {log_path}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- Data -----------------------------------------------------------------------------------


def settings(*, db: str = "bench", group_prefix: str = "bench-") -> RouterSettings:
    """Router settings on the benchmark runtime (the arguments win over the environment)."""
    return RouterSettings(
        kafka_bootstrap=PORTS.bootstrap,
        mongo_url=PORTS.mongo_url,
        mongo_db=db,
        kafka_group_prefix=group_prefix,
        kafka_partitions=3,
        kafka_replication=1,
        http_port=ROUTER_PORTS[0],
    )


def complaints(
    count: int, staff: int, routing: Routing, rng: random.Random
) -> list[ComplaintReceived]:
    """Complaints received over 30 days, in order of receipt: some 5 % name no one, the rest
    name one of ``staff`` staff members (department heads among them), in a few categories
    mostly, so that complaints against the same person in the same category are linked."""
    run = uuid.uuid4().hex[:8]
    heads = sorted({entry.head_staff_id for entry in routing.catalogue.departments.values()})
    pool = heads + [f"S{n:05d}" for n in range(max(0, staff - len(heads)))]
    departments = sorted(routing.catalogue.departments)
    categories, weights = zip(*CATEGORY_WEIGHTS.items(), strict=True)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    received = sorted(start + timedelta(seconds=rng.uniform(0, 30 * 86400)) for _ in range(count))
    return [
        complaint_event(
            received_at=at,
            source_ref=f"BENCH-{run}-{n}",
            occurred_at=at - timedelta(seconds=rng.uniform(0, 3 * 86400)),
            channel=rng.choice(list(ComplaintChannel)),
            category=rng.choices(categories, weights)[0],
            accused_staff_id=None if rng.random() < 0.05 else rng.choice(pool),
            accused_department=rng.choice(departments),
            description=rng.choice(DESCRIPTIONS),
        )
        for n, at in enumerate(received)
    ]


def expected_cases(events: list[ComplaintReceived]) -> dict[str, int]:
    """Opened and linked, as the router should decide (all within the 90-day window)."""
    keys = {Opening.of_complaint(event).related_key for event in events}
    unnamed = sum(1 for event in events if event.accused_staff_id is None)
    opened = len(keys - {None}) + unnamed
    return {"opened": opened, "linked": len(events) - opened}


async def prepare(events: list[ComplaintReceived]) -> float:
    """Create the topics, publish the complaints as intake does (acks=all); seconds taken."""
    await ensure_topics(settings(), (topics.COMPLAINTS, topics.CASES, RAW_CASES))
    producer = AIOKafkaProducer(
        bootstrap_servers=PORTS.bootstrap,
        acks="all",
        enable_idempotence=True,
        client_id="bench-feed",
    )
    await producer.start()
    try:
        started = time.perf_counter()
        sent = [
            await producer.send(
                topics.COMPLAINTS,
                event.model_dump_json().encode(),
                key=event.event_id.bytes,
                headers=JSON_HEADERS,
            )
            for event in events
        ]
        await asyncio.gather(*sent)
        return time.perf_counter() - started
    finally:
        await producer.stop()


# --- Measuring --------------------------------------------------------------------------------


async def reader() -> AIOKafkaConsumer:
    """A started consumer outside any group, for reading by offset."""
    consumer = AIOKafkaConsumer(bootstrap_servers=PORTS.bootstrap, enable_auto_commit=False)
    await consumer.start()
    # aiokafka 0.14 cancels, then awaits, its no-group task on stop(); had the task not run
    # yet, stop() raises CancelledError. One pass of the loop lets it start.
    await asyncio.sleep(0)
    return consumer


async def end_offsets(topic: str) -> dict[int, int]:
    consumer = await reader()
    try:
        # prepare() created every topic read here with this many partitions.
        partitions = [TopicPartition(topic, p) for p in range(settings().kafka_partitions)]
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


@dataclass
class CpuWindow:
    """CPU used by a process, FerretDB and Kafka between two points, per event handled."""

    pid: int | None
    start: dict[str, float | None] = field(default_factory=dict)
    start_events: int = 0

    def _now(self) -> dict[str, float | None]:
        own = time.process_time() if self.pid is None else cpu_seconds(self.pid)
        return {
            "process": own,
            "ferretdb": cpu_seconds(runtime_pid("ferretdb")),
            "kafka": cpu_seconds(runtime_pid("kafka")),
        }

    def begin(self, events: int) -> None:
        self.start, self.start_events = self._now(), events

    def end(self, events: int) -> dict[str, Any]:
        now, handled = self._now(), max(1, events - self.start_events)
        result: dict[str, Any] = {"events_in_window": handled}
        for name, value in now.items():
            began = self.start.get(name)
            if value is not None and began is not None:
                result[f"{name}_ms_per_event"] = round((value - began) * 1000 / handled, 2)
        return result


async def outputs_span(
    topic: str,
    since: dict[int, int],
    events: set[str],
    *,
    patience: float | None = None,
    producer_pid: int | None = None,
    cpu: CpuWindow | None = None,
    progress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read the cases published after ``since`` until every event shows in one; the time from
    the first to the one that completed them, by the records' timestamps (producer's clock).

    While the producer runs (``producer_pid``, until it exits), ``cpu`` starts at the first
    case seen and ``progress`` counts the events shown; otherwise give up after ``patience``.
    """
    consumer = await reader()
    records: list[tuple[int, list[str]]] = []
    seen: set[str] = set()
    try:
        partitions = [TopicPartition(topic, p) for p in since]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, since[tp.partition])
        give_up = None if patience is None else time.monotonic() + patience
        while not events <= seen:
            if give_up is not None and time.monotonic() > give_up:
                raise RuntimeError(f"{topic}: only {len(seen & events)} of {len(events)} shown")
            if producer_pid is not None and cpu_seconds(producer_pid) is None:
                raise RuntimeError(f"process {producer_pid} exited")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    if cpu is not None and not records:
                        cpu.begin(1)
                    ids = json.loads(record.value)["source_event_ids"]
                    records.append((record.timestamp, ids))
                    seen.update(ids)
            if progress is not None:
                progress["events_done"] = len(seen & events)
    finally:
        await consumer.stop()
    records.sort(key=lambda item: item[0])
    # When the count of events shown reached 1, then each quarter of them.
    marks = [1, *(len(events) * q // 4 for q in (1, 2, 3, 4))]
    reached: list[int] = []
    shown: set[str] = set()
    for stamp, ids in records:
        shown.update(ids)
        while len(reached) < len(marks) and len(shown) >= marks[len(reached)]:
            reached.append(stamp)
    stamps = [stamp for stamp, _ in records]
    seconds = (reached[-1] - reached[0]) / 1000
    gaps = [b - a for a, b in itertools.pairwise(stamps) if b <= reached[-1]]
    quarters = [
        round((marks[i + 1] - marks[i]) * 1000 / max(1, reached[i + 1] - reached[i]), 1)
        for i in range(4)
    ]
    return {
        "events_per_second": round((len(events) - 1) / seconds, 1),
        "seconds": round(seconds, 3),
        "events_per_second_by_quarter": quarters,
        "output_records": len(records),
        "longest_pause_s": round(max(gaps, default=0) / 1000, 3),
    }


# --- The two contenders -----------------------------------------------------------------------


async def raw_loop(
    events: set[str], progress: dict[str, Any], *, round_no: int, delivery: str
) -> dict[str, Any]:
    """Consume, open or link, publish, commit: aiokafka and the router's cases, no FastStream."""
    tag = f"{uuid.uuid4().hex[:8]}-raw{round_no}"
    config = settings(db=f"bench_{tag.replace('-', '_')}", group_prefix=f"bench-{tag}-")
    since = await end_offsets(RAW_CASES)
    routing = Routing.load(config.departments, config.routing_table)
    mongo = connect(config)
    cases = Cases(CaseStore.on(MongoDocuments(database(mongo, config))), routing)
    consumer = AIOKafkaConsumer(
        topics.COMPLAINTS,
        bootstrap_servers=PORTS.bootstrap,
        group_id=config.consumer_group("router"),
        client_id="bench-raw-loop",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=PORTS.bootstrap,
        acks="all",
        enable_idempotence=True,
        client_id="bench-raw",
    )
    changes = {CaseChange.OPENED: 0, CaseChange.LINKED: 0}
    cpu = CpuWindow(pid=None)
    handled = 0
    await producer.start()
    await consumer.start()
    try:
        while handled < len(events):
            sends = []
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                step = 1 if delivery == "per-message" else len(records)
                for start in range(0, len(records), step):
                    chunk = records[start : start + step]
                    openings = [
                        Opening.of_complaint(ComplaintReceived.model_validate_json(r.value))
                        for r in chunk
                    ]
                    applied = await cases.open_or_link(openings, now=datetime.now(UTC))
                    for entry in applied.new_entries:
                        if entry.change in changes:
                            changes[entry.change] += 1
                    for case in applied.cases.values():
                        sent = await producer.send(
                            RAW_CASES,
                            case.model_dump_json().encode(),
                            key=case.case_id.encode(),
                            headers=JSON_HEADERS,
                        )
                        sends.append(sent)
                    if delivery == "per-message":
                        await asyncio.gather(*sends)
                        await consumer.commit({tp: chunk[-1].offset + 1})
                        sends = []
                    if handled == 0:
                        cpu.begin(1)
                    handled += len(chunk)
                    progress["events_done"] = handled
            if sends:
                await asyncio.gather(*sends)
                await consumer.commit()
        usage = cpu.end(handled)
    finally:
        await consumer.stop()
        await producer.stop()
        await mongo.close()
    span = await outputs_span(RAW_CASES, since, events, patience=60)
    return span | {
        "opened": changes[CaseChange.OPENED],
        "linked": changes[CaseChange.LINKED],
        "delivery": delivery,
        "cpu": usage,
    }


METRIC = re.compile(
    r'^(?:qinglian_case_changes_total\{change="(\w+)"\}'
    r"|qinglian_handler_failures_total\{[^}]*\}) (\S+)$"
)


async def router_metrics(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    try:
        text = (await client.get(url, timeout=2)).text
    except httpx.TransportError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if match := METRIC.match(line):
            name = match.group(1) or "handler_failures"
            values[name] = values.get(name, 0.0) + float(match.group(2))
    return values


async def watch_router(
    pid: int, port: int, events: set[str], since: dict[int, int], progress: dict[str, Any]
) -> dict[str, Any]:
    """Read the router's cases until every complaint shows in one, then its counters once.

    Done from the output topic in this process, not by polling /metrics: each scrape costs the
    router CPU (FastStream's histograms), which would count against it.
    """
    cpu = CpuWindow(pid=pid)
    span = await outputs_span(
        topics.CASES, since, events, producer_pid=pid, cpu=cpu, progress=progress
    )
    usage = cpu.end(len(events))
    usage["process_total_s_since_launch"] = cpu_seconds(pid)
    async with httpx.AsyncClient() as client:
        values = await router_metrics(client, f"http://127.0.0.1:{port}/metrics")
    return span | {
        "opened": int(values.get("opened", 0)),
        "linked": int(values.get("linked", 0)),
        "handler_failures": int(values.get("handler_failures", 0)),
        "cpu": usage,
    }


def router_round(
    deadline: Deadline,
    events: set[str],
    progress: dict[str, Any],
    *,
    round_no: int,
    log_level: str,
) -> dict[str, Any]:
    tag = f"{uuid.uuid4().hex[:8]}-router{round_no}"
    port = next(port for port in ROUTER_PORTS if is_free(port))
    since = deadline.run(end_offsets(topics.CASES))  # before the router can publish
    with router_process(
        port=port,
        db=f"bench_{tag.replace('-', '_')}",
        group_prefix=f"bench-{tag}-",
        log_level=log_level,
    ) as pid:
        result = deadline.run(watch_router(pid, port, events, since, progress))
    return result | {"log_level": log_level}


# --- The run ----------------------------------------------------------------------------------


def best(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    top = max(rounds, key=lambda item: float(item["events_per_second"]))
    return {
        "events_per_second": top["events_per_second"],
        "seconds": top["seconds"],
        "rounds": rounds,
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    """Run the rounds, filling ``result`` as they finish (a timeout keeps the rounds done)."""
    rng = random.Random(options.seed)
    routing = Routing.load(settings().departments, settings().routing_table)
    feed = complaints(options.events, options.staff, routing, rng)
    events = {str(event.event_id) for event in feed}
    expected = expected_cases(feed)
    result["data"] = {
        "staff_ids": options.staff,
        "categories": len(CATEGORY_WEIGHTS),
        "expected": expected,
    }
    result["data"]["published_in_s"] = round(deadline.run(prepare(feed)), 3)

    raw: list[dict[str, Any]] = []
    router: list[dict[str, Any]] = []
    result["router"], result["raw_aiokafka_loop"] = {"rounds": router}, {"rounds": raw}
    for round_no in range(1, options.rounds + 1):
        order = ("raw", "router") if round_no % 2 else ("router", "raw")
        for contender in order:
            print(f"round {round_no}: {contender}", file=sys.stderr)
            # Left in the result if the round does not finish.
            progress = {"contender": contender, "round": round_no, "events_done": 0}
            result["unfinished"] = progress
            if contender == "raw":
                outcome = deadline.run(
                    raw_loop(events, progress, round_no=round_no, delivery=options.raw_delivery)
                )
                raw.append(outcome | {"round": round_no})
            else:
                outcome = router_round(
                    deadline,
                    events,
                    progress,
                    round_no=round_no,
                    log_level=options.router_log_level,
                )
                router.append(outcome | {"round": round_no})
            del result["unfinished"]
            print(f"  {outcome['events_per_second']} events/s", file=sys.stderr)

    result["data"]["all_rounds_opened_and_linked_as_expected"] = all(
        (item["opened"], item["linked"]) == (expected["opened"], expected["linked"])
        for item in raw + router
    )
    result["router"], result["raw_aiokafka_loop"] = best(router), best(raw)
    result["ratio"] = round(
        result["router"]["events_per_second"] / result["raw_aiokafka_loop"]["events_per_second"],
        3,
    )
    result["ratio_per_round"] = [
        round(r["events_per_second"] / w["events_per_second"], 3)
        for r, w in zip(router, raw, strict=True)
    ]
    result["goal"] = {"ratio_at_least": 0.8}


NOTES = (
    "events_per_second = (events - 1) / time from the first case published to the one that "
    "completed all events, by Kafka record timestamps; start-up and group join excluded. "
    "Router: FastStream batch subscriber (services.common.consuming, up to 500 records), the "
    "cases of a batch published side by side (acks=all), commit after the batch, Prometheus "
    "middleware, log level as given. Raw loop: the same Cases and CaseStore (the same store "
    "reads and writes), same topic and partitions, getmany batches; delivery per-batch: one "
    "call per fetched partition batch, sends awaited and offsets committed once per fetch; "
    "per-message: one record per call, each committed. Fresh FerretDB database and consumer "
    "group per round. cpu.*_ms_per_event: CPU of the consuming process, FerretDB and Kafka "
    "over the measured window. Kafka, FerretDB, the router and this script share the "
    "machine's cores (and whatever else runs on it: see load_average)."
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000, help="complaints to route")
    parser.add_argument(
        "--staff", type=int, help="distinct accused staff ids (default: 3/4 of --events)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds of raw loop and router")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=2700.0, help="seconds for the whole run")
    parser.add_argument(
        "--router-log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    parser.add_argument(
        "--raw-delivery",
        default="per-batch",
        choices=("per-batch", "per-message"),
        help="raw loop awaits Kafka's acks and commits per fetched batch, or per message",
    )
    options = parser.parse_args()
    if options.events < 2 or options.rounds < 1:
        parser.error("need at least 2 events and 1 round")
    options.staff = options.staff or max(1, options.events * 3 // 4)

    deadline = Deadline(options.timeout)
    load_at_start = [round(load, 2) for load in os.getloadavg()]
    result: dict[str, Any] = {"benchmark": "router_throughput", "events": options.events}
    status = 0
    try:
        runtime("wipe", timeout=deadline.left())  # also stops one a crashed run left
        PORTS.choose_free()
        result["runtime"] = {"local_dir": str(LOCAL_DIR.relative_to(ROOT))} | asdict(PORTS)
        runtime("start", timeout=deadline.left())
        measure(options, deadline, result)
    except Exception as error:  # reported in the JSON, with the runtime stopped
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
    result["machine"] = machine(load_at_start)
    result["notes"] = NOTES
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return status


if __name__ == "__main__":
    sys.exit(main())
