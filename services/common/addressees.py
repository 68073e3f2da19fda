"""Who is told what (通知对象): the notifier's directory of people and groups, kept as data
(``addressees.toml``) beside the department catalogue. Pure.

Department heads are the catalogue's (``departments.toml`` names each head's staff number);
this file gives their addresses. A file that names an unknown department or group, leaves a
department without its head's address, or gives a group no way to be reached is refused with
``file:line place: problem``, as every data file is.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints

from schemas.base import Code
from services.common.datafile import DataFile, DataFileError, Location, describe, line_of
from services.common.departments import DepartmentCatalogue

ADDRESSEES_FILE = Path(__file__).with_name("addressees.toml")

DEPARTMENT_HEAD = "department_head"
"""In ``send.<what>.to``: the head of the department the decision concerns."""

SendKey = Literal[
    "escalation_department_head",
    "escalation_leadership_group",
    "escalation_superior_health_authority",
    "escalation_judicial_organs",
    "escalation_regulator",
    "promotion_refused",
    "promotion_bar",
    "vendor_cutoff",
    "vendor_cutoff_lifted",
    "removal_alert",
    "measure",
    "notice",
]
"""What a decision is, as far as whom to tell goes (``services/notifier/domain.py``)."""

EmailAddress = Annotated[
    str, StringConstraints(pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\".]+$")
]


class Robot(DataFile):
    """A group-chat robot: its webhook, in WeCom's or DingTalk's JSON format."""

    format: Literal["wecom", "dingtalk"]
    url: str = Field(pattern=r"^https?://[^\s]+$")


class Reachable(DataFile):
    email: tuple[EmailAddress, ...] = ()
    robots: tuple[Robot, ...] = ()


class Group(Reachable):
    name_zh: str = Field(min_length=1)
    members: tuple[Code, ...] = ()
    """The staff numbers behind the addresses: a case against one of them is never sent here."""
    instead: Code | None = None
    """Who is told instead when the decision concerns a member."""
    superior: Code | None = None
    """Who is told when a notification stays unacknowledged past its second period."""
    acknowledged_by: tuple[
        Literal["conduct_office", "discipline_inspection", "leadership"], ...
    ] = ()
    """The desk roles whose people acknowledge the group's notifications, besides its members
    (a department head acknowledges their own department's)."""


class Sending(DataFile):
    to: tuple[str, ...] = Field(min_length=1)
    action_zh: str = Field(min_length=1)
    within_hours: float = Field(gt=0)
    """Hours to acknowledge; a reminder after them, the superior after as many again."""


class Digest(DataFile):
    enabled: bool = True
    hour: int = Field(default=8, ge=0, le=23)
    """From this hour (hospital time) each day, each department head's digest is sent."""
    monthly_report_reminder_day: int = Field(default=15, ge=1, le=19)
    """The day of the month the reminder of the monthly report, due by the 20th, is sent."""


@dataclass(frozen=True)
class Addressee:
    """One recipient of notifications: a group or a department's head."""

    key: str
    """``group:<name>`` or ``head:<department code>``: part of each notification's id."""
    name_zh: str
    email: tuple[EmailAddress, ...]
    robots: tuple[Robot, ...]
    members: tuple[str, ...]
    instead: str | None
    superior: str | None


_WHAT_A_GROUP_GIVES = ("name_zh", "email", "robots", "members", "instead", "superior")
"""An addressee's fields that a group gives under the same names."""


class AddresseeDirectory(DataFile):
    version: str
    heads_instead: Code
    heads_superior: Code
    digest: Digest = Digest()
    groups: dict[Code, Group]
    department_heads: dict[Code, Reachable]
    send: dict[SendKey, Sending]

    def cross_check(self) -> Sequence[tuple[Location, str]]:
        problems: list[tuple[Location, str]] = []
        for field in ("heads_instead", "heads_superior"):
            if getattr(self, field) not in self.groups:
                problems.append(((field,), f"unknown group {getattr(self, field)!r}"))
        for name, group in self.groups.items():
            if not group.email and not group.robots:
                problems.append((("groups", name), "give an email address or a robot"))
            for field in ("instead", "superior"):
                other = getattr(group, field)
                if other is not None and other not in self.groups:
                    problems.append((("groups", name, field), f"unknown group {other!r}"))
        for what, sending in self.send.items():
            for index, name in enumerate(sending.to):
                if name != DEPARTMENT_HEAD and name not in self.groups:
                    problems.append((("send", what, "to", index), f"unknown group {name!r}"))
        return problems

    def check_departments(self, catalogue: DepartmentCatalogue) -> Sequence[tuple[Location, str]]:
        problems: list[tuple[Location, str]] = []
        for code, head in self.department_heads.items():
            if code not in catalogue.departments:
                problems.append((("department_heads", code), f"unknown department {code!r}"))
            elif not head.email and not head.robots:
                problems.append((("department_heads", code), "give an email address or a robot"))
        for code in catalogue.departments:
            if code not in self.department_heads:
                problems.append((("department_heads",), f"no address for the head of {code!r}"))
        return problems

    @classmethod
    def load(cls, path: Path, catalogue: DepartmentCatalogue) -> Self:
        """The directory in ``path``, held to the department catalogue."""
        text = path.read_text(encoding="utf-8")
        directory = cls.from_toml(text, source=path.name)
        problems = directory.check_departments(catalogue)
        if problems:
            raise DataFileError(
                "\n".join(
                    f"{path.name}:{line_of(text, where)} {describe(where)}: {problem}"
                    for where, problem in problems
                )
            )
        return directory

    def group(self, name: str) -> Addressee:
        group = self.groups[name]
        given = {field: getattr(group, field) for field in _WHAT_A_GROUP_GIVES}
        return Addressee(key=f"group:{name}", **given)

    def head(self, department: str, catalogue: DepartmentCatalogue) -> Addressee:
        entry = catalogue.departments[department]
        contacts = self.department_heads[department]
        return Addressee(
            key=f"head:{department}",
            name_zh=f"{entry.name_zh}负责人",
            email=contacts.email,
            robots=contacts.robots,
            members=(entry.head_staff_id,),
            instead=self.heads_instead,
            superior=self.heads_superior,
        )

    def by_key(self, key: str, catalogue: DepartmentCatalogue) -> Addressee:
        kind, _, name = key.partition(":")
        return self.head(name, catalogue) if kind == "head" else self.group(name)
