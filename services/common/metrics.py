"""A service's metrics, listed in a data file beside its code (``metrics.toml``: each metric's
name, help text and labels, read through ``services/common/datafile.py``). The file is what
dashboards and alert rules refer to; the service's metrics class (a frozen dataclass deriving
from ``ServiceMetrics``, a field a metric) is what its code counts with."""

import dataclasses
import sys
from functools import cache
from pathlib import Path
from typing import Any, Literal, Self

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.common.datafile import DataFile, DataFileError

KINDS: dict[str, type[Counter] | type[Gauge]] = {"counter": Counter, "gauge": Gauge}


class Metric(DataFile):
    kind: Literal["counter", "gauge"]
    name: str
    help: str
    labels: tuple[str, ...] = ()


class MetricsFile(DataFile):
    metrics: dict[str, Metric]
    """By the field of the metrics class that holds each one."""


@cache
def listed(path: Path) -> MetricsFile:
    return MetricsFile.from_file(path)


class ServiceMetrics:
    """The base of a service's metrics class, whose fields are the metrics that the
    ``metrics.toml`` beside its module lists."""

    @classmethod
    def on(cls, registry: CollectorRegistry) -> Self:
        """Each metric made in ``registry``. A file that lists a metric the class lacks, lacks
        one it has, or gives one another kind than its field's type is refused
        (DataFileError)."""
        path = Path(str(sys.modules[cls.__module__].__file__)).with_name("metrics.toml")
        metrics = listed(path).metrics
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a dataclass")
        types = {field.name: field.type for field in dataclasses.fields(cls)}
        mismatched = sorted(
            name
            for name in types.keys() | metrics.keys()
            if name not in metrics or KINDS[metrics[name].kind] is not types.get(name)
        )
        if mismatched:
            raise DataFileError(
                f"{path.name}: not what {cls.__name__} holds: {', '.join(mismatched)}"
            )
        made: dict[str, Any] = {
            field: KINDS[metric.kind](metric.name, metric.help, metric.labels, registry=registry)
            for field, metric in metrics.items()
        }
        return cls(**made)
