"""KPI observations from the quality, medical-insurance and registration systems.

The metrics are the targets of 004 §五 (整治目标); reporting compares each observation with
its target.
"""

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas.base import YEAR_PATTERN, Code, Contract, Event, Submission
from schemas.labels import LabelledEnum


class KpiMetric(LabelledEnum):
    COMPLAINT_INVESTIGATION_RATE = "complaint_investigation_rate", "投诉查处率"
    EDUCATION_COVERAGE = "education_coverage", "教育覆盖率"
    CLINICAL_HEAD_WARNING_EDUCATION = "clinical_head_warning_education", "临床科室主任警示教育率"
    EXPERT_SLOTS_GROWTH = "expert_slots_growth", "专家号同比增长"
    DAY_SURGERY_GROWTH = "day_surgery_growth", "日间手术同比增长"
    TEST_MUTUAL_RECOGNITION = "test_mutual_recognition", "检查结果互认率"
    CATALOGUE_DRUG_USE = "catalogue_drug_use", "医保目录或集采药品使用率"
    INPATIENT_WAIT_DAYS = "inpatient_wait_days", "住院患者平均等待天数"
    ETHICS_IN_PROMOTION_RULES = "ethics_in_promotion_rules", "医德医风纳入提职晋级比例"


Period = Annotated[
    str,
    StringConstraints(pattern=rf"^{YEAR_PATTERN}(-(0[1-9]|1[0-2]))?$"),
    Field(description="The month (YYYY-MM) or year (YYYY) observed.", examples=["2026-11", "2026"]),
]


class KpiObservationFacts(Contract):
    metric: KpiMetric
    scope: Code = Field(description='A department code, or "hospital" for the whole hospital.')
    period: Period
    value: Decimal = Field(
        allow_inf_nan=False,
        max_digits=16,
        decimal_places=6,
        description="The observed value, exact: a rate, a year-on-year growth or a number of days, "
        "as the metric measures it.",
    )


class KpiObservationSubmission(Submission, KpiObservationFacts):
    """An observation as the source system sends it."""

    event_type: Literal["kpi_observation"] = "kpi_observation"


class KpiObservationReceived(Event, KpiObservationFacts):
    """An observation accepted by intake."""

    event_type: Literal["kpi_observation"] = "kpi_observation"
    schema_version: Literal[1] = 1
