"""What the desk's pages ask for: the list a person may see, a case as its page shows it
(every view logged), and the actions they send, with their outcome once the router applied
them."""

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from schemas.base import hospital_day
from schemas.case import CaseChange, CaseUpdated
from schemas.complaint import ComplaintReceived
from schemas.decision import Decision
from schemas.finding import InvestigationFindingReceived
from schemas.follow_up import ReporterAddition, ReporterReply
from services.common.intake_client import IntakeClient
from services.desk.access import ActionKind, CaseRow, Rules, Viewer
from services.desk.forms import Form, FormError, outgoing
from services.desk.intake import answer_of
from services.desk.listing import Listing, ListQuery, page_of, select, visible
from services.desk.notifications import Entry, of_case
from services.desk.readmodel import CaseIndex, minute_of
from services.desk.signin import digest
from services.desk.store import CaseView, DeskStore, SentAction

LISTS_KEPT = 200
"""Lists computed and kept at most (people × filters asked for) between two case changes."""


@dataclass(frozen=True)
class ActionOutcome:
    """Where an action a person sent stands."""

    action: SentAction
    state: Literal["sending", "pending", "applied", "refused", "failed"]
    note: str | None = None
    event_id: uuid.UUID | None = None
    """The event that carried it, once known (a reply's comes back on the replies topic)."""

    @property
    def actor(self) -> str:
        return f"{self.action.actor_name}（{self.action.actor_staff_id}）"


@dataclass
class CasePage:
    case: CaseUpdated
    row: CaseRow
    days_left: int
    complaints: list[ComplaintReceived]
    additions: list[ReporterAddition]
    replies: list[ReporterReply]
    findings: list[InvestigationFindingReceived]
    decisions: list[Decision]
    outcomes: list[ActionOutcome]
    related: list[CaseRow]
    actions: tuple[ActionKind, ...]
    views: list[CaseView] = field(default_factory=list)
    notifications: list[Entry] = field(default_factory=list)

    @property
    def actors(self) -> dict[str, str]:
        """An event's id → the person who sent it through the desk (the history and the
        replies name the desk's source system; the desk knows who)."""
        return {str(o.event_id): o.actor for o in self.outcomes if o.event_id is not None}

    @property
    def pending(self) -> bool:
        return any(outcome.state in ("sending", "pending") for outcome in self.outcomes)


def outcome_of(
    action: SentAction, case: CaseUpdated, replies: Iterable[ReporterReply]
) -> ActionOutcome:
    if action.status == "failed":
        return ActionOutcome(action, "failed", action.problem)
    if action.status == "sending":
        return ActionOutcome(action, "sending")
    if action.kind is ActionKind.REPLY:
        for reply in replies:
            if digest(reply.text) == action.text_digest and reply.sent_at >= action.submitted_at:
                # Applied once the case's history notes it too: until then the page refreshes.
                noted = any(entry.source_event_id == reply.event_id for entry in case.history)
                return ActionOutcome(
                    action, "applied" if noted else "pending", event_id=reply.event_id
                )
        return ActionOutcome(action, "pending")
    for entry in case.history:
        if entry.source_event_id == action.event_id:
            if entry.change is CaseChange.REFUSED:
                return ActionOutcome(action, "refused", entry.note, action.event_id)
            return ActionOutcome(action, "applied", entry.note, action.event_id)
    return ActionOutcome(action, "pending")


def standing(decisions: Iterable[Decision]) -> list[Decision]:
    """Each decision's latest word (a correction replaces what it corrects), oldest first."""
    latest: dict[str, Decision] = {}
    for decision in sorted(decisions, key=lambda d: (d.decided_at, str(d.event_id))):
        latest[decision.key] = decision
    return sorted(latest.values(), key=lambda d: (d.as_of, d.key))


@dataclass(eq=False)
class Casework:
    store: DeskStore
    index: CaseIndex
    rules: Rules
    intake: IntakeClient
    _: KW_ONLY
    clock: Callable[[], datetime]
    page_size: int
    _lists: dict[Hashable, tuple[list[CaseRow], dict[str, Counter[str]]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _moment: tuple[int, str] = field(default=(-1, ""), init=False, repr=False)

    def selected(self, viewer: Viewer, query: ListQuery) -> tuple[list[CaseRow], Listing]:
        """The cases ``viewer`` may see that the query selects, and the page asked for. What
        a list computes is kept until a case changes or the minute turns (overdue and due
        soon move with the clock), so turning pages and coming back cost little."""
        now = self.clock()
        key = (viewer.role, viewer.department, viewer.staff_id, replace(query, page=1))
        moment = (self.index.generation, minute_of(now))
        if self._moment != moment or len(self._lists) > LISTS_KEPT:
            self._lists.clear()
            self._moment = moment
        if key not in self._lists:
            rows = visible(self.index.rows.values(), viewer, self.rules)
            self._lists[key] = select(rows, query, now)
        selected, counts = self._lists[key]
        return selected, page_of(selected, counts, page=query.page, size=self.page_size)

    async def visible_case(self, viewer: Viewer, case_id: str) -> CaseUpdated | None:
        """The case, if it exists and ``viewer`` may see it (else None: the same answer)."""
        case = (await self.store.cases.load(case_id)).value
        if case is None:
            return None
        self.index.take_cases([case])  # the list catches up with what the page shows
        row = self.index.rows[case_id]
        return case if viewer.uses_desk and self.rules.may_see(viewer, row) else None

    async def page(self, viewer: Viewer, case_id: str) -> CasePage | None:
        """The case page's content; the view is logged first, so the log shows it too."""
        case = await self.visible_case(viewer, case_id)
        if case is None:
            return None
        now = self.clock()
        view = CaseView(
            case_id=case_id,
            username=viewer.username,
            display_name=viewer.display_name,
            role=viewer.role,
            at=now,
        )
        store, ids = self.store, [str(event_id) for event_id in case.source_event_ids]
        # One entry per person, case and minute: the page refreshing itself is not news.
        logged = asyncio.create_task(
            store.views.insert(f"{case_id}|{viewer.username}|{minute_of(now)}", view)
        )
        complaints, additions, replies, findings, decisions, actions = await asyncio.gather(
            store.complaints.get_many(ids),
            asyncio.gather(*(store.additions.find(complaint_event_id=i) for i in ids)),
            store.replies.find(case_id=case_id),
            store.findings.find(case_id=case_id),
            store.decisions.find(case_id=case_id),
            store.actions.find(case_id=case_id),
        )
        await logged
        return CasePage(
            case=case,
            row=self.index.rows[case_id],
            days_left=(hospital_day(case.deadline) - hospital_day(now)).days,
            complaints=[complaints[i] for i in ids if i in complaints],
            additions=sorted(
                (a for found in additions for a in found.values()), key=lambda a: a.received_at
            ),
            replies=sorted(replies.values(), key=lambda reply: reply.sent_at),
            findings=sorted(findings.values(), key=lambda finding: finding.occurred_at),
            decisions=standing(decisions.values()),
            outcomes=self._outcomes(actions.values(), case, replies.values()),
            related=self._related(viewer, case),
            actions=self.rules.actions(viewer, self.index.rows[case_id]),
            views=await self._views(viewer, case_id),
            notifications=await of_case(store, case_id),
        )

    def _outcomes(
        self, actions: Iterable[SentAction], case: CaseUpdated, replies: Iterable[ReporterReply]
    ) -> list[ActionOutcome]:
        replies = list(replies)
        ordered = sorted(actions, key=lambda action: action.submitted_at, reverse=True)
        return [outcome_of(action, case, replies) for action in ordered]

    def _related(self, viewer: Viewer, case: CaseUpdated) -> list[CaseRow]:
        """Other cases against the same person that ``viewer`` may see."""
        if case.accused_staff_id is None:
            return []
        return sorted(
            (
                row
                for row in visible(self.index.rows.values(), viewer, self.rules)
                if row.accused_staff_id == case.accused_staff_id and row.case_id != case.case_id
            ),
            key=lambda row: row.opened_at,
        )

    async def _views(self, viewer: Viewer, case_id: str) -> list[CaseView]:
        if not self.rules.sees_view_log(viewer):
            return []
        views = await self.store.views.find(case_id=case_id)
        return sorted(views.values(), key=lambda view: view.at, reverse=True)

    async def act(
        self, viewer: Viewer, case: CaseUpdated, kind: ActionKind, form: Form, form_token: str
    ) -> SentAction:
        """Send one action form to intake, once however often it is posted (its token);
        raises FormError for values the contract refuses."""
        assert viewer.staff_id is not None  # noqa: S101 (only acting roles get forms)
        now = self.clock()
        sending = outgoing(
            kind, form, case=case, actor=viewer.staff_id, form_token=form_token, now=now
        )
        action = SentAction(
            form_token=form_token,
            case_id=case.case_id,
            kind=kind,
            **_acting(viewer),
            submitted_at=now,
            event_id=sending.event_id,
            text_digest=digest(sending.reply_text) if sending.reply_text else None,
        )
        if not await self.store.actions.insert(form_token, action):
            earlier = await self.store.actions.get(form_token)
            if earlier is None or earlier.case_id != case.case_id or earlier.kind is not kind:
                raise FormError([("form", "表单已失效，请重新填写 / this form has expired")])
            if earlier.status != "failed":
                return earlier  # sent twice: one event
        answer = answer_of(await self.intake.send(sending.path, sending.body))
        sent = action.model_copy(
            update={
                "status": "sent" if answer.accepted else "failed",
                "event_id": sending.event_id or answer.event_id,
                "problem": answer.problem,
            }
        )
        await self.store.actions.put(form_token, sent)
        return sent


def _acting(viewer: Viewer) -> dict[str, Any]:
    """Who sends an action, as the action records them."""
    return {
        "actor_username": viewer.username,
        "actor_name": viewer.display_name,
        "actor_staff_id": viewer.staff_id,
    }
