"""Every decision, correction, withdrawal, lead and promotion answer escalation words, over a
broad set of generated conduct files, compared with what the code said when the fixture was
written (tests/unit/escalation_decisions.json): the same ids (a decision's id derives from
everything it says) and the same Chinese and English sentences, word for word.

The files come from a seeded generator: staff members with findings (amounts around every
tier and the judicial threshold, revised findings, other staff's findings), promotion
applications around the bars' first and last days, prescription rankings, complaints and
surrenders; companies with cut-off findings and visits at every kind of place and hour;
departments with rectification statuses; cases found in time, late, or never. Each is decided
at two moments (one before, one long after every clock they depend on), and reconciled against
what was decided before its last event (corrections and withdrawals).

The fixture was written from the rules before their wording moved out of them:

    .venv/bin/python -m tests.unit.test_escalation_decisions_unchanged --write
"""

import hashlib
import json
import random
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from schemas.base import HOSPITAL_TIME_ZONE, Event
from schemas.case import CaseUpdated
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintCategory
from schemas.decision import Decision, DecisionKind, EscalationTarget, Measure, SubjectKind
from schemas.lead import Lead
from schemas.rectification import RectificationStatus
from schemas.satisfaction import Touchpoint
from schemas.visitor_log import PlaceKind
from services.escalation.conduct import ConductFile, FileEvent, reconcile
from services.escalation.explain import may_promote
from services.escalation.rulebook import RuleBook
from services.escalation.rules import evaluate
from services.escalation.rules.leads import (
    late_surrender_lead,
    rectification_lead,
    satisfaction_lead,
    visit_lead,
)
from services.escalation.settings import EscalationSettings
from services.router.domain import record_finding
from tests.factories import complaint_event, routed_case

FIXTURE = Path(__file__).with_name("escalation_decisions.json")
BOOK = RuleBook.from_file(EscalationSettings().rules).model_copy(
    update={"version": "characterisation"}
)
"""The shipped values under a fixed version: a later version bump alone changes no id here."""
NOWS = (datetime(2026, 12, 1, 2, 0, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
AMOUNTS = (None, "100.00", "4999.99", "5000.00", "9999.99", "10000.00", "29999.99", "30000.00")
COMMENTS = (
    None,
    "挂号很顺利，医生很耐心。",
    "医生收了我們的紅 包",
    "有人收 回扣",
    "门口有黄牛倒号，加号费五百",
    "护士态度不好",
    "送了购物卡才给看",
)
HOURS = (time(9, 0), time(13, 59), time(14, 0), time(15, 30), time(16, 59), time(17, 0))


def case_id_of(name: str) -> str:
    return f"CASE-{hashlib.sha256(name.encode()).hexdigest()[:20].upper()}"


LeadRule = Callable[[Any, RuleBook], Lead | None]
KEPT_VISIT = {
    "started_at": datetime(2026, 11, 18, 15, 0, tzinfo=HOSPITAL_TIME_ZONE),
    "place_kind": PlaceKind.RECEPTION_ROOM,
    "appointment_id": "APT-1",
}
"""A visit that keeps every rule."""


class World:
    """Events for generated conduct files; every reference is unique, every time fixed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.refs = 0

    def accept(self, event_type: str, occurred_at: datetime, **facts: Any) -> Event:
        self.refs += 1
        kind = BY_TYPE[event_type]
        submission = kind.submission.model_validate(
            {
                "source_system": "characterisation",
                "source_ref": f"GEN-{self.refs}",
                "occurred_at": occurred_at,
                **facts,
            }
        )
        received = occurred_at + timedelta(hours=self.rng.choice((1, 30, 400)))
        return kind.event.accept(submission, received_at=received)

    def day(self, start: date = date(2024, 1, 1), span: int = 1100) -> date:
        return start + timedelta(days=self.rng.randrange(span))

    def at(self, day: date, hour: time = time(10, 0)) -> datetime:
        return datetime.combine(day, hour, HOSPITAL_TIME_ZONE)

    def categories(self) -> list[str]:
        return [str(c) for c in self.rng.sample(list(ComplaintCategory), self.rng.randint(1, 3))]

    def finding(self, case_id: str, on: date, **facts: Any) -> Event:
        substantiated = self.rng.random() < 0.85
        return self.accept(
            "investigation_finding",
            self.at(on, self.rng.choice(HOURS)),
            case_id=case_id,
            substantiated=substantiated,
            confirmed_categories=self.categories() if substantiated else [],
            confirmed_amount_cny=self.rng.choice(AMOUNTS) if substantiated else None,
            severe_social_impact=self.rng.random() < 0.3,
            suspected_crime=self.rng.random() < 0.2,
            summary="经调查。",
            **facts,
        )

    def staff_file(self, staff: str) -> list[Event]:
        rng, events = self.rng, []
        found_on = []
        for n in range(rng.randint(0, 4)):
            case_id = case_id_of(f"{staff}-{rng.randint(1, 2)}")
            on = date(2024, 2, 29) if n == 0 and rng.random() < 0.2 else self.day()
            found_on.append(on)
            others = ["S-OTHER"] if rng.random() < 0.1 else [staff, "S-OTHER"][: rng.randint(1, 2)]
            events.append(self.finding(case_id, on, staff_ids=others))
        for n in range(rng.randint(0, 4)):
            base = rng.choice(found_on) if found_on else self.day()
            shift = rng.choice((-1, 0, 1, 200, 730, 731, 729, rng.randrange(-400, 1200)))
            on = base + timedelta(days=shift)
            events.append(
                self.accept(
                    "promotion_application",
                    self.at(on, rng.choice((time(0, 30), time(9, 0), time(23, 30)))),
                    staff_id=staff,
                    application_id=f"HR.{staff}.{n}",
                    target_position="副主任医师",
                )
            )
        events += self.rankings(staff) + self.complaints(staff) + self.surrenders(staff)
        return events

    def rankings(self, staff: str) -> list[Event]:
        rng, events = self.rng, []
        for _ in range(rng.randint(0, 6)):
            month = f"{rng.choice((2025, 2026))}-{rng.randint(1, 12):02d}"
            year, number = int(month[:4]), int(month[5:])
            published = date(year + number // 12, number % 12 + 1, rng.randint(1, 20))
            justified = rng.random() < 0.2
            events.append(
                self.accept(
                    "prescription_ranking",
                    self.at(published),
                    staff_id=staff,
                    department="cardiology",
                    item_code=f"D-{rng.randint(1, 3)}",
                    item_name=f"药品{rng.randint(1, 3)}",
                    item_kind="drug",
                    month=month,
                    rank=rng.choice((1, BOOK.prescribe.top_rank, BOOK.prescribe.top_rank + 1)),
                    justified=justified,
                    justification="危重患者。" if justified else None,
                )
            )
        return events

    def complaints(self, staff: str) -> list[Event]:
        rng, start = self.rng, self.at(self.day())
        events: list[Event] = []
        for _ in range(rng.randint(0, 5)):
            occurred = start + timedelta(days=rng.randrange(0, 120), hours=rng.randrange(24))
            events.append(
                complaint_event(
                    received_at=occurred + timedelta(minutes=5),
                    source_ref=f"GEN-C-{staff}-{len(events)}",
                    occurred_at=occurred.isoformat(),
                    category=rng.choice(list(ComplaintCategory)),
                    accused_staff_id=staff,
                )
            )
        return events

    def surrenders(self, staff: str) -> list[Event]:
        rng, events = self.rng, []
        for _ in range(rng.randint(0, 2)):
            received = self.day()
            handed = received + timedelta(days=rng.choice((0, 1, 7, 8, 15)))
            events.append(
                self.accept(
                    "red_envelope_surrender",
                    self.at(handed, time(16, 0)),
                    staff_id=staff,
                    amount_cny=rng.choice(("200.00", "500.00", "2000.00")),
                    received_on=received,
                    surrendered_on=handed,
                )
            )
        return events

    def visit(self, company: str, on: date) -> Event:
        rng = self.rng
        started = self.at(on, rng.choice(HOURS))
        return self.accept(
            "visitor_log",
            started,
            rep_id=f"REP-{rng.randint(1, 3)}",
            rep_name="李明",
            company_code=company,
            company_name="某医药有限公司",
            host_staff_id=rng.choice((None, "S-HOST")),
            department="cardiology",
            place_code="P-1",
            place_kind=rng.choice(list(PlaceKind)),
            started_at=started,
            appointment_id=rng.choice((None, "APT-1", "APT-2")),
        )

    def company_file(self, company: str) -> list[Event]:
        rng, events = self.rng, []
        found_on = self.day()
        for n in range(rng.randint(0, 2)):
            code = company if rng.random() < 0.9 else "OTHER-CO"
            events.append(
                self.finding(
                    case_id_of(f"{company}-{n}"),
                    found_on + timedelta(days=n * 40),
                    staff_ids=[],
                    company_code=code,
                    company_name="某医药有限公司",
                )
            )
        start = found_on - timedelta(days=rng.randrange(0, 60))
        for _ in range(rng.randint(0, 10)):
            events.append(self.visit(company, start + timedelta(days=rng.randrange(0, 130))))
        return events

    def department_file(self, department: str) -> list[Event]:
        rng, start = self.rng, self.day()
        return [
            self.accept(
                "rectification_status",
                self.at(start + timedelta(days=rng.randrange(0, 500))),
                department=department,
                item=rng.choice(("专家号统揽加价问题整改", "院外购药整治", 'it\'s "done"')),
                status=rng.choice(list(RectificationStatus)),
            )
            for _ in range(rng.randint(0, 6))
        ]

    def case(self, n: int) -> CaseUpdated:
        rng = self.rng
        received = datetime(2026, 9, 1, 2, 0, tzinfo=UTC) + timedelta(days=rng.randrange(90))
        complaint = complaint_event(
            received_at=received, source_ref=f"GEN-CASE-{n}", accused_staff_id=f"S-CASE-{n}"
        )
        case = routed_case(complaint)
        found = rng.choice((None, -2, 0.5, 8, 30))
        if found is None:
            return case
        at = case.deadline + timedelta(days=found)
        return record_finding(case, self.finding(case.case_id, at.date()), now=at)  # type: ignore[arg-type]

    def rating(self) -> Event:
        rng = self.rng
        return self.accept(
            "satisfaction",
            self.at(self.day()),
            touchpoint=rng.choice(list(Touchpoint)),
            department="cardiology",
            staff_id=rng.choice((None, "S-RATED")),
            score=rng.randint(1, 5),
            comment=rng.choice(COMMENTS),
        )


def files(seed: int = 2026) -> Iterator[ConductFile]:
    world = World(seed)
    for n in range(60):
        staff = f"S{n:04d}"
        yield _file(SubjectKind.STAFF, staff, world.staff_file(staff))
    for n in range(30):
        company = f"YX-{n:03d}"
        yield _file(SubjectKind.COMPANY, company, world.company_file(company))
    for n in range(20):
        department = f"DEPT-{n:02d}"
        yield _file(SubjectKind.DEPARTMENT, department, world.department_file(department))
    for n in range(20):
        case = world.case(n)
        yield ConductFile(subject_kind=SubjectKind.CASE, subject_id=case.case_id, case=case)


def lead_sources(seed: int = 2027) -> Iterator[tuple[Event, LeadRule]]:
    world = World(seed)
    for n in range(40):
        yield world.rating(), satisfaction_lead
        yield world.visit(f"YX-L{n}", world.day()), visit_lead
    kept = world.visit("YX-KEPT", date(2026, 11, 18))  # a Wednesday
    yield kept.model_copy(update=KEPT_VISIT), visit_lead
    for status in RectificationStatus:
        yield (
            world.accept(
                "rectification_status",
                world.at(world.day()),
                department="DEPT-L",
                item="院外购药整治",
                status=status,
            ),
            rectification_lead,
        )
    for event in world.surrenders("S-L") + world.surrenders("S-M") + world.surrenders("S-N"):
        yield event, late_surrender_lead


def _file(kind: SubjectKind, subject_id: str, events: list[Event]) -> ConductFile:
    held: tuple[FileEvent, ...] = tuple(events)  # type: ignore[arg-type]
    return ConductFile(subject_kind=kind, subject_id=subject_id, events=held)


def words() -> dict[str, Any]:
    """What the rules say today over the generated files and lead sources: each decision's
    and lead's id with its two sentences (``said``), and which of them each file's rules
    decided and what reconciling them published (``decided``)."""
    said: dict[str, list[str]] = {}
    decided: dict[str, Any] = {}

    def ids(decisions: list[Decision]) -> list[str]:
        for d in decisions:
            said[str(d.event_id)] = [d.explanation_zh, d.explanation_en]
        return [str(d.event_id) for d in decisions]

    for file in files():
        for now in NOWS:
            before = file.model_copy(update={"events": file.events[:-1]})
            emitted = {d.key: d for d in evaluate(before, BOOK, now=now)}
            fresh = evaluate(file, BOOK, now=now)
            decided[f"{file.key} @ {now:%Y-%m-%d}"] = {
                "decisions": ids(fresh),
                "published": ids(reconcile(emitted, fresh, now=now)),
            }
        if file.subject_kind is SubjectKind.STAFF:
            for day in (date(2025, 6, 1), date(2026, 3, 1), date(2027, 1, 1)):
                answer = may_promote(file, BOOK, day, now=NOWS[0])
                decided[f"{file.key} may be promoted on {day}"] = list(
                    answer.explain(file.subject_id, day)
                )
    for event, rule in lead_sources():
        lead = rule(event, BOOK)
        decided[f"lead of {event.event_id}"] = None if lead is None else str(lead.event_id)
        if lead is not None:
            said[str(lead.event_id)] = [lead.explanation_zh, lead.explanation_en]
    return {"said": said, "decided": decided}


def test_every_rule_says_word_for_word_what_it_said_before_its_wording_moved() -> None:
    expected = json.loads(FIXTURE.read_text(encoding="utf-8"))
    now = words()

    for section in ("decided", "said"):
        assert now[section].keys() == expected[section].keys(), section
        for what, was in expected[section].items():
            assert now[section][what] == was, what


def test_the_generated_files_reach_every_rule_and_every_kind_of_outcome() -> None:
    """The comparison is only as good as the files' variety: every rule, kind, target and
    measure is decided in them, applications are allowed and refused, decisions are corrected
    and withdrawn, and every lead rule raises leads and lets events pass."""
    decisions, published = [], []
    for file in files():
        for now in NOWS:
            before = file.model_copy(update={"events": file.events[:-1]})
            emitted = {d.key: d for d in evaluate(before, BOOK, now=now)}
            decisions += evaluate(file, BOOK, now=now)
            published += reconcile(emitted, evaluate(file, BOOK, now=now), now=now)
    assert len({d.rule_id for d in decisions}) == 12
    assert {d.kind for d in decisions} == set(DecisionKind)
    assert {d.escalate_to for d in decisions} == {None, *EscalationTarget}
    assert {d.measure for d in decisions} == {None, *Measure}
    assert {d.allowed for d in decisions} == {None, True, False}
    assert any(d.corrects and not d.withdrawn for d in published)
    assert any(d.withdrawn for d in published)
    leads = [(rule.__name__, rule(event, BOOK)) for event, rule in lead_sources()]
    assert {name for name, lead in leads if lead} == {name for name, _ in leads}
    assert {name for name, lead in leads if lead is None} == {name for name, _ in leads}


def _lines(words: dict[str, Any]) -> str:
    """The fixture's text: one line per entry, so that a change reads as a small diff."""
    sections = (
        f"{json.dumps(name)}: {{\n"
        + ",\n".join(
            f" {json.dumps(what)}: {json.dumps(entry, ensure_ascii=False)}"
            for what, entry in sorted(entries.items())
        )
        + "\n}"
        for name, entries in sorted(words.items())
    )
    return "{\n" + ",\n".join(sections) + "\n}\n"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    FIXTURE.write_text(_lines(words()), encoding="utf-8")
