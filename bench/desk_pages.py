"""The case desk at a hospital's scale: how long the case list and the case page take with
10,000 open cases (the goal: p95 under 300 ms).

    .venv/bin/python -m bench.desk_pages                  # 10,000 open cases
    .venv/bin/python -m bench.desk_pages --cases 2000     # a quick run

Needs nothing running: the script wipes, starts and finally stops a Kafka and FerretDB of its
own (deploy/local/runtime.sh with QINGLIAN_LOCAL_DIR=.local/bench-desk and ports 49592, 49593,
47528, 48598, all on 127.0.0.1).

Phases, each timed:

1. ``seed``: --cases complaints and the cases the router opens for them (its own
   ``open_case``), a tenth of them started, a decision on every twentieth, written through the
   desk's own read model (``ReadModel``: the code its consumers run) on the real store, in
   batches of 500 as the consumers get them. Categories, channels, departments, accused and
   receipt times (the last 40 days, so some are overdue and some due within 7 days) vary.
2. ``start``: ``python -m services.desk`` on that database until healthy: the case list's rows
   are loaded from the store at start.
3. ``pages``: a conduct-office account (made with ``Accounts``, argon2id at its defaults) signs
   in over HTTP, then each page is asked --runs times, round-robin, one request at a time: the
   list unfiltered (the same list again: the desk keeps a computed list until a case changes
   or the minute turns), a random page of it, a random combination of filters (state,
   category, channel, overdue, order: most likely never asked before, so computed anew over
   every row), a search by a random staff number, and the page of a random case (which also
   logs the view). The export of the whole list (CSV) is timed too, a few times.

Prints JSON: latency per page (p50, p90, p95, p99, max in ms) and whether each p95 is under the
goal. The load averages are in ``machine``: the script, FerretDB and the desk share the cores.
"""

import argparse
import json
import os
import random
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench._runtime import (
    ROOT,
    Deadline,
    Runtime,
    free_port,
    machine,
    percentile,
    start_service,
    stop_service,
)
from schemas.case_action import CaseActionKind, CaseActionReceived, CaseActionSubmission
from schemas.complaint import (
    ComplaintCategory,
    ComplaintChannel,
    ComplaintReceived,
    ComplaintSubmission,
)
from schemas.decision import Decision, DecisionKind, EscalationTarget, SubjectKind
from services.common.departments import DepartmentCatalogue
from services.common.documents import MongoDocuments
from services.common.store import connect, database
from services.desk.access import Role
from services.desk.readmodel import CaseIndex, ReadModel
from services.desk.settings import DeskSettings
from services.desk.signin import Accounts
from services.desk.store import DeskStore
from services.router.domain import Opening, open_case, take_action
from services.router.routing import Routing
from services.router.settings import RouterSettings

RUNTIME = Runtime(
    local_dir=ROOT / ".local" / "bench-desk",
    kafka_port=49592,
    kafka_controller_port=49593,
    ferretdb_port=47528,
    ferretdb_debug_port=48598,
    postgres_port=45532,
)
GOAL_MS = 300.0
BATCH = 500
PASSWORD = "a load test passphrase 2026"  # noqa: S105 (the benchmark's own account)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _complaint(index: int, now: datetime, rng: random.Random) -> ComplaintReceived:
    received = now - timedelta(minutes=rng.randrange(40 * 24 * 60))
    submission = ComplaintSubmission(
        source_system="portal",
        source_ref=f"BENCH-{index}",
        occurred_at=received - timedelta(hours=rng.randrange(1, 72)),
        channel=rng.choice(list(ComplaintChannel)),
        category=rng.choice(list(ComplaintCategory)),
        accused_staff_id=f"S{rng.randrange(3000, 9000)}",
        description=f"第{index}号投诉：" + "医务人员收受患者红包，情节待查。" * rng.randrange(1, 8),
    )
    return ComplaintReceived.accept(submission, received_at=received)


def _started(case: Any, now: datetime, routing: Routing) -> Any:
    action = CaseActionReceived.accept(
        CaseActionSubmission(
            source_system="desk",
            source_ref=f"START-{case.case_id}",
            occurred_at=now,
            case_id=case.case_id,
            action=CaseActionKind.START_INVESTIGATION,
            actor_staff_id="S0102",
        ),
        received_at=now,
    )
    return take_action(case, action, routing, now=now)


def _decision(case: Any, now: datetime) -> Decision:
    return Decision(
        event_id=uuid.uuid4(),
        key=f"R-EVERY-COMPLAINT:{case.case_id}",
        rule_id="R-EVERY-COMPLAINT",
        rules_version="bench",
        kind=DecisionKind.ESCALATION,
        subject_kind=SubjectKind.CASE,
        subject_id=case.case_id,
        case_id=case.case_id,
        escalate_to=EscalationTarget.DEPARTMENT_HEAD,
        as_of=now,
        source_event_ids=case.source_event_ids,
        facts={"deadline": str(case.deadline)},
        explanation_zh="案件逾期未有调查结论，报科室负责人。",
        explanation_en="No finding by the deadline: the department head is told.",
        decided_at=now,
    )


async def seed(settings: DeskSettings, cases: int, now: datetime) -> dict[str, Any]:
    """The cases into the desk's store through its read model; what it took, and the ids."""
    routing = Routing.load(RouterSettings().departments, RouterSettings().routing_table)
    rng = random.Random(7)
    mongo = connect(settings)
    try:
        documents = MongoDocuments(database(mongo, settings))
        store = DeskStore(documents)
        await documents.prepare()
        model = ReadModel(store, CaseIndex(routing.catalogue), clock=lambda: now)
        started = time.perf_counter()
        ids, staff = [], []
        for first in range(0, cases, BATCH):
            complaints = [_complaint(i, now, rng) for i in range(first, min(cases, first + BATCH))]
            opened = [open_case(Opening.of_complaint(c), routing, now=now) for c in complaints]
            opened = [_started(c, now, routing) if i % 10 == 0 else c for i, c in enumerate(opened)]
            await model.complaints(complaints)
            await model.cases(opened)
            await model.decisions([_decision(c, now) for i, c in enumerate(opened) if i % 20 == 0])
            ids += [case.case_id for case in opened]
            staff += [c.accused_staff_id or "" for c in complaints]
        seconds = time.perf_counter() - started
        accounts = Accounts(store, DepartmentCatalogue.from_file(settings.departments))
        one_time = await accounts.create(
            "bench",
            role=Role.CONDUCT_OFFICE,
            display_name="压测",
            department=None,
            staff_id="S0102",
            now=now,
        )
    finally:
        await mongo.close()
    return {
        "seconds": round(seconds, 1),
        "cases_per_second": round(cases / seconds, 1),
        "ids": ids,
        "staff": staff,
        "one_time": one_time,
    }


def _signed_in(url: str, one_time: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=60)
    for password in (one_time, None):
        form = http.get("/login" if password else "/password").text
        token = CSRF.search(form)
        if token is None:
            raise RuntimeError("no CSRF token on the sign-in pages")
        if password:
            data = {"username": "bench", "password": password}
            answer = http.post("/login", data=data | {"csrf_token": token.group(1)})
        else:
            data = {"password": PASSWORD, "repeated": PASSWORD, "csrf_token": token.group(1)}
            answer = http.post("/password", data=data)
        if answer.status_code != 303:
            raise RuntimeError(f"could not sign in: {answer.status_code}")
    return http


def _summary(seconds: list[float]) -> dict[str, Any]:
    p95 = percentile(seconds, 0.95) * 1000
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 1),
        "p90_ms": round(percentile(seconds, 0.90) * 1000, 1),
        "p95_ms": round(p95, 1),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "under_goal": p95 < GOAL_MS,
    }


def pages(http: httpx.Client, seeded: dict[str, Any], runs: int) -> dict[str, Any]:
    rng = random.Random(3)
    states = ["", "open", "assigned", "investigating"]
    categories = ["", *(str(category) for category in ComplaintCategory)]
    channels = ["", *(str(channel) for channel in ComplaintChannel)]

    def fresh_filters() -> str:
        """A combination of filters not asked for before, most likely: computed anew."""
        return (
            f"/cases?state={rng.choice(states)}&category={rng.choice(categories)}"
            f"&channel={rng.choice(channels)}&overdue={rng.choice(['', '1'])}"
            f"&descending={rng.choice(['', '1'])}"
        )

    kinds: dict[str, Any] = {
        "list": lambda: "/cases",
        "list_random_page": lambda: f"/cases?page={rng.randrange(1, 200)}",
        "list_filters_fresh": fresh_filters,
        "list_search_staff": lambda: f"/cases?search={rng.choice(seeded['staff'])}",
        "case_page": lambda: f"/cases/{rng.choice(seeded['ids'])}",
    }
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    for path in kinds.values():  # a warm-up round
        http.get(path()).raise_for_status()
    for _ in range(runs):
        for kind, path in kinds.items():
            started = time.perf_counter()
            answer = http.get(path())
            timings[kind].append(time.perf_counter() - started)
            answer.raise_for_status()
    exports = []
    for _ in range(3):
        started = time.perf_counter()
        http.get("/cases?format=csv").raise_for_status()
        exports.append(time.perf_counter() - started)
    result = {kind: _summary(seconds) for kind, seconds in timings.items()}
    result["export_csv_all"] = _summary(exports)
    return result


def run(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    RUNTIME.start_fresh(deadline)
    now = datetime.now(UTC)
    env = RUNTIME.service_env(db="bench_desk", group_prefix=f"bench-desk-{uuid.uuid4().hex[:6]}-")
    settings = DeskSettings(
        kafka_bootstrap=RUNTIME.bootstrap, mongo_url=RUNTIME.mongo_url, mongo_db="bench_desk"
    )
    seeded = deadline.run(seed(settings, options.cases, now))
    result["seed"] = {k: v for k, v in seeded.items() if k in ("seconds", "cases_per_second")}
    started = time.perf_counter()
    desk = start_service(
        "desk", env=env, port=free_port(range(9500, 9600)), log_dir=RUNTIME.log_dir, patience=600
    )
    try:
        result["start_seconds"] = round(time.perf_counter() - started, 1)
        http = _signed_in(desk.url, seeded["one_time"])
        try:
            shown = re.search(r"（(\d+) 件 cases）", http.get("/cases").text)
            result["list_total_shown"] = int(shown.group(1)) if shown else None
            result["pages"] = pages(http, seeded, options.runs)
        finally:
            http.close()
    finally:
        stop_service(desk)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=10_000, help="open cases in the store")
    parser.add_argument("--runs", type=int, default=60, help="requests per page")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for the whole run")
    options = parser.parse_args()
    load = [round(value, 2) for value in os.getloadavg()]
    result: dict[str, Any] = {
        "benchmark": "desk_pages",
        "cases": options.cases,
        "goal_p95_ms": GOAL_MS,
    }
    deadline = Deadline(options.timeout)
    try:
        run(options, deadline, result)
    finally:
        RUNTIME.stop()
        result["machine"] = machine(load)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
