"""Counting events within a sliding window, as R-REPEAT-COMPLAINT, R-REP-REPEAT and R-RECTIFY
do. Pure."""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

E = TypeVar("E")


def trailing(
    events: Sequence[E], window: timedelta, time_of: Callable[[E], datetime]
) -> list[tuple[E, tuple[E, ...]]]:
    """Each of ``events`` (in time order) with those up to it that lie within ``window``
    before it, itself included."""
    return [
        (event, tuple(e for e in events[: index + 1] if time_of(event) - time_of(e) <= window))
        for index, event in enumerate(events)
    ]
