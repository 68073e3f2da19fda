"""Removal-alert latency: from a rep's visit to a ward, published as intake publishes it, to
the security desk's group-chat robot receiving the removal alert (R-REP-VISIT; the issue's goal:
within 5 s); then notifications per second end to end.

    .venv/bin/python -m bench.notifier_latency                             # 20 visits, 200
    .venv/bin/python -m bench.notifier_latency --visits 5 --decisions 50   # a quick run

Needs nothing running: the script wipes, starts and finally stops a Kafka and FerretDB of its
own (deploy/local/runtime.sh with QINGLIAN_LOCAL_DIR=.local/bench-notifier and ports 31692,
31693, 31628, 31698, PostgreSQL on 31632, all on 127.0.0.1: below Linux's ephemeral range, so
no outgoing connection holds one), runs escalation and the notifier
as subprocesses on it (HTTP on 127.0.0.1:8800-8899), a robot webhook and an SMTP sink
(aiosmtpd's) on loopback, and publishes one ward visit at a time, each of another company, a
second apart. Latency is measured from the broker's acknowledgement of the visit to the
robot's receipt of the alert naming its company (escalation's decision, the notifier's
outbox round of QINGLIAN_SEND_EVERY_SECONDS = 1 s, the webhook call).

Then --decisions judicial transfers are published on the decisions topic at once (as
escalation publishes them; two addressees each, by email to the SMTP sink): notifications per
second from the first publish to the last distinct Message-ID the sink took.

Prints JSON: ``removal_alert`` (visits, alerts received, latency p50/p95/max in seconds, the
goal and whether every alert met it) and ``throughput``.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller

from bench._runtime import ROOT, Deadline, Runtime, free_port, services
from schemas import topics
from schemas.catalogue import BY_TYPE
from schemas.decision import Decision, DecisionKind, EscalationTarget, SubjectKind

RUNTIME = Runtime(
    local_dir=ROOT / ".local" / "bench-notifier",
    kafka_port=31692,
    kafka_controller_port=31693,
    ferretdb_port=31628,
    ferretdb_debug_port=31698,
    postgres_port=31632,
)
SERVICE_PORTS = range(8800, 8900)
GOAL_SECONDS = 5.0


class Arrivals:
    """When the robot received an alert naming each company."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()

    def handler(self, companies: set[str]) -> type[BaseHTTPRequestHandler]:
        arrivals = self

        class Webhook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                now = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body.get("text", {}).get("content", "")
                with arrivals.lock:
                    for company in companies:
                        if company in text:
                            arrivals.at.setdefault(company, now)
                answer = b'{"errcode":0,"errmsg":"ok"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        return Webhook


class Sink:
    """An SMTP server that counts the distinct Message-IDs it took."""

    def __init__(self) -> None:
        self.message_ids: set[str] = set()
        self.last_at = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        for line in (envelope.original_content or b"").split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.message_ids.add(line.split(b":", 1)[1].strip().decode())
                self.last_at = time.monotonic()
                break
        return "250 OK"


def judicial_decision() -> Decision:
    case_id = f"CASE-{uuid.uuid4().hex[:20].upper()}"
    now = datetime.now(UTC)
    return Decision(
        event_id=uuid.uuid4(),
        key=f"case:{case_id}:judicial",
        rule_id="R-KICKBACK",
        rules_version="bench",
        kind=DecisionKind.ESCALATION,
        subject_kind=SubjectKind.STAFF,
        subject_id=f"S{uuid.uuid4().hex[:6].upper()}",
        case_id=case_id,
        escalate_to=EscalationTarget.JUDICIAL_ORGANS,
        as_of=now,
        source_event_ids=(uuid.uuid4(),),
        facts={"amount_cny": "50000.00"},
        explanation_zh="移送司法机关。",
        explanation_en="Transferred to the judicial organs.",
        decided_at=now,
    )


async def throughput(decisions: int, sink: Sink, wait: float) -> dict[str, Any]:
    """Judicial transfers published at once (two addressees each, by email): notifications per
    second from the first publish to the last message the SMTP sink took."""
    before = len(sink.message_ids)
    expected = before + 2 * decisions
    producer = AIOKafkaProducer(bootstrap_servers=RUNTIME.bootstrap, acks="all")
    await producer.start()
    started = time.monotonic()
    try:
        sent = [
            await producer.send(
                topics.DECISIONS, d.model_dump_json().encode(), key=d.subject_id.encode()
            )
            for d in (judicial_decision() for _ in range(decisions))
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    for _ in range(int(wait * 10)):
        if len(sink.message_ids) >= expected:
            break
        await asyncio.sleep(0.1)
    took = sink.last_at - started
    received = len(sink.message_ids) - before
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


async def publish_visits(companies: list[str], arrivals: Arrivals, wait: float) -> dict[str, float]:
    producer = AIOKafkaProducer(bootstrap_servers=RUNTIME.bootstrap, acks="all")
    await producer.start()
    sent: dict[str, float] = {}
    kind = BY_TYPE["visitor_log"]
    try:
        for company in companies:
            event = visit(company)
            await producer.send_and_wait(
                kind.topic, event.model_dump_json().encode(), key=kind.key(event)
            )
            sent[company] = time.monotonic()
            await asyncio.sleep(1.0)
        for _ in range(int(wait * 10)):  # the last alerts, a tenth of a second at a time
            if len(arrivals.at) == len(companies):
                break
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()
    return sent


def summary(sent: dict[str, float], arrivals: Arrivals) -> dict[str, Any]:
    latencies = sorted(arrivals.at[c] - sent[c] for c in sent if c in arrivals.at)
    result: dict[str, Any] = {
        "visits": len(sent),
        "alerts_received": len(latencies),
        "goal_seconds": GOAL_SECONDS,
    }
    if latencies:
        result |= {
            "latency_p50_s": round(statistics.median(latencies), 3),
            "latency_p95_s": round(latencies[max(0, round(0.95 * len(latencies)) - 1)], 3),
            "latency_max_s": round(latencies[-1], 3),
        }
    result["all_within_goal"] = len(latencies) == len(sent) and all(
        latency <= GOAL_SECONDS for latency in latencies
    )
    return result


def measure(visits: int, decisions: int, deadline: Deadline, folder: Path) -> dict[str, Any]:
    companies = [f"YX-BENCH-{uuid.uuid4().hex[:8].upper()}" for _ in range(visits)]
    arrivals = Arrivals()
    robot = ThreadingHTTPServer(("127.0.0.1", 0), arrivals.handler(set(companies)))
    threading.Thread(target=robot.serve_forever, daemon=True).start()
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port(range(8900, 8999)))
    smtp.start()
    addressees = folder / "addressees.toml"
    addressees.write_text(
        (ROOT / "services" / "common" / "addressees.toml")
        .read_text(encoding="utf-8")
        .replace("http://127.0.0.1:9/security-desk", f"http://127.0.0.1:{robot.server_port}/"),
        encoding="utf-8",
    )
    env = RUNTIME.service_env(db="bench_notifier", group_prefix="bench-notifier-") | {
        "QINGLIAN_ADDRESSEES": str(addressees),
        "QINGLIAN_SMTP_PORT": str(smtp.port),
    }
    try:
        with services(
            ("escalation", "notifier"), env=env, ports=SERVICE_PORTS, log_dir=RUNTIME.log_dir
        ):
            time.sleep(3)  # the consumers join their groups
            sent = deadline.run(publish_visits(companies, arrivals, wait=30.0))
            flow = deadline.run(throughput(decisions, sink, wait=120.0)) if decisions else None
    finally:
        smtp.stop()
        robot.shutdown()
    return {"removal_alert": summary(sent, arrivals), "throughput": flow}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=20)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=600.0)
    options = parser.parse_args()
    deadline = Deadline(options.timeout)
    try:
        RUNTIME.start_fresh(deadline, attempts=1)
        with tempfile.TemporaryDirectory() as folder:
            print(
                json.dumps(
                    measure(options.visits, options.decisions, deadline, Path(folder)), indent=2
                )
            )
    finally:
        RUNTIME.stop()


if __name__ == "__main__":
    main()
