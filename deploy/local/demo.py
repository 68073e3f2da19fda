"""Posts the demo complaints to intake, waits until reporting has them, prints the report;
then records a finding on the first case and a promotion application by the staff member it
concerns, and prints what escalation decided, and why.

Run by `make up`. The events keep their source references, so running it again posts
duplicates, which Qinglian counts once. Each source system gets an API key scoped to what it
sends, created once and kept in .local/demo-keys.json.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from schemas.base import HOSPITAL_TIME_ZONE, derive_event_id
from schemas.case import CaseState, derive_case_id
from schemas.complaint import ComplaintCategory
from services.common.credentials import Grants
from services.common.documents import MongoDocuments
from services.common.store import connect, database
from services.intake.settings import IntakeSettings
from services.intake.store import IntakeStore
from services.reporting.access import Role, grants, report_tokens

DEFAULT_PORTS = {
    "intake": 8101,
    "router": 8102,
    "escalation": 8103,
    "reporting": 8104,
    "desk": 8105,
    "portal": 8106,
    "notifier": 8107,
}
URLS = {
    name: f"http://127.0.0.1:{os.environ.get(f'QINGLIAN_{name.upper()}_PORT', port)}"
    for name, port in DEFAULT_PORTS.items()
}
INTAKE, REPORTING, DESK, PORTAL = URLS["intake"], URLS["reporting"], URLS["desk"], URLS["portal"]
WAIT_SECONDS = 60
KEYS_FILE = Path(".local/demo-keys.json")
SCOPES = {"investigation": "investigation_finding", "hr": "promotion_application"}
"""What each demo source system other than the complaint channels sends."""


DESK_ACCOUNTS = (
    ("xingfeng", "conduct_office", "行风办 王敏", ["--staff-id", "S0102"]),
    ("jijian", "discipline_inspection", "纪检监察室 李强", ["--staff-id", "S0302"]),
    (
        "caiwu",
        "department_head",
        "财务部 负责人",
        ["--department", "finance", "--staff-id", "S0201"],
    ),
    ("lingdao", "leadership", "院领导 张华", ["--staff-id", "S0001"]),
    ("shenji", "auditor", "审计 赵云", []),
    ("admin", "admin", "系统管理员", []),
)
"""One demo account of the desk per role: (username, role, name, options)."""

REPORT_TOKEN = "report:conduct_office"  # noqa: S105 (a name, not a secret)
"""Where the demo keeps its conduct office token for reporting, beside the API keys: the demo
reads the reports as a machine (people sign in at the desk)."""


async def _create_keys(names: set[str]) -> dict[str, str]:
    settings = IntakeSettings()
    mongo = connect(settings)
    now = datetime.now(HOSPITAL_TIME_ZONE)
    try:
        keys = IntakeStore.on(MongoDocuments(database(mongo, settings)), key_cache_seconds=0).keys
        tokens = report_tokens(MongoDocuments(database(mongo, settings)), cache_seconds=0)
        created = {}
        for name in sorted(names):
            if name == REPORT_TOKEN:
                created[name] = (
                    await tokens.issue(grants(Role.CONDUCT_OFFICE, None), label="demo", now=now)
                )[1]
            else:
                sender: Grants = {"source_system": name, "scopes": [SCOPES.get(name, "complaint")]}
                created[name] = (await keys.issue(sender, label="demo", now=now))[1]
        return created
    finally:
        await mongo.close()


def demo_keys(sources: set[str], *, renew: bool = False) -> dict[str, str]:
    known: dict[str, str] = (
        {} if renew or not KEYS_FILE.exists() else json.loads(KEYS_FILE.read_text())
    )
    missing = sources - set(known)
    if missing:
        known |= asyncio.run(_create_keys(missing))
        KEYS_FILE.parent.mkdir(parents=True, exist_ok=True)
        KEYS_FILE.write_text(json.dumps(known))
        KEYS_FILE.chmod(0o600)
    return known


def post(client: httpx.Client, path: str, event: dict[str, Any], sources: set[str]) -> None:
    keys = demo_keys(sources)
    url = f"{INTAKE}{path}"
    answer = client.post(url, json=event, headers={"X-API-Key": keys[event["source_system"]]})
    if answer.status_code == 401:  # the store was wiped since the keys were made
        keys = demo_keys(sources, renew=True)
        answer = client.post(url, json=event, headers={"X-API-Key": keys[event["source_system"]]})
    print(f"POST {path} {event['source_ref']}: {answer.status_code} {answer.text}")
    answer.raise_for_status()


def main() -> int:
    complaints = json.loads(Path(__file__).with_name("demo_complaints.json").read_text("utf-8"))
    sources = {complaint["source_system"] for complaint in complaints} | set(SCOPES)
    with httpx.Client(timeout=10) as client:
        for complaint in complaints:
            post(client, "/v1/complaints", complaint, sources)
        # Asked for after posting: a store wiped since the last run renews the keys on the
        # first post, and the reporting token with them.
        token = demo_keys(sources | {REPORT_TOKEN})[REPORT_TOKEN]
        client.headers["Authorization"] = f"Bearer {token}"
        case_ids = [
            derive_case_id(derive_event_id(c["source_system"], c["source_ref"])) for c in complaints
        ]
        deadline = time.monotonic() + WAIT_SECONDS
        pending = set(case_ids)
        while pending and time.monotonic() < deadline:
            pending = {
                case_id
                for case_id in pending
                if client.get(f"{REPORTING}/v1/reports/cases/{case_id}").status_code != 200
            }
            time.sleep(0.5)
        if pending:
            print(f"reporting did not show {len(pending)} demo case(s) within {WAIT_SECONDS} s")
            return 1
        print("\nDemo cases as reporting sees them:")
        for case_id in case_ids:
            case = client.get(f"{REPORTING}/v1/reports/cases/{case_id}").json()["case"]
            deadline = datetime.fromisoformat(case["deadline"]).astimezone(HOSPITAL_TIME_ZONE)
            category, state = ComplaintCategory(case["category"]), CaseState(case["state"])
            print(
                f"  {case_id}  {category.label_zh} → {case['department_zh']}"
                f" ({state.label_zh} {state}), 调查期限 deadline {deadline:%Y-%m-%d %H:%M}"
            )
        month = case["month"]
        report = client.get(f"{REPORTING}/v1/reports/monthly", params={"month": month}).json()
        print(f"\n全院 {month} 月度工作开展情况 (hospital-wide monthly report), 基本情况:")
        for entry in report["basic"]["by_event_type"]:
            print(f"  {entry['label_zh']} {entry['event_type']}: {entry['count']}")
        print(f"  推进情况 progress: {report['progress']}")
        first = complaints[0]
        print(f"\nA finding on {case_ids[0]}, then a promotion application by the staff concerned:")
        post(client, "/v1/investigation-findings", _finding(case_ids[0], first), sources)
        post(client, "/v1/promotion-applications", _application(first), sources)
    if not _explain_when_decided(first["accused_staff_id"]):
        return 1
    _desk_accounts()
    sheet = _sample_qr_sheet()
    print(
        "\nWhere to look:\n"
        f"  portal          {PORTAL}/  (投诉举报 complaint form; {PORTAL}/follow-up 进度查询)\n"
        f"  扫码评价 sheet   {sheet}  (more: .venv/bin/python -m services.portal.qr --out DIR)\n"
        f"  case desk       {DESK}/login  (accounts above)\n"
        f"  dashboard       {REPORTING}/dashboard  (one sign-in: the desk's, accounts above)\n"
        f"  monthly report  {REPORTING}/v1/reports/monthly/print?month={month}\n"
        f"  reports API     {REPORTING}/docs  (machines: token in {KEYS_FILE}, {REPORT_TOKEN!r})\n"
        f"  intake API      {INTAKE}/docs\n"
        f"  portal API      {PORTAL}/docs  (a complaint's follow-up, by its code)\n"
        "  explain a file  .venv/bin/python -m services.escalation.explain staff STAFF_ID\n"
        + "".join(f"  metrics         {url}/metrics\n" for url in URLS.values())
        + "  stop it all     make down"
    )
    return 0


USERS_COMMAND = (sys.executable, "-m", "services.desk.users")
QR_COMMAND = (sys.executable, "-m", "services.portal.qr")
QR_SHEETS = Path(".local/qr-sheets")
SAMPLE_SHEET = ("--department", "outpatient", "--touchpoint", "registration")


def _sample_qr_sheet() -> str:
    """One 扫码评价 sheet (outpatient registration), printed as an operator prints them, with
    the portal's QR key: its path (the rest with the same command)."""
    printed = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [*QR_COMMAND, "--out", str(QR_SHEETS), *SAMPLE_SHEET],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "QINGLIAN_PUBLIC_URL": PORTAL},
    )
    if printed.returncode != 0:
        return f"(not printed: {printed.stderr.strip()})"
    sheet, link = printed.stdout.strip().split("\t")
    return f"{Path(sheet).resolve()}  → {link}"


def _desk_accounts() -> None:
    """One account per role on the desk; a new one's one-time password is printed, once."""
    print(f"\n案件台 Case desk: {DESK}/login — demo accounts (one-time passwords, shown once):")
    for username, role, name, options in DESK_ACCOUNTS:
        made = subprocess.run(  # noqa: S603 (our own interpreter and module)
            [*USERS_COMMAND, "create", username, "--role", role, "--name", name, *options],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode == 0:
            password = made.stdout.strip().splitlines()[-1]
            print(f"  {username:<10} {role:<22} {name:<16} {password}")
        elif "exists" in made.stderr:
            print(
                f"  {username:<10} {role:<22} {name:<16} (exists: reset-password to get a new one)"
            )
        else:
            print(f"  {username}: {made.stderr.strip()}")
    print(
        "  a new password is chosen at the first sign-in; "
        ".venv/bin/python -m services.desk.users reset-password USERNAME gives a new one"
    )


def _finding(case_id: str, complaint: dict[str, Any]) -> dict[str, Any]:
    return {
        "source_system": "investigation",
        "source_ref": f"{complaint['source_ref']}-FINDING",
        "occurred_at": "2026-11-16T15:00:00+08:00",
        "case_id": case_id,
        "substantiated": True,
        "confirmed_categories": [complaint["category"]],
        "staff_ids": [complaint["accused_staff_id"]],
        "confirmed_amount_cny": complaint.get("amount_cny"),
        "company_code": "YX-PHARMA-017",
        "company_name": "某医药有限公司",
        "summary": "经调查，反映属实：该医生按处方量收取厂家提成。",
    }


def _application(complaint: dict[str, Any]) -> dict[str, Any]:
    return {
        "source_system": "hr",
        "source_ref": f"{complaint['source_ref']}-PROMOTION",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "staff_id": complaint["accused_staff_id"],
        "application_id": "HR-DEMO-2026-01",
        "target_position": "副主任医师",
    }


def _explain_when_decided(staff_id: str) -> bool:
    """Print escalation's explanation of the staff member's file once it has decided."""
    command = [sys.executable, "-m", "services.escalation.explain", "staff", staff_id]
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        shown = subprocess.run(  # noqa: S603 (our own interpreter and module)
            [*command, "--json"], capture_output=True, text=True, check=False
        )
        if (
            shown.returncode == 0
            and "R-PROMO-2Y" in shown.stdout
            and '"allowed": false' in (shown.stdout)
        ):
            print(f"\nWhat escalation decided on {staff_id}, and why:")
            subprocess.run(command, check=True)  # noqa: S603
            return True
        time.sleep(0.5)
    print(f"escalation did not decide on {staff_id} within {WAIT_SECONDS} s")
    return False


if __name__ == "__main__":
    sys.exit(main())
