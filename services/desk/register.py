"""The register of notifications (通知登记, ``/notifications``) for the conduct office, 纪检监察室
and the leadership: who was told of what, when, and who has not acknowledged yet (first), by
state; and the same as CSV (UTF-8 with BOM, hospital time, formulas neutralised as the case
list's export does)."""

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response

from schemas.base import hospital_day
from services.desk.access import REGISTER_ROLES
from services.desk.acknowledgements import AcknowledgingDep
from services.desk.exports import harmless
from services.desk.notifications import STATES, Entry
from services.desk.web import DeskUserDep, PageError, hospital_minute, page

HEADERS = (
    "通知编号",
    "案件编号",
    "对象",
    "规则",
    "事项",
    "收件",
    "记录时间",
    "发送时间",
    "办理期限",
    "状态",
    "确认人",
    "确认时间",
)
STATE_PATTERN = "^(" + "|".join(STATES) + ")?$"

register_pages = APIRouter(include_in_schema=False)


def line(entry: Entry) -> list[str]:
    n, ack = entry.notification, entry.ack
    return [
        str(n.notification_id),
        harmless(n.case_id or ""),
        harmless(n.subject_id),
        harmless(n.rule_id),
        entry.what_zh,
        harmless(n.addressee_zh),
        hospital_minute(n.recorded_at),
        hospital_minute(n.sent_at) if n.sent_at else "",
        hospital_minute(n.deadline),
        entry.state_zh,
        harmless(entry.acknowledged_by),
        hospital_minute(ack.acknowledged_at) if ack else "",
    ]


def csv_of(listed: Sequence[Entry], now: datetime) -> Response:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADERS)
    writer.writerows(line(entry) for entry in listed)
    name = quote(f"通知登记-{hospital_day(now)}.csv")
    return Response(
        ("\ufeff" + text.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


@register_pages.get("/notifications")
async def register(
    request: Request,
    signed: DeskUserDep,
    acks: AcknowledgingDep,
    state: Annotated[str, Query(pattern=STATE_PATTERN)] = "",
    format: Annotated[str, Query(pattern="^(html|csv)$")] = "html",
) -> Response:
    if signed.viewer.role not in REGISTER_ROLES:
        raise PageError(
            status.HTTP_403_FORBIDDEN,
            "通知登记仅供行风办、纪检监察室和院领导查看 / the register is for the conduct "
            "office, discipline inspection and the leadership",
        )
    listed = await acks.notifications.register(signed.viewer, state)
    if format == "csv":
        return csv_of(listed, acks.clock())
    context = {"signed": signed, "listed": listed, "state": state, "register_states": STATES}
    return page(request, "notifications.html", context)
