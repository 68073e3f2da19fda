"""Router throughput: complaints routed per second by the router service (a subprocess) against a
raw aiokafka consume-store-produce loop in this process (manual commits, acks=all, idempotent)
around the same ``Cases.open_or_link`` over the same ``CaseStore``, on the same broker and data.

    .venv/bin/python -m bench.router_throughput --events 300 --rounds 2

Its own Kafka and FerretDB (.local/bench-runtime, on the first free set of ports). The complaints
are published once; each round runs both on a fresh database and consumer group, alternating
which goes first, timed by the Kafka timestamps of the cases they publish.
"""

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import time
from collections import Counter
from contextlib import aclosing
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.harness import report
from bench.harness.kafka import JSON_HEADERS, batches_from, producer, publish, topic_ends
from bench.harness.processes import (
    CpuWindow,
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
from schemas.case import CaseChange
from schemas.complaint import ComplaintReceived
from services.common.broker import ensure_topics
from services.common.documents import MongoDocuments
from services.router.cases import Cases
from services.router.domain import Opening
from services.router.settings import RouterSettings
from services.router.store import CaseStore

ROUTER_PORTS = range(8531, 8600)
RAW_CASES = "qinglian.bench.raw-cases.v1"
RUNTIME = Runtime.of("bench-runtime", 29192, 27128, 18198, 25192)
"""Moved by measure() to the first free set of ports."""


def complaints(count: int, staff: int, rng: random.Random) -> list[Any]:
    """Complaints of the example hospital received over 30 days, in order of receipt: some 5 %
    name no one, the rest one of ``staff`` staff members (department heads among them), so
    that complaints against the same person in the same category are linked."""
    hospital = Hospital(rng, prefix=f"BENCH-{tag()}")
    heads = sorted({entry.head_staff_id for entry in routing().catalogue.departments.values()})
    pool = heads + [f"S{n:05d}" for n in range(max(0, staff - len(heads)))]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    received = sorted(start + timedelta(seconds=rng.uniform(0, 30 * 86400)) for _ in range(count))
    return [
        hospital.event(
            "complaint",
            received_at=at,
            occurred_at=at - timedelta(seconds=rng.uniform(0, 3 * 86400)),
            accused_staff_id=None if rng.random() < 0.05 else rng.choice(pool),
        )
        for at in received
    ]


def cpu_per_event(cpu: CpuWindow, handled: int) -> dict[str, Any]:
    """CPU of the consuming process, FerretDB and Kafka since the window began."""
    used = {
        f"{name}_ms_per_event": round(s * 1000 / max(1, handled), 2)
        for name, s in cpu.used().items()
    }
    return {"events_in_window": handled} | used


def cpu_window(pid: int) -> CpuWindow:
    return CpuWindow(
        {"process": pid, "ferretdb": RUNTIME.pid("ferretdb"), "kafka": RUNTIME.pid("kafka")}
    )


async def outputs_span(
    topic: str,
    since: dict[TopicPartition, int],
    events: set[str],
    *,
    patience: float | None = None,
    producer_pid: int | None = None,
    cpu: CpuWindow | None = None,
    progress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read the cases published after ``since`` until every event shows in one; the time from
    the first to the one that completed them, by the records' timestamps (producer's clock).
    While the producer runs (``producer_pid``), ``cpu`` begins at the first case seen and
    ``progress`` counts the events shown; otherwise give up after ``patience``."""
    records: list[tuple[int, list[str]]] = []
    seen: set[str] = set()
    give_up = None if patience is None else time.monotonic() + patience
    async with aclosing(batches_from(RUNTIME.bootstrap, since)) as batches:
        async for batch in batches:
            for record in (record for part in batch.values() for record in part):
                if cpu is not None and not records:
                    cpu.begin()
                ids = json.loads(record.value or b"{}")["source_event_ids"]
                records.append((record.timestamp, ids))
                seen.update(ids)
            if progress is not None:
                progress["events_done"] = len(seen & events)
            if events <= seen:
                break
            if give_up is not None and time.monotonic() > give_up:
                raise RuntimeError(f"{topic}: only {len(seen & events)} of {len(events)} shown")
            if producer_pid is not None and cpu_seconds(producer_pid) is None:
                raise RuntimeError(f"process {producer_pid} exited")
    records.sort(key=lambda item: item[0])
    # When the count of events shown reached 1, then each quarter of them.
    marks = [1, *(len(events) * q // 4 for q in (1, 2, 3, 4))]
    reached: list[int] = []
    shown: set[str] = set()
    for stamp, ids in records:
        shown.update(ids)
        while len(reached) < len(marks) and len(shown) >= marks[len(reached)]:
            reached.append(stamp)
    seconds = (reached[-1] - reached[0]) / 1000
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(records) if b <= reached[-1]]
    return {
        "events_per_second": round((len(events) - 1) / seconds, 1),
        "seconds": round(seconds, 3),
        "events_per_second_by_quarter": [
            round((marks[i + 1] - marks[i]) * 1000 / max(1, reached[i + 1] - reached[i]), 1)
            for i in range(4)
        ],
        "output_records": len(records),
        "longest_pause_s": round(max(gaps, default=0) / 1000, 3),
    }


async def raw_loop(
    events: set[str], progress: dict[str, Any], *, round_no: int, delivery: str
) -> dict[str, Any]:
    """Consume, open or link, publish, commit: aiokafka and the router's cases, no FastStream.
    ``delivery``: one call per fetched partition batch, or per record (each committed)."""
    run = f"{tag()}-raw{round_no}"
    since = await topic_ends(RUNTIME.bootstrap, [RAW_CASES])
    consumer = AIOKafkaConsumer(
        topics.COMPLAINTS,
        bootstrap_servers=RUNTIME.bootstrap,
        group_id=f"bench-{run}-router",
        client_id="bench-raw-loop",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    sender = producer(RUNTIME.bootstrap, client_id="bench-raw")
    changes = Counter[CaseChange]()
    cpu = cpu_window(os.getpid())
    handled = 0
    async with RUNTIME.database(f"bench_{run.replace('-', '_')}") as db:
        cases = Cases(CaseStore.on(MongoDocuments(db)), routing())
        await sender.start()
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
                        changes.update(entry.change for entry in applied.new_entries)
                        for case in applied.cases.values():
                            value, key = case.model_dump_json().encode(), case.case_id.encode()
                            sends.append(
                                await sender.send(RAW_CASES, value, key=key, headers=JSON_HEADERS)
                            )
                        if delivery == "per-message":
                            await asyncio.gather(*sends)
                            await consumer.commit({tp: chunk[-1].offset + 1})
                            sends = []
                        if handled == 0:
                            cpu.begin()
                        handled += len(chunk)
                        progress["events_done"] = handled
                if sends:
                    await asyncio.gather(*sends)
                    await consumer.commit()
            usage = cpu_per_event(cpu, handled - 1)
        finally:
            await consumer.stop()
            await sender.stop()
    span = await outputs_span(RAW_CASES, since, events, patience=60)
    return span | {
        "opened": changes[CaseChange.OPENED],
        "linked": changes[CaseChange.LINKED],
        "delivery": delivery,
        "cpu": usage,
    }


def router_round(
    deadline: Deadline, events: set[str], progress: dict[str, Any], *, round_no: int, log_level: str
) -> dict[str, Any]:
    """The router until every complaint shows in a case on its output topic, then its counters
    once (not polling /metrics: each scrape costs the router CPU, which would count against it)."""
    run = f"{tag()}-router{round_no}"
    since = deadline.run(topic_ends(RUNTIME.bootstrap, [topics.CASES]))  # before it can publish
    env = RUNTIME.service_env(db=f"bench_{run.replace('-', '_')}", group_prefix=f"bench-{run}-")
    router = start_service(
        "router",
        env=env | {"QINGLIAN_LOG_LEVEL": log_level},
        port=free_port(ROUTER_PORTS),
        log_dir=RUNTIME.log_dir,
    )

    async def watch() -> dict[str, Any]:
        cpu = cpu_window(router.pid)
        span = await outputs_span(
            topics.CASES, since, events, producer_pid=router.pid, cpu=cpu, progress=progress
        )
        usage = cpu_per_event(cpu, len(events) - 1)
        usage["process_total_s_since_launch"] = cpu_seconds(router.pid)
        async with httpx.AsyncClient() as client:
            try:
                metrics = await scrape(client, f"{router.url}/metrics")
            except httpx.TransportError:
                metrics = {}
        changes = by_label(metrics, "qinglian_case_changes_total", "change")
        return span | {
            "opened": int(changes.get("opened", 0)),
            "linked": int(changes.get("linked", 0)),
            "handler_failures": int(total(metrics, "qinglian_handler_failures_total")),
            "cpu": usage,
        }

    try:
        return deadline.run(watch()) | {"log_level": log_level}
    finally:
        stop_service(router)


def best(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    top = max(rounds, key=lambda item: float(item["events_per_second"]))
    return {
        "events_per_second": top["events_per_second"],
        "seconds": top["seconds"],
        "rounds": rounds,
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    """Run the rounds, filling ``result`` as they finish (a timeout keeps the rounds done)."""
    global RUNTIME  # the first free set of ports, chosen before anything starts
    RUNTIME.command("wipe", timeout=deadline.left())  # also stops one a crashed run left
    RUNTIME = RUNTIME.shifted_to_free()
    result["runtime"] = asdict(RUNTIME)
    RUNTIME.start_fresh(deadline, attempts=1)
    feed = complaints(options.events, options.staff, random.Random(options.seed))
    events = {str(event.event_id) for event in feed}
    keys = {Opening.of_complaint(event).related_key for event in feed}  # all within 90 days
    opened = len(keys - {None}) + sum(1 for event in feed if event.accused_staff_id is None)
    expected = {"opened": opened, "linked": len(feed) - opened}
    categories = len({event.category for event in feed})
    result["data"] = {"staff_ids": options.staff, "categories": categories, "expected": expected}
    settings = RouterSettings(
        kafka_bootstrap=RUNTIME.bootstrap, kafka_partitions=3, kafka_replication=1
    )
    deadline.run(ensure_topics(settings, (topics.COMPLAINTS, topics.CASES, RAW_CASES)))

    async def prepare() -> float:
        """Publish the complaints as intake does; seconds taken."""
        sender = producer(RUNTIME.bootstrap, client_id="bench-feed")
        await sender.start()
        try:
            started = time.perf_counter()
            await publish(sender, feed)
            return time.perf_counter() - started
        finally:
            await sender.stop()

    result["data"]["published_in_s"] = round(deadline.run(prepare()), 3)
    raw: list[dict[str, Any]] = []
    router: list[dict[str, Any]] = []
    result["router"], result["raw_aiokafka_loop"] = {"rounds": router}, {"rounds": raw}
    for round_no in range(1, options.rounds + 1):
        for contender in ("raw", "router") if round_no % 2 else ("router", "raw"):
            print(f"round {round_no}: {contender}", file=sys.stderr)
            # Left in the result if the round does not finish.
            progress = {"contender": contender, "round": round_no, "events_done": 0}
            result["unfinished"] = progress
            if contender == "raw":
                coroutine = raw_loop(
                    events, progress, round_no=round_no, delivery=options.raw_delivery
                )
                raw.append(outcome := deadline.run(coroutine) | {"round": round_no})
            else:
                outcome = router_round(
                    deadline,
                    events,
                    progress,
                    round_no=round_no,
                    log_level=options.router_log_level,
                )
                router.append(outcome := outcome | {"round": round_no})
            del result["unfinished"]
            print(f"  {outcome['events_per_second']} events/s", file=sys.stderr)
    result["data"]["all_rounds_opened_and_linked_as_expected"] = all(
        (item["opened"], item["linked"]) == (opened, len(feed) - opened) for item in raw + router
    )
    result["router"], result["raw_aiokafka_loop"] = best(router), best(raw)
    rates = (
        result["router"]["events_per_second"],
        result["raw_aiokafka_loop"]["events_per_second"],
    )
    result["ratio"] = round(rates[0] / rates[1], 3)
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
    "machine's cores (and whatever else runs on it: see load_average). On FerretDB a lookup "
    "that matches nothing costs time in proportion to the collection "
    "(events_per_second_by_quarter)."
)


def main() -> int:
    parser = report.parser(__doc__, timeout=2700)
    parser.add_argument("--events", type=int, default=2000, help="complaints to route")
    parser.add_argument(
        "--staff", type=int, help="distinct accused staff ids (default: 3/4 of --events)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds of raw loop and router")
    parser.add_argument("--seed", type=int, default=7)
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
    return report.run(
        "router_throughput",
        options,
        measure,
        runtime=RUNTIME,
        head={"events": options.events},
        notes=NOTES,
    )


if __name__ == "__main__":
    sys.exit(main())
