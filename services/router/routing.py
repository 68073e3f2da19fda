"""The routing data files: who handles which case, in how many days, on which seed passage
(routing_table.toml), and the departments they name (services/common/departments.toml), loaded
through services/common/datafile.py and checked against each other. A bad file stops the
router at start with ``file:line place: problem``.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field

from schemas.base import Code
from schemas.case import CaseKind
from schemas.complaint import ComplaintCategory, ComplaintChannel
from services.common.datafile import DataFile, DataFileError, Location, describe, line_of
from services.common.departments import DepartmentCatalogue

Days = Annotated[int, Field(gt=0, strict=True)]
"""A whole number of days, written as a TOML integer (not "15", not 15.0, not true)."""
Count = Annotated[int, Field(gt=0, strict=True)]


class Route(DataFile):
    responsible: Code
    cooperating: tuple[Code, ...] = ()
    with_concerned_department: bool = False
    """The department the case is about cooperates (one of 其他职能部门及各临床、医辅科室)."""
    investigation_days: Days
    basis: str = Field(min_length=1)


class ComplaintRoute(Route):
    category: ComplaintCategory


class KindRoute(Route):
    kind: CaseKind


class ChannelRoute(DataFile):
    channel: ComplaintChannel
    add_cooperating: tuple[Code, ...]
    basis: str = Field(min_length=1)


class RoutingTable(DataFile):
    version: str
    conflict_of_interest_department: Code
    related_complaint_window_days: Days
    events_per_case_at_most: Count
    """A case takes at most this many related events; the next opens a case of its own."""
    complaint: tuple[ComplaintRoute, ...]
    channel: tuple[ChannelRoute, ...] = ()
    case_kind: tuple[KindRoute, ...] = ()

    def cross_check(self) -> Sequence[tuple[Location, str]]:
        problems: list[tuple[Location, str]] = []
        categories = [route.category for route in self.complaint]
        problems += _repeats("complaint", "category", categories)
        missing = [str(category) for category in ComplaintCategory if category not in categories]
        if missing:
            problems.append((("complaint",), f"no entry for categories {', '.join(missing)}"))
        kinds = [route.kind for route in self.case_kind]
        problems += _repeats("case_kind", "kind", kinds)
        if CaseKind.COMPLAINT in kinds:
            where = ("case_kind", kinds.index(CaseKind.COMPLAINT), "kind")
            problems.append((where, "complaints are routed by [[complaint]] entries"))
        missing = [str(k) for k in CaseKind if k is not CaseKind.COMPLAINT and k not in kinds]
        if missing:
            problems.append((("case_kind",), f"no entry for case kinds {', '.join(missing)}"))
        problems += _repeats("channel", "channel", [route.channel for route in self.channel])
        return problems

    def department_references(self) -> Iterable[tuple[Location, str]]:
        """Every department code the table names, with where it names it."""
        yield ("conflict_of_interest_department",), self.conflict_of_interest_department
        for section, routes in (("complaint", self.complaint), ("case_kind", self.case_kind)):
            for index, route in enumerate(routes):
                yield (section, index, "responsible"), route.responsible
                for position, code in enumerate(route.cooperating):
                    yield (section, index, "cooperating", position), code
        for index, channel_route in enumerate(self.channel):
            for position, code in enumerate(channel_route.add_cooperating):
                yield ("channel", index, "add_cooperating", position), code

    def route_for(self, kind: CaseKind, category: ComplaintCategory | None) -> Route:
        if kind is CaseKind.COMPLAINT:
            return next(route for route in self.complaint if route.category == category)
        return next(route for route in self.case_kind if route.kind == kind)


def _repeats(section: str, field: str, values: Sequence[object]) -> list[tuple[Location, str]]:
    return [
        ((section, index, field), f"{value} is listed again")
        for index, value in enumerate(values)
        if value in values[:index]
    ]


@dataclass(frozen=True)
class Routing:
    """The department catalogue and the routing table, checked against each other."""

    catalogue: DepartmentCatalogue
    table: RoutingTable

    @classmethod
    def load(cls, catalogue_path: Path, table_path: Path) -> Self:
        catalogue = DepartmentCatalogue.from_file(catalogue_path)
        table_text = table_path.read_text(encoding="utf-8")
        table = RoutingTable.from_toml(table_text, source=table_path.name)
        return cls.checked(catalogue, table, table_text=table_text, source=table_path.name)

    @classmethod
    def checked(
        cls,
        catalogue: DepartmentCatalogue,
        table: RoutingTable,
        *,
        table_text: str,
        source: str = "routing table",
    ) -> Self:
        unknown = [
            f"{source}:{line_of(table_text, where)} {describe(where)}: unknown department {code!r}"
            for where, code in table.department_references()
            if code not in catalogue.departments
        ]
        if unknown:
            raise DataFileError("\n".join(unknown))
        return cls(catalogue=catalogue, table=table)

    @property
    def version(self) -> str:
        return f"{self.table.version}+departments.{self.catalogue.version}"

    def headed_by(self, staff_id: str | None) -> set[str]:
        """Codes of the departments ``staff_id`` is head of."""
        if staff_id is None:
            return set()
        return {
            code
            for code, entry in self.catalogue.departments.items()
            if entry.head_staff_id == staff_id
        }
