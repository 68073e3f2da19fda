"""The case desk at a hospital's scale: the case list and the case page with 10,000 open cases
(goal: p95 under 300 ms).

    .venv/bin/python -m bench.desk_pages --cases 2000 --runs 10     # a quick run

Its own Kafka and FerretDB (.local/bench-desk). Seeded through the desk's read model, 500 at a
time: complaints received over 40 days and their cases (a tenth started, a decision on every
twentieth). Then the desk (it loads the list at start); a conduct-office account signs in and
asks each page --runs times, round-robin: the list, a random page, fresh filter combinations,
a staff search, a case page; and the CSV export of the whole list.
"""

import argparse
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.harness import load, processes, report, runtime
from bench.harness.runtime import Deadline
from schemas import case_action, complaint
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintCategory, ComplaintChannel, ComplaintReceived
from schemas.decision import Decision, EscalationTarget, SubjectKind
from services.common.departments import DepartmentCatalogue
from services.common.documents import MongoDocuments
from services.common.roles import Role
from services.desk.readmodel import CaseIndex, ReadModel
from services.desk.settings import DeskSettings
from services.desk.signin import Accounts
from services.desk.store import DeskStore
from services.router.domain import Opening, open_case, take_action
from tests.desk import sign_in_anew
from tests.factories import ROUTING, escalation_decision

RUNTIME = runtime.Runtime.numbered("bench-desk", 6)
GOAL_MS = 300.0
PASSWORD = "a load test passphrase 2026"  # noqa: S105 (the benchmark's own account)


def received(index: int, now: datetime, rng: random.Random) -> ComplaintReceived:
    at = now - timedelta(minutes=rng.randrange(40 * 24 * 60))
    submission = complaint.ComplaintSubmission(
        source_system="portal",
        source_ref=f"BENCH-{index}",
        occurred_at=at - timedelta(hours=rng.randrange(1, 72)),
        channel=rng.choice(list(ComplaintChannel)),
        category=rng.choice(list(ComplaintCategory)),
        accused_staff_id=f"S{rng.randrange(3000, 9000)}",
        description=f"第{index}号投诉：" + "医务人员收受患者红包，情节待查。" * rng.randrange(1, 8),
    )
    return ComplaintReceived.accept(submission, received_at=at)


def started(case: CaseUpdated, now: datetime) -> CaseUpdated:
    action = case_action.CaseActionSubmission(
        source_system="desk",
        source_ref=f"START-{case.case_id}",
        occurred_at=now,
        case_id=case.case_id,
        action=case_action.CaseActionKind.START_INVESTIGATION,
        actor_staff_id="S0102",
    )
    accepted = case_action.CaseActionReceived.accept(action, received_at=now)
    return take_action(case, accepted, ROUTING, now=now)


def decision(case: CaseUpdated, now: datetime) -> Decision:
    return escalation_decision(
        rule_id="R-EVERY-COMPLAINT",
        key=f"R-EVERY-COMPLAINT:{case.case_id}",
        subject=(SubjectKind.CASE, case.case_id),
        case_id=case.case_id,
        escalate_to=EscalationTarget.DEPARTMENT_HEAD,
        at=now,
        sources=case.source_event_ids,
        facts={"deadline": str(case.deadline)},
        explanation=(
            "案件逾期未有调查结论，报科室负责人。",
            "No finding by the deadline: the department head is told.",
        ),
    )


async def seed(cases: int, now: datetime, result: dict[str, Any]) -> dict[str, Any]:
    """The cases into the desk's store through its read model; the ids, staff, a password."""
    rng = random.Random(7)
    async with RUNTIME.database("bench_desk") as db:
        documents = MongoDocuments(db)
        store = DeskStore(documents)
        await documents.prepare()
        model = ReadModel(store, CaseIndex(ROUTING.catalogue), clock=lambda: now)
        began = time.perf_counter()
        ids, staff = [], []
        for first in range(0, cases, 500):
            complaints = [received(i, now, rng) for i in range(first, min(cases, first + 500))]
            opened = [open_case(Opening.of_complaint(c), ROUTING, now=now) for c in complaints]
            opened = [started(c, now) if i % 10 == 0 else c for i, c in enumerate(opened)]
            await model.complaints(complaints)
            await model.cases(opened)
            await model.decisions([decision(c, now) for i, c in enumerate(opened) if i % 20 == 0])
            ids += [case.case_id for case in opened]
            staff += [c.accused_staff_id or "" for c in complaints]
        seconds = time.perf_counter() - began
        result["seed"] = {
            "seconds": round(seconds, 1),
            "cases_per_second": round(cases / seconds, 1),
        }
        accounts = Accounts(store, DepartmentCatalogue.from_file(DeskSettings().departments))
        one_time = await accounts.create(
            "bench",
            role=Role.CONDUCT_OFFICE,
            display_name="压测",
            department=None,
            staff_id="S0102",
            now=now,
        )
    return {"ids": ids, "staff": staff, "one_time": one_time}


async def pages(url: str, seeded: dict[str, Any], runs: int) -> dict[str, Any]:
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
    timings: dict[str, list[float]] = {kind: [] for kind in [*kinds, "export_csv_all"]}
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        listed = await sign_in_anew(http, "bench", seeded["one_time"], PASSWORD)
        shown = re.search(r"（(\d+) 件 cases）", listed.text)
        for path in kinds.values():  # a warm-up round
            (await http.get(path())).raise_for_status()
        for _ in range(runs):
            for kind, path in kinds.items():
                (await load.timed(http.get(path()), timings[kind])).raise_for_status()
        for _ in range(3):
            csv = http.get("/cases?format=csv")
            (await load.timed(csv, timings["export_csv_all"])).raise_for_status()
    return {
        "list_total_shown": int(shown.group(1)) if shown else None,
        "pages": {
            kind: load.against_goal(took, GOAL_MS, "under_goal") for kind, took in timings.items()
        },
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    result |= {"cases": options.cases, "goal_p95_ms": GOAL_MS}
    RUNTIME.start_fresh(deadline)
    now = datetime.now(UTC)
    env = RUNTIME.service_env(db="bench_desk")
    seeded = deadline.run(seed(options.cases, now, result))
    began = time.perf_counter()
    with processes.running(
        "desk", env=env, ports=range(9500, 9600), log_dir=RUNTIME.log_dir, patience=600
    ) as desk:
        result["start_seconds"] = round(time.perf_counter() - began, 1)
        result |= deadline.run(pages(desk.url, seeded, options.runs))


if __name__ == "__main__":
    flags = {"cases": 10_000, "runs": 60}
    sys.exit(report.main("desk_pages", __doc__, measure, flags, timeout=1800, runtime=RUNTIME))
