"""Posts the demo complaints to intake, waits until reporting has them, prints the report.

Run by `make up`. The complaints keep their source references, so running it again posts
duplicates, which Qinglian counts once. Each source system gets an API key scoped to
complaints, created once and kept in .local/demo-keys.json.
"""

import asyncio
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

from schemas.base import HOSPITAL_TIME_ZONE, derive_event_id
from schemas.case import derive_case_id
from services.common.store import connect, database
from services.intake.auth import ApiKeys
from services.intake.repository import IntakeStore
from services.intake.settings import IntakeSettings

DEFAULT_PORTS = {"intake": 8101, "router": 8102, "escalation": 8103, "reporting": 8104}
URLS = {
    name: f"http://127.0.0.1:{os.environ.get(f'QINGLIAN_{name.upper()}_PORT', port)}"
    for name, port in DEFAULT_PORTS.items()
}
INTAKE, REPORTING = URLS["intake"], URLS["reporting"]
WAIT_SECONDS = 60
KEYS_FILE = Path(".local/demo-keys.json")


async def _create_keys(sources: set[str]) -> dict[str, str]:
    settings = IntakeSettings()
    mongo = connect(settings)
    try:
        keys = ApiKeys(IntakeStore(database(mongo, settings)), cache_seconds=0)
        return {
            source: (
                await keys.create(
                    source_system=source,
                    scopes={"complaint"},
                    label="demo",
                    now=datetime.now(HOSPITAL_TIME_ZONE),
                )
            )[1]
            for source in sorted(sources)
        }
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


def main() -> int:
    complaints = json.loads(Path(__file__).with_name("demo_complaints.json").read_text("utf-8"))
    sources = {complaint["source_system"] for complaint in complaints}
    keys = demo_keys(sources)
    with httpx.Client(timeout=10) as client:
        for complaint in complaints:
            url = f"{INTAKE}/v1/complaints"
            answer = client.post(
                url, json=complaint, headers={"X-API-Key": keys[complaint["source_system"]]}
            )
            if answer.status_code == 401:  # the store was wiped since the keys were made
                keys = demo_keys(sources, renew=True)
                answer = client.post(
                    url, json=complaint, headers={"X-API-Key": keys[complaint["source_system"]]}
                )
            print(
                f"POST /v1/complaints {complaint['source_ref']}: {answer.status_code} {answer.text}"
            )
            answer.raise_for_status()
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
            case = client.get(f"{REPORTING}/v1/reports/cases/{case_id}").json()
            deadline = datetime.fromisoformat(case["deadline"]).astimezone(HOSPITAL_TIME_ZONE)
            print(
                f"  {case_id}  {case['category_zh']} → {case['department_zh']}"
                f" ({case['state_zh']} {case['state']}),"
                f" 调查期限 deadline {deadline:%Y-%m-%d %H:%M}"
            )
        month = client.get(f"{REPORTING}/v1/reports/cases/{case_ids[0]}").json()["month"]
        report = client.get(f"{REPORTING}/v1/reports/case-counts", params={"month": month}).json()
        print(f"\nCase counts for {month} (基本情况): {report['total']} case(s)")
        for department in report["by_department"]:
            print(f"  {department['name_zh']} {department['name_en']}: {department['count']}")
    print(
        "\nWhere to look:\n"
        f"  report (JSON)   {REPORTING}/v1/reports/case-counts?month={month}\n"
        f"  intake API      {INTAKE}/docs\n"
        + "".join(f"  metrics         {url}/metrics\n" for url in URLS.values())
        + "  stop it all     make down"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
