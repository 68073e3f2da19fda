"""Tables as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese) or
XLSX, with Chinese column headers. Every export goes through ``table``, which writes each value
as what it is:

- text as text: a text cell a spreadsheet would run as a formula (OWASP's CSV-injection rule:
  starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a leading ``'`` in CSV,
  and is a string cell with a quote prefix in XLSX; numbers are never touched (-5 is a number);
- numbers as numbers, rates (``Percent``) as percentages ("14.29%"; in XLSX the fraction with a
  percent format);
- moments in the hospital's time ("2026-11-08 10:30"), days as dates, in XLSX as dates with a
  date format; yes/no as 是/否.

XLSX sheets have a frozen header row, a filter on it and columns as wide as their contents.
"""

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from urllib.parse import quote

from fastapi import Response
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from schemas.base import HOSPITAL_TIME_ZONE
from services.reporting.presentation import Percent


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


Column = tuple[str, str]
"""(field, Chinese header)."""

_MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

FORMULA_TRIGGERS = frozenset("=+-@\t\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)."""

MINUTE_FORMAT, DAY_FORMAT, PERCENT_FORMAT = "yyyy-mm-dd hh:mm", "yyyy-mm-dd", "0.00%"
WIDEST_COLUMN = 60
"""The widest a column is made, in characters; longer text runs over, as in any sheet."""


def runs_as_formula(text: str) -> bool:
    return text[:1] in FORMULA_TRIGGERS


def text_of(value: object) -> str:
    """A value as a CSV cell (and as a person reads it)."""
    match value:
        case None:
            return ""
        case bool():
            return "是" if value else "否"
        case int() | float():
            return str(value)
        case Decimal():
            return format(value, "f")
        case Percent():
            return str(value)
        case datetime():
            return value.astimezone(HOSPITAL_TIME_ZONE).strftime("%Y-%m-%d %H:%M")
        case date():
            return value.isoformat()
        case _:
            text = str(value)
            return "'" + text if runs_as_formula(text) else text


def _typed(sheet: WriteOnlyWorksheet, value: Decimal | float | date, number_format: str) -> Cell:
    cell = WriteOnlyCell(sheet)
    cell.value = value
    cell.number_format = number_format
    return cell


def _xlsx_value(sheet: WriteOnlyWorksheet, value: object) -> object:
    """What to append for a value: the value itself where openpyxl stores it as it is (a
    number, text that no spreadsheet would run), else a cell with its type and format."""
    match value:
        case bool() | None:
            return text_of(value) or None
        case int() | float() | Decimal():
            return value
        case Percent():
            return _typed(sheet, value.fraction, PERCENT_FORMAT)
        case datetime():
            local = value.astimezone(HOSPITAL_TIME_ZONE).replace(tzinfo=None)
            return _typed(sheet, local, MINUTE_FORMAT)
        case date():
            return _typed(sheet, value, DAY_FORMAT)
    text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(value))  # XML cannot carry them
    if not runs_as_formula(text):
        return text
    cell = WriteOnlyCell(sheet, text)
    cell.data_type = "s"  # the value setter makes "=…" a formula: text stays text
    cell.quotePrefix = True  # and stays text when a person edits it
    return cell


def _display_width(text: str) -> int:
    """Columns a text takes (up to the widest column): a Chinese (wide) character takes two."""
    longest = max(text.splitlines() or [""], key=len)[:WIDEST_COLUMN]
    if longest.isascii():
        return len(longest)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in longest)


def _xlsx(headers: Sequence[str], rows: Sequence[Sequence[object]], sheet_name: str) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name[:31])
    for index, header in enumerate(headers, start=1):
        widest = max([_display_width(text_of(row[index - 1])) for row in rows], default=0)
        width = min(max(widest, _display_width(header)) + 2, WIDEST_COLUMN)
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(rows) + 1}"
    sheet.append([_xlsx_value(sheet, header) for header in headers])
    for row in rows:
        sheet.append([_xlsx_value(sheet, value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def table(
    rows: Iterable[Mapping[str, object]],
    columns: Sequence[Column],
    *,
    fmt: ExportFormat,
    filename: str,
    sheet: str,
) -> Response:
    """The rows as a CSV or XLSX download named ``filename`` (without extension)."""
    values = [[row.get(field) for field, _ in columns] for row in rows]
    headers = [header for _, header in columns]
    if fmt is ExportFormat.CSV:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow([text_of(header) for header in headers])
        writer.writerows([text_of(value) for value in row] for row in values)
        body = ("\ufeff" + text.getvalue()).encode("utf-8")
    else:
        body = _xlsx(headers, values, sheet)
    name = f"{filename}.{fmt}"
    return Response(
        body,
        media_type=_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )
