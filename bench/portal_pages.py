"""The reporters' follow-up page under load: how long ``POST /follow-up`` (a code typed in,
the page with the status, the deadline and the messages) takes with 50 reporters asking at once
(the goal: p95 under 100 ms).

    .venv/bin/python -m bench.portal_pages                    # 5,000 complaints, 50 reporters
    .venv/bin/python -m bench.portal_pages --complaints 500 --rounds 5

Its own Kafka and FerretDB (.local/bench-portal, ports below Linux's ephemeral range).
``seed``: --complaints codes with their cases (a third still received) and two replies on each
case, through the portal's own ``FollowUps``. ``follow_up``: --reporters reporters at once, each
a browser of its own (the code form, then its code), --rounds times with a random known code,
pausing 0 to 2×--think-seconds before each page; ``follow_up_no_pause``: the same without
pauses (the most pages a second the machine serves). The complaint form (``GET /``) beside.
CPU per page of the portal, FerretDB and the load generator.
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

from bench.harness import report
from bench.harness.load import against_goal, latency_summary, timed
from bench.harness.processes import CpuWindow, start_service, stop_service
from bench.harness.runtime import Deadline, Runtime, free_port
from schemas.case import CaseState, derive_case_id
from schemas.follow_up import FollowUpCodeIssued, ReporterReply
from services.common.credentials import digest
from services.common.documents import MongoDocuments
from services.intake.crypto import new_follow_up_code
from services.portal.follow_ups import FollowUps
from services.portal.store import PortalStore
from tests.desk import hidden
from tests.factories import complaint_event, routed_case

RUNTIME = Runtime.of("bench-portal", 31692, 31628, 31698, 31632)
GOAL_MS = 100.0
DB = "bench_portal"


async def _never(*_: object) -> None:
    raise RuntimeError("the benchmark publishes nothing")


async def _no() -> bool:
    return False


async def seed(complaints: int, now: datetime) -> dict[str, Any]:
    """Codes, cases and replies as the portal's consumers store them; the codes."""
    started = time.perf_counter()
    async with RUNTIME.database(DB) as db:
        documents = MongoDocuments(db)
        await documents.prepare()
        follow_ups = FollowUps(PortalStore(documents), publish=_never, kafka_reachable=_no)
        codes = [new_follow_up_code() for _ in range(complaints)]
        for start in range(0, complaints, 500):
            await _seed_batch(follow_ups, codes[start : start + 500], now)
    seconds = time.perf_counter() - started
    return {"codes": codes, "seconds": round(seconds, 1)}


async def _seed_batch(follow_ups: FollowUps, codes: list[str], now: datetime) -> None:
    issued, cases, replies = [], [], []
    for index, code in enumerate(codes):
        complaint = complaint_event(source_ref=f"BENCH-{uuid.uuid4().hex}", received_at=now)
        issued.append(
            FollowUpCodeIssued(
                complaint_event_id=complaint.event_id, code_digest=digest(code), received_at=now
            )
        )
        if index % 3 == 0:
            continue  # still received: no case yet
        state = CaseState.ASSIGNED if index % 3 == 1 else CaseState.INVESTIGATING
        case = routed_case(complaint, now=now).model_copy(update={"state": state})
        cases.append(case)
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


async def _reporter(
    url: str, codes: list[str], rounds: int, think: float, rng: random.Random
) -> list[float]:
    timings: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as browser:
        token = hidden((await browser.get("/follow-up")).text)
        for _ in range(rounds):
            await asyncio.sleep(rng.uniform(0, 2 * think))  # reading the page, typing the code
            form = {"csrf_token": token, "code": rng.choice(codes)}
            page = await timed(browser.post("/follow-up", data=form), timings)
            if page.status_code != 200 or 'id="status"' not in page.text:
                raise RuntimeError(f"the follow-up page answered {page.status_code}")
    return timings


async def follow_up(
    url: str, codes: list[str], reporters: int, rounds: int, think: float
) -> dict[str, Any]:
    rng = random.Random(7)
    started = time.perf_counter()
    timings = await asyncio.gather(
        *(
            _reporter(url, codes, rounds, think, random.Random(rng.random()))
            for _ in range(reporters)
        )
    )
    elapsed = time.perf_counter() - started
    seconds = [one for reporter in timings for one in reporter]
    return against_goal(seconds, GOAL_MS, "p95_under_goal") | {
        "pages_per_second": round(len(seconds) / elapsed, 1)
    }


def complaint_form(url: str, runs: int) -> dict[str, Any]:
    seconds = []
    with httpx.Client(base_url=url, timeout=30) as browser:
        for _ in range(runs):
            started = time.perf_counter()
            browser.get("/").raise_for_status()
            seconds.append(time.perf_counter() - started)
    return latency_summary(seconds)


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    RUNTIME.start_fresh(deadline)
    seeded = deadline.run(seed(options.complaints, datetime.now(UTC)))
    result["seed_seconds"] = seeded["seconds"]
    env = RUNTIME.service_env(db=DB, group_prefix=f"bench-portal-{uuid.uuid4().hex[:6]}-")
    env["QINGLIAN_PORTAL_KEY"] = uuid.uuid4().hex
    env["QINGLIAN_LOG_LEVEL"] = "WARNING"  # as in production, where the access log is shipped
    portal = start_service(
        "portal", env=env, port=free_port(range(9600, 9700)), log_dir=RUNTIME.log_dir
    )
    pids = {"portal": portal.pid, "ferretdb": RUNTIME.pid("ferretdb"), "bench": os.getpid()}
    cpu = CpuWindow(pids)
    try:
        result["complaint_form"] = complaint_form(portal.url, 50)
        pages = options.reporters * options.rounds
        for name, think in (("follow_up", options.think_seconds), ("follow_up_no_pause", 0.0)):
            cpu.begin()
            result[name] = deadline.run(
                follow_up(portal.url, seeded["codes"], options.reporters, options.rounds, think)
            )
            result[name]["cpu"] = cpu.end(pages)
    finally:
        stop_service(portal)


def main() -> int:
    parser = report.parser(__doc__, timeout=900)
    parser.add_argument("--complaints", type=int, default=5000, help="codes in the store")
    parser.add_argument("--reporters", type=int, default=50, help="reporters asking at once")
    parser.add_argument("--rounds", type=int, default=20, help="pages each reporter asks for")
    parser.add_argument(
        "--think-seconds", type=float, default=2.0, help="mean pause of a reporter between pages"
    )
    options = parser.parse_args()
    head = {
        "complaints": options.complaints,
        "reporters": options.reporters,
        "goal_p95_ms": GOAL_MS,
    }
    return report.run("portal_pages", options, measure, runtime=RUNTIME, head=head)


if __name__ == "__main__":
    sys.exit(main())
