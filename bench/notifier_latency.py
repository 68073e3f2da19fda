"""Removal-alert latency: from a rep's ward visit, published as intake publishes it, to the
security desk's robot receiving the alert (R-REP-VISIT; goal: within 5 s); then notifications
per second end to end.

    .venv/bin/python -m bench.notifier_latency --visits 5 --decisions 50   # a quick run

Its own Kafka and FerretDB (.local/bench-notifier), escalation and the notifier, a robot webhook
and an SMTP server on loopback. One visit a second, each of another company: latency from the
broker's acknowledgement to the robot's receipt of the alert naming the company. Then
--decisions judicial transfers at once (two addressees each, by email): notifications per
second from the first publish to the last distinct Message-ID the SMTP server took.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import kafka, load, report, runtime
from bench.harness.processes import services
from bench.harness.receivers import Mailbox, RobotReceiver, robot_server, smtp_server
from bench.harness.runtime import Deadline
from schemas import topics
from schemas.base import Event
from schemas.catalogue import BY_TYPE
from tests.factories import judicial_decision

RUNTIME = runtime.Runtime.numbered("bench-notifier", 7)
GOAL_SECONDS = 5.0


async def until(done: Callable[[], bool], wait: float) -> None:
    """Poll ``done()`` a tenth of a second at a time, ``wait`` seconds at most."""
    for _ in range(int(wait * 10)):
        if done():
            return
        await asyncio.sleep(0.1)


async def throughput(decisions: int, sink: Mailbox, wait: float) -> dict[str, Any]:
    before = len(sink.message_ids())
    sender = kafka.producer(RUNTIME.bootstrap)
    await sender.start()
    started = time.time()
    try:
        sent = (judicial_decision(datetime.now(UTC)) for _ in range(decisions))
        await kafka.send_all(
            sender,
            ((topics.DECISIONS, d.subject_id.encode(), d.model_dump_json().encode()) for d in sent),
        )
    finally:
        await sender.stop()
    await until(lambda: len(sink.message_ids()) >= before + 2 * decisions, wait)
    took = sink.last_at - started
    received = len(sink.message_ids()) - before
    return {
        "decisions": decisions,
        "notifications_expected": 2 * decisions,
        "notifications_received": received,
        "seconds": round(took, 2),
        "notifications_per_second": round(received / took, 1) if took > 0 else None,
    }


def visit(company: str) -> Event:
    now = datetime.now(UTC).isoformat()
    kind = BY_TYPE["visitor_log"]
    submission = kind.submission.model_validate(
        {
            "source_system": "bench",
            "source_ref": uuid.uuid4().hex,
            "occurred_at": now,
            "rep_id": f"REP-{uuid.uuid4().hex[:6]}",
            "rep_name": "王某",
            "company_code": company,
            "company_name": "某医药公司",
            "department": "general_psychiatry",
            "place_code": "W3-12",
            "place_kind": "ward",
            "started_at": now,
        }
    )
    return kind.event.accept(submission, received_at=datetime.now(UTC))


async def alerts(companies: list[str], robot: RobotReceiver, wait: float) -> dict[str, Any]:
    """One visit a second; the latency of the alerts."""
    sender = kafka.producer(RUNTIME.bootstrap)
    await sender.start()
    sent: dict[str, float] = {}
    try:
        for company in companies:
            await kafka.publish(sender, [visit(company)])
            sent[company] = time.time()
            await asyncio.sleep(1.0)
        await until(lambda: all(robot.first_naming(company) for company in companies), wait)
    finally:
        await sender.stop()
    arrived = {company: robot.first_naming(company) for company in sent}
    latencies = sorted(at - sent[c] for c, at in arrived.items() if at is not None)
    result: dict[str, Any] = {
        "visits": len(sent),
        "alerts_received": len(latencies),
        "goal_seconds": GOAL_SECONDS,
    }
    if latencies:
        result |= {
            "latency_p50_s": round(statistics.median(latencies), 3),
            "latency_p95_s": round(load.percentile(latencies, 0.95), 3),
            "latency_max_s": round(latencies[-1], 3),
        }
    within = all(latency <= GOAL_SECONDS for latency in latencies)
    return result | {"all_within_goal": len(latencies) == len(sent) and within}


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    RUNTIME.start_fresh(deadline, attempts=1)
    companies = [f"YX-BENCH-{uuid.uuid4().hex[:8].upper()}" for _ in range(options.visits)]
    robot, sink = RobotReceiver(), Mailbox()
    with (
        tempfile.TemporaryDirectory() as folder,
        robot_server(robot) as robot_url,
        smtp_server(sink, runtime.free_port(range(8900, 8999))) as smtp,
    ):
        shipped = runtime.ROOT / "services" / "common" / "addressees.toml"
        text = shipped.read_text(encoding="utf-8").replace(
            "http://127.0.0.1:9/security-desk", robot_url
        )
        addressees = Path(folder) / "addressees.toml"
        addressees.write_text(text, encoding="utf-8")
        env = RUNTIME.service_env(db="bench_notifier", group_prefix="bench-notifier-") | {
            "QINGLIAN_ADDRESSEES": str(addressees),
            "QINGLIAN_SMTP_PORT": str(smtp.port),
        }
        names = ("escalation", "notifier")
        with services(names, env=env, ports=range(8800, 8900), log_dir=RUNTIME.log_dir):
            time.sleep(3)  # the consumers join their groups
            result["removal_alert"] = deadline.run(alerts(companies, robot, wait=30.0))
            result["throughput"] = (
                deadline.run(throughput(options.decisions, sink, wait=120.0))
                if options.decisions
                else None
            )


if __name__ == "__main__":
    flags = {"visits": 20, "decisions": 200}
    sys.exit(report.main("notifier_latency", __doc__, measure, flags, timeout=600, runtime=RUNTIME))
