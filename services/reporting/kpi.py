"""KPI status against the targets of 004 §五 (kpi_targets.toml). Pure.

Rates and growths are fractions (0.95 is 95 %). Where no system observed a metric for the
scope and period, the two that Qinglian sees itself are computed: the complaint investigation
rate from the cases, and education coverage from the study sessions.
"""

from collections.abc import Iterable, Sequence
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from schemas.kpi import KpiMetric
from services.common.datafile import DataFile, Location

TARGETS_FILE = Path(__file__).with_name("kpi_targets.toml")


class Comparison(StrEnum):
    AT_LEAST = "at_least"
    AT_MOST = "at_most"


class Unit(StrEnum):
    RATIO = "ratio"
    GROWTH = "growth"
    DAYS = "days"


class KpiTarget(DataFile):
    metric: KpiMetric
    comparison: Comparison
    value: Decimal
    unit: Unit
    basis: str = Field(min_length=1)


class KpiTargets(DataFile):
    version: str
    target: tuple[KpiTarget, ...]

    def cross_check(self) -> Sequence[tuple[Location, str]]:
        metrics = [target.metric for target in self.target]
        problems: list[tuple[Location, str]] = [
            (("target", index, "metric"), f"{metric} is listed again")
            for index, metric in enumerate(metrics)
            if metric in metrics[:index]
        ]
        missing = [str(metric) for metric in KpiMetric if metric not in metrics]
        if missing:
            problems.append((("target",), f"no target for {', '.join(missing)}"))
        return problems


class Status(StrEnum):
    MET = "met"
    SHORTFALL = "shortfall"
    NO_DATA = "no_data"
    OUT_OF_SCALE = "out_of_scale"


STATUS_ZH = {
    Status.MET: "达标",
    Status.SHORTFALL: "未达标",
    Status.NO_DATA: "无数据",
    Status.OUT_OF_SCALE: "数值超出量纲（比率应为 0–1）",
}


class Observation(BaseModel):
    metric: KpiMetric
    scope: str
    period: str
    value: Decimal


class KpiStatus(BaseModel):
    metric: KpiMetric
    label_zh: str
    scope: str
    period: str
    value: Decimal | None
    source: str | None
    """"observed" (sent by a hospital system) or "computed" (by Qinglian), when there is one."""
    target: Decimal
    comparison: Comparison
    unit: Unit
    status: Status
    status_zh: str
    basis: str
    targets_version: str


def _judge(target: KpiTarget, value: Decimal | None) -> Status:
    if value is None:
        return Status.NO_DATA
    if target.unit is Unit.RATIO and not Decimal(0) <= value <= Decimal(1):
        return Status.OUT_OF_SCALE
    met = (
        value >= target.value if target.comparison is Comparison.AT_LEAST else value <= target.value
    )
    return Status.MET if met else Status.SHORTFALL


def kpi_status(
    targets: KpiTargets,
    observations: Iterable[Observation],
    *,
    scope: str,
    period: str,
    computed: dict[KpiMetric, Decimal],
) -> list[KpiStatus]:
    """Each metric's status for ``scope`` in ``period``: the observation if any, else the
    computed value if any, against its target."""
    observed = {
        obs.metric: obs.value for obs in observations if obs.scope == scope and obs.period == period
    }
    statuses = []
    for target in targets.target:
        if target.metric in observed:
            value, source = observed[target.metric], "observed"
        elif target.metric in computed:
            value, source = computed[target.metric], "computed"
        else:
            value, source = None, None
        status = _judge(target, value)
        statuses.append(
            KpiStatus(
                metric=target.metric,
                label_zh=target.metric.label_zh,
                scope=scope,
                period=period,
                value=value,
                source=source,
                target=target.value,
                comparison=target.comparison,
                unit=target.unit,
                status=status,
                status_zh=STATUS_ZH[status],
                basis=target.basis,
                targets_version=targets.version,
            )
        )
    return statuses


def rate(part: int, whole: int) -> Decimal | None:
    """part / whole as an exact fraction to 4 places; none when there is nothing to divide."""
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))
