"""Tables as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese) or
XLSX, with Chinese column headers."""

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from urllib.parse import quote

from fastapi import Response
from openpyxl import Workbook


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


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, int | float | str):
        return value
    return str(value)


def table(
    rows: Iterable[Mapping[str, object]],
    columns: Sequence[Column],
    *,
    fmt: ExportFormat,
    filename: str,
    sheet: str,
) -> Response:
    """The rows as a CSV or XLSX download named ``filename`` (without extension)."""
    values = [[_cell(row.get(field)) for field, _ in columns] for row in rows]
    headers = [header for _, header in columns]
    if fmt is ExportFormat.CSV:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(headers)
        writer.writerows(values)
        body = ("\ufeff" + text.getvalue()).encode("utf-8")
    else:
        workbook = Workbook(write_only=True)
        worksheet = workbook.create_sheet(sheet[:31])
        worksheet.append(headers)
        for row in values:
            worksheet.append(row)
        buffer = io.BytesIO()
        workbook.save(buffer)
        body = buffer.getvalue()
    name = f"{filename}.{fmt}"
    return Response(
        body,
        media_type=_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )
