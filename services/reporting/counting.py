"""Event counts that stay exact under redelivery, replay and two instances. Pure.

A count document holds the counts of one topic partition in one month and the last offset it
counted. A partition is read in order and its offsets are committed only after they were
handled, so every record up to that offset was counted, and a record counts only if its
offset is past it. The document is changed only over the revision it was read at (the store's
versioned documents): two instances that read it at once cannot both count.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from services.reporting.facts import CountKey


class Tally(BaseModel, frozen=True):
    key: CountKey
    count: int


class CountDocument(BaseModel):
    topic: str
    partition: int
    month: str
    offset: int
    """The last offset counted."""
    tallies: tuple[Tally, ...] = ()


def count_document_id(topic: str, partition: int, month: str) -> str:
    return f"{topic}|{partition}|{month}"


@dataclass(frozen=True)
class Countable:
    """A record to count: its place in its partition, and what it adds one to."""

    topic: str
    partition: int
    offset: int
    key: CountKey

    @property
    def document_id(self) -> str:
        return count_document_id(self.topic, self.partition, self.key.month)


def _ordered(counts: Counter[CountKey]) -> tuple[Tally, ...]:
    return tuple(
        Tally(key=key, count=n)
        for key, n in sorted(counts.items(), key=lambda item: item[0].order())
    )


def counted_up_to(document: CountDocument | None) -> int:
    return -1 if document is None else document.offset


def fold(
    document: CountDocument | None, records: Sequence[Countable]
) -> tuple[CountDocument, list[Countable]] | None:
    """``document`` (None: none yet) with those of ``records`` (all of one document) that are
    past its offset counted, and those records; None when every one was counted before."""
    fresh = sorted(
        (record for record in records if record.offset > counted_up_to(document)),
        key=lambda record: record.offset,
    )
    if not fresh:
        return None
    counts = Counter({tally.key: tally.count for tally in document.tallies} if document else {})
    counts.update(record.key for record in fresh)
    first = fresh[0]
    changed = CountDocument(
        topic=first.topic,
        partition=first.partition,
        month=first.key.month,
        offset=fresh[-1].offset,
        tallies=_ordered(counts),
    )
    return changed, fresh


def month_totals(documents: Iterable[CountDocument]) -> list[tuple[CountKey, int]]:
    """The counts of every partition's documents added up, by key."""
    totals: Counter[CountKey] = Counter()
    for document in documents:
        for tally in document.tallies:
            totals[tally.key] += tally.count
    return [(tally.key, tally.count) for tally in _ordered(totals)]
