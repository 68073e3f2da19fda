"""Router throughput: complaints routed per second by the router service against a raw aiokafka
consume-store-produce loop doing the same store writes, on the same broker and data.

    .venv/bin/python -m bench.router_throughput --events 300 --rounds 2

Its own Kafka and FerretDB (.local/bench-runtime, on the first free set of ports). The
complaints are published once (acks=all); each round runs both, alternating which goes first,
each on a fresh database and consumer group. Router: python -m services.router (FastStream batch
subscriber, up to 500 records; the cases of a batch published side by side, acks=all; commit
after the batch; Prometheus middleware; log level INFO). Raw loop, in this process:
AIOKafkaConsumer (getmany, manual commit once per fetch) and AIOKafkaProducer (acks=all,
idempotent) around the same Cases.open_or_link over the same CaseStore, one call per fetched
partition batch. events_per_second = (events - 1) / the time from the first case published to
the one that completed all events, by Kafka record timestamps (start-up and group join
excluded); ratio: router / raw loop, best round against best round. cpu.*_ms_per_event: CPU of
the consuming process, FerretDB and Kafka over that window. On FerretDB a lookup that matches
nothing costs time in proportion to the collection (events_per_second_by_quarter). Kafka,
FerretDB, the router and this script share the machine's cores (see load_average).
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
from typing import Any, cast

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.harness import processes, report
from bench.harness.kafka import JSON_HEADERS, batches_from, producer, publish, topic_ends
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

PORTS = range(8531, 8600)
SEED, LOG_LEVEL = 7, "INFO"
RAW_CASES = "qinglian.bench.raw-cases.v1"
RUNTIME = Runtime.numbered("bench-runtime", 5)
"""Moved by measure() to the first free set of ports."""


def complaints(count: int, staff: int, rng: random.Random) -> list[ComplaintReceived]:
    """Complaints of the example hospital received over 30 days, in order of receipt: some 5 %
    name no one, the rest one of ``staff`` staff members (department heads among them), so
    that complaints against the same person in the same category are linked."""
    hospital = Hospital(rng, prefix=f"BENCH-{tag()}")
    heads = sorted({entry.head_staff_id for entry in routing().catalogue.departments.values()})
    pool = heads + [f"S{n:05d}" for n in range(max(0, staff - len(heads)))]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    received = sorted(start + timedelta(seconds=rng.uniform(0, 30 * 86400)) for _ in range(count))
    return [
        cast(
            ComplaintReceived,
            hospital.event(
                "complaint",
                received_at=at,
                occurred_at=at - timedelta(seconds=rng.uniform(0, 3 * 86400)),
                accused_staff_id=None if rng.random() < 0.05 else rng.choice(pool),
            ),
        )
        for at in received
    ]


def cpu_per_event(cpu: processes.CpuWindow, handled: int) -> dict[str, Any]:
    """CPU of the consuming process, FerretDB and Kafka since the window began."""
    used = {
        f"{name}_ms_per_event": round(s * 1000 / max(1, handled), 2)
        for name, s in cpu.used().items()
    }
    return {"events_in_window": handled} | used


def cpu_window(pid: int) -> processes.CpuWindow:
    return processes.CpuWindow(
        {"process": pid, "ferretdb": RUNTIME.pid("ferretdb"), "kafka": RUNTIME.pid("kafka")}
    )


async def outputs_span(
    since: dict[TopicPartition, int],
    events: set[str],
    producer_pid: int | None = None,
    cpu: processes.CpuWindow | None = None,
    progress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read the cases published after ``since`` until every event shows in one; the time from
    the first to the one that completed them, by the records' timestamps (producer's clock).
    While the producer runs (``producer_pid``), ``cpu`` begins at the first case seen and
    ``progress`` counts the events shown."""
    records: list[tuple[int, list[str]]] = []
    seen: set[str] = set()
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
            if producer_pid is not None and processes.cpu_seconds(producer_pid) is None:
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


async def raw_loop(events: set[str], progress: dict[str, Any], *, round_no: int) -> dict[str, Any]:
    """Consume, open or link, publish, commit: aiokafka and the router's cases, no FastStream."""
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
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    complaints = [ComplaintReceived.model_validate_json(r.value) for r in records]
                    openings = [Opening.of_complaint(complaint) for complaint in complaints]
                    applied = await cases.open_or_link(openings, now=datetime.now(UTC))
                    changes.update(entry.change for entry in applied.new_entries)
                    for case in applied.cases.values():
                        value, key = case.model_dump_json().encode(), case.case_id.encode()
                        sends.append(
                            await sender.send(RAW_CASES, value, key=key, headers=JSON_HEADERS)
                        )
                    if handled == 0:
                        cpu.begin()
                    handled += len(records)
                    progress["events_done"] = handled
                if sends:
                    await asyncio.gather(*sends)
                    await consumer.commit()
            usage = cpu_per_event(cpu, handled - 1)
        finally:
            await consumer.stop()
            await sender.stop()
    span = await outputs_span(since, events)
    opened, linked = changes[CaseChange.OPENED], changes[CaseChange.LINKED]
    return span | {"opened": opened, "linked": linked, "delivery": "per-batch", "cpu": usage}


def router_round(
    deadline: Deadline, events: set[str], progress: dict[str, Any], round_no: int
) -> dict[str, Any]:
    """The router until every complaint shows in a case on its output topic, then its counters
    once (not polling /metrics: each scrape costs the router CPU, which would count against it)."""
    run = f"{tag()}-router{round_no}"
    since = deadline.run(topic_ends(RUNTIME.bootstrap, [topics.CASES]))  # before it can publish
    env = RUNTIME.service_env(db=f"bench_{run.replace('-', '_')}", group_prefix=f"bench-{run}-")
    env["QINGLIAN_LOG_LEVEL"] = LOG_LEVEL
    router = processes.start_service(
        "router", env=env, port=free_port(PORTS), log_dir=RUNTIME.log_dir
    )

    async def watch() -> dict[str, Any]:
        cpu = cpu_window(router.pid)
        span = await outputs_span(since, events, router.pid, cpu, progress)
        usage = cpu_per_event(cpu, len(events) - 1)
        usage["process_total_s_since_launch"] = processes.cpu_seconds(router.pid)
        async with httpx.AsyncClient() as client:
            try:
                metrics = await processes.scrape(client, f"{router.url}/metrics")
            except httpx.TransportError:
                metrics = {}
        changes = processes.by_label(metrics, "qinglian_case_changes_total", "change")
        failures = processes.total(metrics, "qinglian_handler_failures_total")
        counts = {"opened": changes.get("opened", 0), "linked": changes.get("linked", 0)}
        counts["handler_failures"] = failures
        return span | {k: int(v) for k, v in counts.items()} | {"cpu": usage}

    try:
        return deadline.run(watch()) | {"log_level": LOG_LEVEL}
    finally:
        processes.stop_service(router)


def published(deadline: Deadline, feed: list[ComplaintReceived]) -> float:
    """Seconds to publish the complaints as intake does."""

    async def publish_all() -> float:
        sender = producer(RUNTIME.bootstrap, client_id="bench-feed")
        await sender.start()
        try:
            started = time.perf_counter()
            await publish(sender, list(feed))
            return time.perf_counter() - started
        finally:
            await sender.stop()

    return deadline.run(publish_all())


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    """Run the rounds, filling ``result`` as they finish (a timeout keeps the rounds done)."""
    global RUNTIME  # the first free set of ports, chosen before anything starts
    RUNTIME.command("wipe", timeout=deadline.left())  # also stops one a crashed run left
    RUNTIME = RUNTIME.shifted_to_free()
    result["runtime"] = asdict(RUNTIME)
    RUNTIME.start_fresh(deadline, attempts=1)
    staff = max(1, options.events * 3 // 4)
    feed = complaints(options.events, staff, random.Random(SEED))
    events = {str(event.event_id) for event in feed}
    keys = {Opening.of_complaint(event).related_key for event in feed}  # all within 90 days
    opened = len(keys - {None}) + sum(1 for event in feed if event.accused_staff_id is None)
    expected = {"opened": opened, "linked": len(feed) - opened}
    categories = len({event.category for event in feed})
    result["data"] = {"staff_ids": staff, "categories": categories, "expected": expected}
    settings = RouterSettings(
        kafka_bootstrap=RUNTIME.bootstrap, kafka_partitions=3, kafka_replication=1
    )  # these win over the environment
    deadline.run(ensure_topics(settings, (topics.COMPLAINTS, topics.CASES, RAW_CASES)))
    result["data"]["published_in_s"] = round(published(deadline, feed), 3)
    rounds: dict[str, list[dict[str, Any]]] = {"router": [], "raw_aiokafka_loop": []}
    result |= {name: {"rounds": done} for name, done in rounds.items()}
    for round_no in range(1, options.rounds + 1):
        for contender in ("raw", "router") if round_no % 2 else ("router", "raw"):
            print(f"round {round_no}: {contender}", file=sys.stderr)
            # Left in the result if the round does not finish.
            progress = {"contender": contender, "round": round_no, "events_done": 0}
            result["unfinished"] = progress
            if contender == "raw":
                outcome = deadline.run(raw_loop(events, progress, round_no=round_no))
                rounds["raw_aiokafka_loop"].append(outcome | {"round": round_no})
            else:
                outcome = router_round(deadline, events, progress, round_no)
                rounds["router"].append(outcome | {"round": round_no})
            del result["unfinished"]
            print(f"  {outcome['events_per_second']} events/s", file=sys.stderr)
    every = rounds["router"] + rounds["raw_aiokafka_loop"]
    result["data"]["all_rounds_opened_and_linked_as_expected"] = all(
        {"opened": item["opened"], "linked": item["linked"]} == expected for item in every
    )
    for name, done in rounds.items():  # the best round of each
        top = max(done, key=lambda item: float(item["events_per_second"]))
        result[name] = {k: top[k] for k in ("events_per_second", "seconds")} | {"rounds": done}
    rates = [result[name]["events_per_second"] for name in rounds]
    result["ratio"] = round(rates[0] / rates[1], 3)
    result["ratio_per_round"] = [
        round(r["events_per_second"] / w["events_per_second"], 3)
        for r, w in zip(*rounds.values(), strict=True)
    ]
    result["goal"] = {"ratio_at_least": 0.8}


def main() -> int:
    parser = report.parser(__doc__, timeout=2700)
    parser.add_argument("--events", type=int, default=2000, help="complaints to route")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of raw loop and router")
    options = parser.parse_args()
    if options.events < 2 or options.rounds < 1:
        parser.error("need at least 2 events and 1 round")
    notes = " ".join((__doc__ or "").split("\n\n", 2)[2].split())
    head = {"events": options.events}
    return report.run(
        "router_throughput", options, measure, runtime=RUNTIME, head=head, notes=notes
    )


if __name__ == "__main__":
    sys.exit(main())
