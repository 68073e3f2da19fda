"""Prometheus metrics by name, as declared in ``metrics.toml``: one place says what each
metric is, its help and its labels; a service creates the ones it exports by name, one at a
time or as the fields of a ``Metrics`` dataclass."""

from dataclasses import field, fields
from functools import cache
from pathlib import Path
from typing import Any, Literal, Self, TypeVar, get_type_hints

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import BaseModel, ConfigDict

from services.common.datafile import DataFile

CATALOGUE_FILE = Path(__file__).with_name("metrics.toml")

Kind = Literal["counter", "gauge", "histogram"]


class Declared(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = Histogram.DEFAULT_BUCKETS
    """A histogram's buckets, in seconds."""


class Catalogue(DataFile):
    """services/common/metrics.toml"""

    metric: dict[str, Declared]


@cache
def catalogue() -> Catalogue:
    return Catalogue.from_file(CATALOGUE_FILE)


M = TypeVar("M", Counter, Gauge, Histogram)
_KINDS: dict[type, Kind] = {Counter: "counter", Gauge: "gauge", Histogram: "histogram"}


def _made(kind: type[M], name: str, registry: CollectorRegistry) -> M:
    declared = catalogue().metric[name]
    if declared.kind != _KINDS[kind]:
        raise TypeError(f"{name} is declared a {declared.kind}, not a {_KINDS[kind]}")
    options: dict[str, Any] = {"buckets": declared.buckets} if kind is Histogram else {}
    made: M = kind(name, declared.help, declared.labels, registry=registry, **options)
    return made


def counter(name: str, registry: CollectorRegistry) -> Counter:
    return _made(Counter, name, registry)


def gauge(name: str, registry: CollectorRegistry) -> Gauge:
    return _made(Gauge, name, registry)


def metric(name: str) -> Any:
    """A field of a ``Metrics`` dataclass: the metric ``name`` of metrics.toml."""
    return field(metadata={"metric": name})


class Metrics:
    """The base of a dataclass whose fields (``metric(name)``, typed Counter, Gauge or
    Histogram) are a service's metrics."""

    @classmethod
    def on(cls, registry: CollectorRegistry) -> Self:
        types = get_type_hints(cls)
        made = {
            each.name: _made(types[each.name], each.metadata["metric"], registry)
            for each in fields(cls)  # type: ignore[arg-type]
        }
        return cls(**made)
