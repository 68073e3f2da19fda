"""The reporters' follow-up page under load: ``POST /follow-up`` (a code typed in; the page with
the status, the deadline and the messages) with 50 reporters asking at once (goal: p95 < 100 ms).

    .venv/bin/python -m bench.portal_pages --complaints 500 --rounds 5    # a quick run

Its own Kafka and FerretDB (.local/bench-portal). Seeded through the portal's ``FollowUps``:
--complaints codes, two cases in three (the rest still received) with two replies each. Then
--reporters browsers, --rounds pages each with a random known code, pausing 0 to
2×--think-seconds before each (``follow_up``), and without pauses (``follow_up_no_pause``);
the complaint form beside. CPU per page of the portal, FerretDB and the load generator.
"""

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.harness import load, processes, report, runtime
from bench.harness.runtime import Deadline
from schemas.case import CaseState, derive_case_id
from schemas.follow_up import FollowUpCodeIssued, ReporterReply
from services.common.credentials import digest
from services.common.documents import MongoDocuments
from services.intake.crypto import new_follow_up_code
from services.portal.follow_ups import FollowUps
from services.portal.store import PortalStore
from tests.desk import hidden
from tests.factories import complaint_event, routed_case

RUNTIME = runtime.Runtime.numbered("bench-portal", 8)
GOAL_MS = 100.0
DB = "bench_portal"


async def _never(*_: object) -> None:
    raise RuntimeError("the benchmark publishes nothing")


async def _no() -> bool:
    return False


async def seed(complaints: int, now: datetime) -> list[str]:
    """Codes, cases and replies as the portal's consumers store them; the codes."""
    codes = [new_follow_up_code() for _ in range(complaints)]
    async with RUNTIME.database(DB) as db:
        documents = MongoDocuments(db)
        await documents.prepare()
        follow_ups = FollowUps(PortalStore(documents), publish=_never, kafka_reachable=_no)
        for start in range(0, complaints, 500):
            issued, cases, replies = [], [], []
            for index, code in enumerate(codes[start : start + 500]):
                complaint = complaint_event(source_ref=f"BENCH-{uuid.uuid4().hex}", received_at=now)
                issued.append(
                    FollowUpCodeIssued(
                        complaint_event_id=complaint.event_id,
                        code_digest=digest(code),
                        received_at=now,
                    )
                )
                if index % 3 == 0:
                    continue  # still received: no case yet
                state = CaseState.ASSIGNED if index % 3 == 1 else CaseState.INVESTIGATING
                cases.append(routed_case(complaint, now=now).model_copy(update={"state": state}))
                replies += [
                    ReporterReply(
                        event_id=uuid.uuid4(),
                        case_id=derive_case_id(complaint.event_id),
                        text=f"第 {n} 次答复：已转科室核查，请耐心等待。",
                        sent_by="desk",
                        sent_at=now + timedelta(hours=n),
                    )
                    for n in (1, 2)
                ]
            await follow_ups.learn_codes(issued)
            await follow_ups.follow_cases(cases)
            await follow_ups.keep_replies(replies)
    return codes


async def reporter(
    url: str, codes: list[str], rounds: int, think: float, rng: random.Random
) -> list[float]:
    timings: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as browser:
        token = hidden((await browser.get("/follow-up")).text)
        for _ in range(rounds):
            await asyncio.sleep(rng.uniform(0, 2 * think))  # reading the page, typing the code
            form = {"csrf_token": token, "code": rng.choice(codes)}
            page = await load.timed(browser.post("/follow-up", data=form), timings)
            if page.status_code != 200 or 'id="status"' not in page.text:
                raise RuntimeError(f"the follow-up page answered {page.status_code}")
    return timings


async def follow_up(url: str, codes: list[str], options: argparse.Namespace, think: float) -> Any:
    rng = random.Random(7)
    started = time.perf_counter()
    timings = await asyncio.gather(
        *(
            reporter(url, codes, options.rounds, think, random.Random(rng.random()))
            for _ in range(options.reporters)
        )
    )
    elapsed = time.perf_counter() - started
    seconds = [one for reporter in timings for one in reporter]
    return load.against_goal(seconds, GOAL_MS, "p95_under_goal") | {
        "pages_per_second": round(len(seconds) / elapsed, 1)
    }


def complaint_form(url: str, runs: int) -> dict[str, Any]:
    seconds = []
    with httpx.Client(base_url=url, timeout=30) as browser:
        for _ in range(runs):
            started = time.perf_counter()
            browser.get("/").raise_for_status()
            seconds.append(time.perf_counter() - started)
    return load.latency_summary(seconds)


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    result |= {
        "complaints": options.complaints,
        "reporters": options.reporters,
        "goal_p95_ms": GOAL_MS,
    }
    RUNTIME.start_fresh(deadline)
    started = time.perf_counter()
    codes = deadline.run(seed(options.complaints, datetime.now(UTC)))
    result["seed_seconds"] = round(time.perf_counter() - started, 1)
    env = RUNTIME.service_env(db=DB)
    env["QINGLIAN_PORTAL_KEY"] = uuid.uuid4().hex
    env["QINGLIAN_LOG_LEVEL"] = "WARNING"  # as in production, where the access log is shipped
    with processes.running(
        "portal", env=env, ports=range(9600, 9700), log_dir=RUNTIME.log_dir
    ) as portal:
        pids = {"portal": portal.pid, "ferretdb": RUNTIME.pid("ferretdb"), "bench": os.getpid()}
        cpu = processes.CpuWindow(pids)
        result["complaint_form"] = complaint_form(portal.url, 50)
        for name, think in (("follow_up", options.think_seconds), ("follow_up_no_pause", 0.0)):
            cpu.begin()
            result[name] = deadline.run(follow_up(portal.url, codes, options, think))
            result[name]["cpu"] = cpu.end(options.reporters * options.rounds)


if __name__ == "__main__":
    flags = {"complaints": 5000, "reporters": 50, "rounds": 20, "think_seconds": 2.0}
    sys.exit(report.main("portal_pages", __doc__, measure, flags, timeout=900, runtime=RUNTIME))
