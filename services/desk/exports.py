"""The case list as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the
Chinese) or XLSX, with Chinese headers and department names. Text a spreadsheet would run as
a formula (OWASP's CSV-injection rule: starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return) gets a leading ``'``; moments are the hospital's time."""

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from fastapi import Response
from openpyxl import Workbook

from schemas.base import HOSPITAL_TIME_ZONE, hospital_day
from schemas.case import CaseState
from schemas.complaint import ComplaintCategory, ComplaintChannel
from services.common.departments import DepartmentCatalogue
from services.desk.access import CaseRow
from services.desk.listing import DUE_SOON_DAYS

HEADERS = (
    "案件编号",
    "状态",
    "责任部门",
    "类别",
    "渠道",
    "被反映人工号",
    "受理时间",
    "调查期限",
    "剩余天数",
    "逾期",
    f"{DUE_SOON_DAYS}日内到期",
    "利益冲突",
)
FORMULA_TRIGGERS = frozenset("=+-@\t\r")
_MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def harmless(text: str) -> str:
    return f"'{text}" if text[:1] in FORMULA_TRIGGERS else text


def _minute(moment: datetime) -> str:
    return moment.astimezone(HOSPITAL_TIME_ZONE).strftime("%Y-%m-%d %H:%M")


def line(row: CaseRow, catalogue: DepartmentCatalogue, now: datetime) -> list[str | int]:
    department = catalogue.departments.get(row.responsible)
    return [
        row.case_id,
        CaseState(row.state).label_zh,
        department.name_zh if department else row.responsible,
        ComplaintCategory(row.category).label_zh if row.category else "",
        ComplaintChannel(row.channel).label_zh if row.channel else "",
        harmless(row.accused_staff_id or ""),
        _minute(row.opened_at),
        _minute(row.deadline),
        (hospital_day(row.deadline) - hospital_day(now)).days,
        "是" if row.overdue(now) else "否",
        "是" if row.due_within(now, DUE_SOON_DAYS) else "否",
        "是" if row.conflict else "否",
    ]


def export(
    rows: Sequence[CaseRow], kind: str, catalogue: DepartmentCatalogue, *, now: datetime
) -> Response:
    lines = [line(row, catalogue, now) for row in rows]
    if kind == "csv":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(HEADERS)
        writer.writerows(lines)
        body = ("\ufeff" + text.getvalue()).encode("utf-8")
    else:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("案件 Cases")
        sheet.freeze_panes = "A2"
        sheet.append(HEADERS)
        for values in lines:
            sheet.append(values)
        buffer = io.BytesIO()
        workbook.save(buffer)
        body = buffer.getvalue()
    name = quote(f"案件列表-{hospital_day(now)}.{kind}")
    return Response(
        body,
        media_type=_MEDIA_TYPES[kind],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )
