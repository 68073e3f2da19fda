"""Routing rules: which departments handle a case. Pure: no Kafka, no database, no clock.

The table itself is data (routing_table.toml); this module validates it and applies it.
Loading it with ``RoutingTable.from_toml`` raises DataFileError naming the entry at fault.
"""

from datetime import datetime
from typing import Self

from pydantic import model_validator

from schemas.case import (
    CaseRouted,
    Department,
    DepartmentKind,
    derive_case_id,
    derive_output_event_id,
)
from schemas.complaint import ComplaintCategory, ComplaintChannel, ComplaintReceived
from services.common.datafile import DataFile


class DepartmentEntry(DataFile):
    name_zh: str
    name_en: str
    kind: DepartmentKind


class ComplaintRoute(DataFile):
    category: ComplaintCategory
    responsible: str
    cooperating: tuple[str, ...]
    basis: str


class ChannelRoute(DataFile):
    channel: ComplaintChannel
    add_cooperating: tuple[str, ...]
    basis: str


class RoutingTable(DataFile):
    version: str
    departments: dict[str, DepartmentEntry]
    complaint: tuple[ComplaintRoute, ...]
    channel: tuple[ChannelRoute, ...] = ()

    @model_validator(mode="after")
    def _complete_and_consistent(self) -> Self:
        seen: set[ComplaintCategory] = set()
        for index, route in enumerate(self.complaint, start=1):
            if route.category in seen:
                raise ValueError(f"[[complaint]] #{index}: category {route.category} listed twice")
            seen.add(route.category)
            self._check_departments(
                f"[[complaint]] #{index}", route.responsible, *route.cooperating
            )
        missing = sorted(set(ComplaintCategory) - seen)
        if missing:
            raise ValueError(f"no [[complaint]] entry for categories: {', '.join(missing)}")
        for index, channel_route in enumerate(self.channel, start=1):
            self._check_departments(f"[[channel]] #{index}", *channel_route.add_cooperating)
        return self

    def _check_departments(self, where: str, *codes: str) -> None:
        unknown = [code for code in codes if code not in self.departments]
        if unknown:
            raise ValueError(f"{where}: unknown department {', '.join(unknown)}")

    def department(self, code: str) -> Department:
        entry = self.departments[code]
        return Department(code=code, name_zh=entry.name_zh, name_en=entry.name_en, kind=entry.kind)

    def route_for(self, category: ComplaintCategory) -> ComplaintRoute:
        return next(route for route in self.complaint if route.category == category)


def route_complaint(
    complaint: ComplaintReceived, table: RoutingTable, *, now: datetime
) -> CaseRouted:
    """Open the case a complaint starts and assign its departments from the table."""
    route = table.route_for(complaint.category)
    cooperating = list(route.cooperating)
    basis = [route.basis]
    for channel_route in table.channel:
        if channel_route.channel == complaint.channel:
            cooperating += [
                code for code in channel_route.add_cooperating if code not in cooperating
            ]
            basis.append(channel_route.basis)
    case_id = derive_case_id(complaint.event_id)
    return CaseRouted(
        event_id=derive_output_event_id(case_id, "routed"),
        case_id=case_id,
        source_event_id=complaint.event_id,
        category=complaint.category,
        channel=complaint.channel,
        accused_staff_id=complaint.accused_staff_id,
        accused_department=complaint.accused_department,
        responsible_department=table.department(route.responsible),
        cooperating_departments=tuple(
            table.department(code) for code in cooperating if code != route.responsible
        ),
        routing_basis="；".join(basis),
        routing_table_version=table.version,
        opened_at=complaint.received_at,
        routed_at=now,
    )
