"""The hospital's departments (科室), a data file every service reads the same way. Pure."""

from pathlib import Path

from pydantic import Field

from schemas.base import Code
from schemas.case import Department, DepartmentKind
from services.common.datafile import DataFile

DEPARTMENTS_FILE = Path(__file__).with_name("departments.toml")


class DepartmentEntry(DataFile):
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    kind: DepartmentKind
    head_staff_id: Code


class DepartmentCatalogue(DataFile):
    version: str
    departments: dict[Code, DepartmentEntry]

    def department(self, code: str) -> Department:
        entry = self.departments[code]
        return Department(code=code, name_zh=entry.name_zh, name_en=entry.name_en, kind=entry.kind)

    def is_head(self, staff_id: str | None, code: str | None) -> bool:
        """Whether ``staff_id`` is the head of department ``code``."""
        entry = None if code is None else self.departments.get(code)
        return entry is not None and staff_id is not None and entry.head_staff_id == staff_id
