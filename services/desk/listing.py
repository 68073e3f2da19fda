"""The case list: every case the desk knows as a small row in memory, and the filters,
counts, search, sort and pages of the list. Pure (``now`` is a parameter).

Why in memory: FerretDB 1.24 pushes down equality on declared fields and nothing else — no
``$in``, ranges, sorts or limits — so "overdue", "deadline within 7 days", a sort by deadline
and a page of 50 would each read the whole collection from the store. The rows are small (a
few hundred bytes each: 10,000 open cases are a few megabytes), loaded from the store at start
and kept current by the desk's consumer (``index.CaseIndex``).
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from schemas.case import CaseState
from services.desk.access import CaseRow, Rules, Viewer

DUE_SOON_DAYS = 7
FACETS = ("state", "department", "category", "channel", "overdue", "due_soon", "conflict")
"""The filters, each counted per value given the others."""
OPEN = "open"
"""The state filter's value for every state but closed."""
YES = "1"


@dataclass(frozen=True)
class ListQuery:
    """The list's filters, as the list page's form sends them."""

    state: str = ""
    department: str = ""
    category: str = ""
    channel: str = ""
    overdue: str = ""
    due_soon: str = ""
    conflict: str = ""
    search: str = ""
    descending: bool = False
    page: int = 1

    def chosen(self) -> tuple[str, ...]:
        return tuple(getattr(self, facet) for facet in FACETS)

    def parameters(self, **changes: object) -> dict[str, str]:
        """The query string of this list with ``changes``: for links that keep the filters."""
        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        values["descending"] = YES if values["descending"] else ""
        values["page"] = "" if values["page"] == 1 else str(values["page"])
        return {name: str(value) for name, value in values.items() if value}


@dataclass
class Listing:
    rows: list[CaseRow]
    """The page asked for."""
    total: int
    page: int
    pages: int
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    """Per filter, per value: the cases the list would show with that value chosen and the
    other filters as they are."""


def facet_values(row: CaseRow, now: datetime, soon: datetime) -> tuple[str, ...]:
    """The row's value of each filter, in FACETS' order (``soon``: the end of DUE_SOON_DAYS)."""
    running = row.awaiting_finding
    return (
        row.state,
        row.responsible,
        row.category,
        row.channel,
        YES if running and now > row.deadline else "",
        YES if running and now <= row.deadline <= soon else "",
        YES if row.conflict else "",
    )


def _fits(chosen: str, value: str, facet: str) -> bool:
    if facet == "state" and chosen == OPEN:
        return value != CaseState.CLOSED
    return chosen == value


def found_by(row: CaseRow, wanted: str) -> bool:
    """A case id (whole or its start) or the accused's staff number (``wanted`` in capitals)."""
    return row.case_id.startswith(wanted) or (row.accused_staff_id or "").upper() == wanted


def visible(rows: Iterable[CaseRow], viewer: Viewer, rules: Rules) -> Iterable[CaseRow]:
    return (row for row in rows if rules.may_see(viewer, row))


def select(
    rows: Iterable[CaseRow], query: ListQuery, now: datetime
) -> tuple[list[CaseRow], dict[str, Counter[str]]]:
    """The rows the query selects, sorted by deadline, and the counts of every filter: for
    each value, the rows that pass every other filter and have that value. (The loop does only
    what the filters chosen need, and the counting is done by Counter in C: this runs over
    10,000 rows on every list request.)"""
    soon, search = now + timedelta(days=DUE_SOON_DAYS), query.search.strip().upper()
    table = [
        (row, facet_values(row, now, soon)) for row in rows if not search or found_by(row, search)
    ]
    chosen = [(index, value, FACETS[index]) for index, value in enumerate(query.chosen()) if value]
    selected = table if not chosen else []
    missing_one: dict[int, list[str]] = {index: [] for index, _, _ in chosen}
    for row, values in table if chosen else ():
        misses = [index for index, value, facet in chosen if not _fits(value, values[index], facet)]
        if not misses:
            selected.append((row, values))
        elif len(misses) == 1:
            missing_one[misses[0]].append(values[misses[0]])
    columns = list(zip(*(values for _, values in selected), strict=True)) or [()] * len(FACETS)
    counts = {facet: Counter(columns[index]) for index, facet in enumerate(FACETS)}
    for index, missed in missing_one.items():
        counts[FACETS[index]].update(missed)
    counts["state"][OPEN] = sum(
        n for state, n in counts["state"].items() if state != CaseState.CLOSED
    )
    ordered = sorted((row for row, _ in selected), key=lambda row: (row.deadline, row.case_id))
    return (ordered[::-1] if query.descending else ordered), counts


def page_of(
    selected: list[CaseRow], counts: dict[str, Counter[str]], *, page: int, size: int
) -> Listing:
    pages = max(1, -(-len(selected) // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    return Listing(selected[start : start + size], len(selected), page, pages, counts)
