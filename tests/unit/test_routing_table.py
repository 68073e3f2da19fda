"""The routing table (services/router/routing_table.toml) against the seed it encodes.

Seed 004 ("小切口"整治"惠民行动"实施方案, 2023) §四 names, for every problem, the 责任部门 and the
协同部门; §二 puts the office that 统筹协调 the whole action in 医务部. The expectations below
come from those passages, not from the table.
"""

import json
import re
import tomllib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.base import HOSPITAL_TIME_ZONE, derive_event_id
from schemas.case import CaseRouted
from schemas.complaint import ComplaintCategory, ComplaintChannel, ComplaintReceived
from services.common.datafile import DataFileError
from services.router.domain import RoutingTable, route_complaint

TABLE_PATH = Path(__file__).resolve().parents[2] / "services" / "router" / "routing_table.toml"

# 004 §四, every measure: "协同部门：其他职能部门及各临床、医辅科室"
SEED_COOPERATING = {"其他职能部门", "各临床、医辅科室"}
# 004 §四(三)4: "投诉举报信箱，指定专人每周开箱处理 … 责任部门：纪检监察室"
MAILBOX_OFFICE = "纪检监察室"

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=HOSPITAL_TIME_ZONE)


@dataclass(frozen=True)
class SeedAssignment:
    code: str
    name_zh: str
    basis: str
    """The section of seed 004 the assignment comes from."""


FINANCE = "finance", "财务部"
MEDICAL_AFFAIRS = "medical_affairs", "医务部"


def _assignment(department: tuple[str, str], basis: str) -> SeedAssignment:
    return SeedAssignment(code=department[0], name_zh=department[1], basis=basis)


SEED_ASSIGNMENTS = [
    # 004 §四(一)1 "集中整治…设备采购、工程建设等领域腐败行为 … 责任部门：财务部"
    pytest.param(
        ComplaintCategory.PROCUREMENT,
        _assignment(FINANCE, "004 §四(一)1"),
        id="procurement-is-finance-per-004-4.1.1",
    ),
    # 004 §四(一)1 "集中整治非集采药品、耗材隐性受贿，院外购药，大处方提成 … 责任部门：财务部"
    pytest.param(
        ComplaintCategory.KICKBACK,
        _assignment(FINANCE, "004 §四(一)1"),
        id="kickback-is-finance-per-004-4.1.1",
    ),
    # 004 §四(一)2 "凡医务人员安排病患到指定药店或非双通道医保定点药店购药，需经科室主任批准，
    # 并向医院医务部备案 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.OUTSIDE_PHARMACY,
        _assignment(MEDICAL_AFFAIRS, "004 §四(一)2"),
        id="outside_pharmacy-is-medical-affairs-per-004-4.1.2",
    ),
    # 004 §四(一)3 "采取增加专家号或出诊时间…缓解挂号难问题 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.APPOINTMENT_SCALPING,
        _assignment(MEDICAL_AFFAIRS, "004 §四(一)3"),
        id="appointment_scalping-is-medical-affairs-per-004-4.1.3",
    ),
    # 004 §四(二) "对发现的重复检查和不合理医疗检查等行为…严肃查处 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.DUPLICATE_TEST,
        _assignment(MEDICAL_AFFAIRS, "004 §四(二)"),
        id="duplicate_test-is-medical-affairs-per-004-4.2",
    ),
    pytest.param(
        ComplaintCategory.UNREASONABLE_TEST,
        _assignment(MEDICAL_AFFAIRS, "004 §四(二)"),
        id="unreasonable_test-is-medical-affairs-per-004-4.2",
    ),
    # 004 §四(三)1 "医德医风、酒驾和赌博问题做到凡诉必查，凡错必纠 … 从根本上整治工作人员服务态度差
    # 问题 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.ATTITUDE,
        _assignment(MEDICAL_AFFAIRS, "004 §四(三)1"),
        id="attitude-is-medical-affairs-per-004-4.3.1",
    ),
    # 004 §四(三)2 "凡存在医患之间不当行为，造成社会影响恶劣者，从严查处 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.IMPROPER_RELATIONSHIP,
        _assignment(MEDICAL_AFFAIRS, "004 §四(三)2"),
        id="improper_relationship-is-medical-affairs-per-004-4.3.2",
    ),
    # 004 §四(三)3 "全院集中开展医务人员酒驾、赌博问题专项整治行动 … 责任部门：医务部"
    pytest.param(
        ComplaintCategory.DRUNK_DRIVING,
        _assignment(MEDICAL_AFFAIRS, "004 §四(三)3"),
        id="drunk_driving-is-medical-affairs-per-004-4.3.3",
    ),
    pytest.param(
        ComplaintCategory.GAMBLING,
        _assignment(MEDICAL_AFFAIRS, "004 §四(三)3"),
        id="gambling-is-medical-affairs-per-004-4.3.3",
    ),
    # 004 §二 "下设办公室在医务部，由医务部负责统筹协调“惠民行动”的日常工作。"
    pytest.param(
        ComplaintCategory.RED_ENVELOPE,
        _assignment(MEDICAL_AFFAIRS, "004 §二"),
        id="red_envelope-is-medical-affairs-as-coordinator-per-004-2",
    ),
    pytest.param(
        ComplaintCategory.OTHER,
        _assignment(MEDICAL_AFFAIRS, "004 §二"),
        id="other-is-medical-affairs-as-coordinator-per-004-2",
    ),
]


def _real_text() -> str:
    return TABLE_PATH.read_text("utf-8")


def _real_table() -> RoutingTable:
    return RoutingTable.from_toml(_real_text())


def _real_data() -> dict[str, Any]:
    return tomllib.loads(_real_text())


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot render {value!r} as a TOML value")


def _render_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for tables shaped like the routing table."""
    scalars: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            tables.append(f"[{name}]\n{_render_toml(value, name)}")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                tables.append(f"[[{name}]]\n{_render_toml(item, name)}")
        else:
            scalars.append(f"{key} = {_toml_value(value)}")
    return "\n".join(scalars) + "\n\n" + "\n".join(tables)


def _complaint(
    category: ComplaintCategory,
    *,
    channel: ComplaintChannel = ComplaintChannel.PORTAL,
    source_ref: str = "portal-2026-000123",
    received_at: datetime | None = None,
) -> ComplaintReceived:
    return ComplaintReceived(
        event_id=derive_event_id("portal", source_ref),
        source_system="portal",
        source_ref=source_ref,
        occurred_at=datetime(2026, 11, 28, 10, 15, tzinfo=HOSPITAL_TIME_ZONE),
        received_at=received_at or datetime(2026, 11, 30, 17, 0, tzinfo=UTC),
        channel=channel,
        category=category,
        accused_staff_id="S10086",
        accused_department="PSY-03",
        description="患者家属反映医生收受红包并暗示加价挂号。",
        amount_cny=Decimal("2000.00"),
    )


def _seed_name(name_zh: str) -> str:
    """The department's name as the seed writes it: "医务部（行风办）" -> "医务部"."""
    return re.sub(r"（[^）]*）$", "", name_zh)


def _cooperating_names(case: CaseRouted) -> set[str]:
    return {department.name_zh for department in case.cooperating_departments}


def _refusal(data: dict[str, Any]) -> str:
    with pytest.raises(DataFileError) as refused:
        RoutingTable.from_toml(_render_toml(data))
    return str(refused.value)


def _index_of(data: dict[str, Any], category: str) -> int:
    """1-based position of a category's [[complaint]] entry."""
    return next(
        index
        for index, route in enumerate(data["complaint"], start=1)
        if route["category"] == category
    )


def test_every_complaint_category_has_an_assignment_from_the_seed() -> None:
    assigned = {param.values[0] for param in SEED_ASSIGNMENTS}
    assert assigned == set(ComplaintCategory)


def test_the_test_toml_writer_reproduces_the_real_table() -> None:
    assert RoutingTable.from_toml(_render_toml(_real_data())) == _real_table()


@pytest.mark.parametrize(("category", "seed"), SEED_ASSIGNMENTS)
def test_each_category_goes_to_the_responsible_department_named_in_seed_004(
    category: ComplaintCategory, seed: SeedAssignment
) -> None:
    case = route_complaint(_complaint(category), _real_table(), now=NOW)

    assert case.responsible_department.code == seed.code
    assert _seed_name(case.responsible_department.name_zh) == seed.name_zh
    assert case.category is category


@pytest.mark.parametrize(("category", "seed"), SEED_ASSIGNMENTS)
def test_each_routed_case_cites_the_seed_passage_it_rests_on(
    category: ComplaintCategory, seed: SeedAssignment
) -> None:
    case = route_complaint(_complaint(category), _real_table(), now=NOW)

    assert case.routing_basis.startswith(seed.basis)


@pytest.mark.parametrize(("category", "seed"), SEED_ASSIGNMENTS)
def test_cooperating_departments_are_the_other_functional_and_all_clinical_departments(
    category: ComplaintCategory, seed: SeedAssignment
) -> None:
    case = route_complaint(_complaint(category), _real_table(), now=NOW)

    assert _cooperating_names(case) == SEED_COOPERATING
    cooperating_codes = [department.code for department in case.cooperating_departments]
    assert seed.code not in cooperating_codes
    assert len(cooperating_codes) == len(set(cooperating_codes))


@pytest.mark.parametrize("category", list(ComplaintCategory))
def test_a_mailbox_complaint_also_involves_the_discipline_inspection_office(
    category: ComplaintCategory,
) -> None:
    case = route_complaint(
        _complaint(category, channel=ComplaintChannel.MAILBOX), _real_table(), now=NOW
    )
    plain = route_complaint(_complaint(category), _real_table(), now=NOW)

    assert _cooperating_names(case) == SEED_COOPERATING | {MAILBOX_OFFICE}
    assert case.responsible_department == plain.responsible_department
    assert "004 §四(三)4" in case.routing_basis
    assert plain.routing_basis in case.routing_basis


@pytest.mark.parametrize(
    "channel", [channel for channel in ComplaintChannel if channel is not ComplaintChannel.MAILBOX]
)
def test_complaints_from_other_channels_do_not_involve_the_mailbox_office(
    channel: ComplaintChannel,
) -> None:
    case = route_complaint(
        _complaint(ComplaintCategory.ATTITUDE, channel=channel), _real_table(), now=NOW
    )

    assert MAILBOX_OFFICE not in _cooperating_names(case)
    assert "§四(三)4" not in case.routing_basis
    assert case.channel is channel


def test_the_routed_case_records_the_version_of_the_table_it_used() -> None:
    data = _real_data()
    data["version"] = "2030-01-02.7"

    case = route_complaint(
        _complaint(ComplaintCategory.KICKBACK),
        RoutingTable.from_toml(_render_toml(data)),
        now=NOW,
    )

    assert case.routing_table_version == "2030-01-02.7"


def test_the_real_table_reports_the_version_written_in_the_file() -> None:
    assert _real_table().version == _real_data()["version"]


def test_routing_the_same_complaint_twice_gives_the_same_case_and_event_ids() -> None:
    complaint = _complaint(ComplaintCategory.GAMBLING)

    first = route_complaint(complaint, _real_table(), now=NOW)
    again = route_complaint(complaint, _real_table(), now=NOW + timedelta(hours=5))

    assert again.case_id == first.case_id
    assert again.event_id == first.event_id
    assert first.source_event_id == complaint.event_id


def test_different_complaints_open_different_cases() -> None:
    first = route_complaint(_complaint(ComplaintCategory.GAMBLING), _real_table(), now=NOW)
    other = route_complaint(
        _complaint(ComplaintCategory.GAMBLING, source_ref="portal-2026-000124"),
        _real_table(),
        now=NOW,
    )

    assert other.case_id != first.case_id
    assert other.event_id != first.event_id


def test_the_case_is_opened_when_the_complaint_was_received_and_routed_now() -> None:
    received_at = datetime(2026, 11, 30, 16, 59, 59, tzinfo=UTC)
    now = datetime(2026, 12, 2, 8, 0, tzinfo=HOSPITAL_TIME_ZONE)

    case = route_complaint(
        _complaint(ComplaintCategory.ATTITUDE, received_at=received_at), _real_table(), now=now
    )

    assert case.opened_at == received_at
    assert case.routed_at == now


def test_the_routed_case_carries_the_accused_from_the_complaint() -> None:
    complaint = _complaint(ComplaintCategory.OUTSIDE_PHARMACY)

    case = route_complaint(complaint, _real_table(), now=NOW)

    assert case.accused_staff_id == complaint.accused_staff_id
    assert case.accused_department == complaint.accused_department
    assert isinstance(case.event_id, uuid.UUID)


def test_a_table_missing_a_category_is_refused_naming_the_category() -> None:
    data = _real_data()
    data["complaint"] = [
        route for route in data["complaint"] if route["category"] not in {"gambling", "other"}
    ]

    message = _refusal(data)

    assert "gambling" in message
    assert re.search(r"\bother\b", message)
    assert "kickback" not in message


def test_a_table_listing_a_category_twice_is_refused() -> None:
    data = _real_data()
    kickback = next(route for route in data["complaint"] if route["category"] == "kickback")
    data["complaint"] = [*data["complaint"], {**kickback, "responsible": "medical_affairs"}]

    message = _refusal(data)

    assert "kickback" in message
    assert "twice" in message


def test_a_complaint_entry_with_an_unknown_responsible_department_is_refused() -> None:
    data = _real_data()
    index = _index_of(data, "kickback")
    data["complaint"][index - 1]["responsible"] = "procurement_office"

    message = _refusal(data)

    assert "procurement_office" in message
    assert "complaint" in message
    assert re.search(rf"#{index}\b", message)


def test_a_complaint_entry_with_an_unknown_cooperating_department_is_refused() -> None:
    data = _real_data()
    index = _index_of(data, "attitude")
    data["complaint"][index - 1]["cooperating"] = ["other_functional", "nursing"]

    message = _refusal(data)

    assert "nursing" in message
    assert re.search(rf"#{index}\b", message)


def test_a_channel_entry_with_an_unknown_department_is_refused() -> None:
    data = _real_data()
    data["channel"][0]["add_cooperating"] = ["party_committee"]

    message = _refusal(data)

    assert "party_committee" in message
    assert "channel" in message


def test_a_toml_syntax_error_is_refused_naming_the_line() -> None:
    lines = _real_text().splitlines()
    broken_at = next(i for i, line in enumerate(lines) if line.startswith("version"))
    lines[broken_at] = 'version = "2026-11-26.1'

    with pytest.raises(DataFileError) as refused:
        RoutingTable.from_toml("\n".join(lines))

    assert f"line {broken_at + 1}" in str(refused.value)


def test_an_unknown_key_in_a_complaint_entry_is_refused_naming_the_key() -> None:
    data = _real_data()
    data["complaint"][0]["priority"] = 1

    assert "priority" in _refusal(data)


def test_an_unknown_top_level_key_is_refused_naming_the_key() -> None:
    data = _real_data()
    data["owner"] = "医务部"

    assert "owner" in _refusal(data)


def test_an_unknown_category_is_refused() -> None:
    data = _real_data()
    data["complaint"][0]["category"] = "bribery"

    assert "category" in _refusal(data)


def test_the_refusal_names_the_source_it_was_given() -> None:
    with pytest.raises(DataFileError) as refused:
        RoutingTable.from_toml("version = ", source="routing_table.toml")

    assert "routing_table.toml" in str(refused.value)
