"""Removal-alert latency: from a rep's visit to a ward, published as intake publishes it, to
the security desk's group-chat robot receiving the removal alert (R-REP-VISIT; the issue's goal:
within 5 s); then notifications per second end to end.

    .venv/bin/python -m bench.notifier_latency                             # 20 visits, 200
    .venv/bin/python -m bench.notifier_latency --visits 5 --decisions 50   # a quick run

Its own Kafka and FerretDB (.local/bench-notifier), escalation and the notifier as
subprocesses, a robot webhook and an SMTP server on loopback (bench/harness/receivers.py). One
ward visit at a time, each of another company, a second apart: latency from the broker's
acknowledgement of the visit to the robot's receipt of the alert naming its company. Then
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import report
from bench.harness.kafka import producer
from bench.harness.load import percentile
from bench.harness.processes import services
from bench.harness.receivers import Mailbox, RobotReceiver, robot_server, smtp_server
from bench.harness.runtime import ROOT, Deadline, Runtime, free_port
from schemas import topics
from schemas.catalogue import BY_TYPE
from tests.factories import judicial_decision

RUNTIME = Runtime.of("bench-notifier", 31692, 31628, 31698, 31632)
SERVICE_PORTS = range(8800, 8900)
GOAL_SECONDS = 5.0


async def throughput(decisions: int, sink: Mailbox, wait: float) -> dict[str, Any]:
    """Judicial transfers published at once (two addressees each, by email): notifications per
    second from the first publish to the last message the SMTP sink took."""
    before = len(sink.message_ids())
    expected = before + 2 * decisions
    sender = producer(RUNTIME.bootstrap)
    await sender.start()
    started = time.time()
    try:
        sent = [
            await sender.send(
                topics.DECISIONS, d.model_dump_json().encode(), key=d.subject_id.encode()
            )
            for d in (judicial_decision(datetime.now(UTC)) for _ in range(decisions))
        ]
        await asyncio.gather(*sent)
    finally:
        await sender.stop()
    for _ in range(int(wait * 10)):
        if len(sink.message_ids()) >= expected:
            break
        await asyncio.sleep(0.1)
    took = sink.last_at - started
    received = len(sink.message_ids()) - before
    return {
        "decisions": decisions,
        "notifications_expected": 2 * decisions,
        "notifications_received": received,
        "seconds": round(took, 2),
        "notifications_per_second": round(received / took, 1) if took > 0 else None,
    }


def visit(company: str) -> Any:
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


async def publish_visits(
    companies: list[str], robot: RobotReceiver, wait: float
) -> dict[str, float]:
    sender = producer(RUNTIME.bootstrap)
    await sender.start()
    sent: dict[str, float] = {}
    kind = BY_TYPE["visitor_log"]
    try:
        for company in companies:
            event = visit(company)
            await sender.send_and_wait(
                kind.topic, event.model_dump_json().encode(), key=kind.key(event)
            )
            sent[company] = time.time()
            await asyncio.sleep(1.0)
        for _ in range(int(wait * 10)):  # the last alerts, a tenth of a second at a time
            if all(robot.first_naming(company) for company in companies):
                break
            await asyncio.sleep(0.1)
    finally:
        await sender.stop()
    return sent


def summary(sent: dict[str, float], robot: RobotReceiver) -> dict[str, Any]:
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
            "latency_p95_s": round(percentile(latencies, 0.95), 3),
            "latency_max_s": round(latencies[-1], 3),
        }
    result["all_within_goal"] = len(latencies) == len(sent) and all(
        latency <= GOAL_SECONDS for latency in latencies
    )
    return result


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    RUNTIME.start_fresh(deadline, attempts=1)
    companies = [f"YX-BENCH-{uuid.uuid4().hex[:8].upper()}" for _ in range(options.visits)]
    robot, sink = RobotReceiver(), Mailbox()
    with (
        tempfile.TemporaryDirectory() as folder,
        robot_server(robot) as robot_url,
        smtp_server(sink, free_port(range(8900, 8999))) as smtp,
    ):
        addressees = Path(folder) / "addressees.toml"
        addressees.write_text(
            (ROOT / "services" / "common" / "addressees.toml")
            .read_text(encoding="utf-8")
            .replace("http://127.0.0.1:9/security-desk", robot_url),
            encoding="utf-8",
        )
        env = RUNTIME.service_env(db="bench_notifier", group_prefix="bench-notifier-") | {
            "QINGLIAN_ADDRESSEES": str(addressees),
            "QINGLIAN_SMTP_PORT": str(smtp.port),
        }
        with services(
            ("escalation", "notifier"), env=env, ports=SERVICE_PORTS, log_dir=RUNTIME.log_dir
        ):
            time.sleep(3)  # the consumers join their groups
            sent = deadline.run(publish_visits(companies, robot, wait=30.0))
            result["removal_alert"] = summary(sent, robot)
            result["throughput"] = (
                deadline.run(throughput(options.decisions, sink, wait=120.0))
                if options.decisions
                else None
            )


def main() -> int:
    parser = report.parser(__doc__, timeout=600)
    parser.add_argument("--visits", type=int, default=20)
    parser.add_argument("--decisions", type=int, default=200)
    return report.run("notifier_latency", parser.parse_args(), measure, runtime=RUNTIME)


if __name__ == "__main__":
    sys.exit(main())
