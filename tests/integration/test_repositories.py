"""Repositories against the real MongoDB-wire store: writes are idempotent and order-free."""

from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from schemas.case import CaseUpdated
from services.common.store import Document
from services.router.repository import CaseRepository
from tests.factories import complaint_event, routed_case

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _next_revision(case: CaseUpdated, **changes: object) -> CaseUpdated:
    return case.model_copy(update={"revision": case.revision + 1, **changes})


async def test_a_case_is_opened_once(store: AsyncDatabase[Document]) -> None:
    cases = CaseRepository(store)
    case = routed_case(complaint_event(source_ref="R-1"), now=NOW)

    assert await cases.open(case)
    assert not await cases.open(case.model_copy(update={"updated_at": NOW.replace(hour=9)}))
    assert await cases.get(case.case_id) == case
    assert await store["router_cases"].count_documents({}) == 1


async def test_a_change_is_saved_only_over_the_revision_it_was_made_from(
    store: AsyncDatabase[Document],
) -> None:
    cases = CaseRepository(store)
    case = routed_case(complaint_event(source_ref="R-2"), now=NOW)
    await cases.open(case)
    first = _next_revision(case, updated_at=NOW + timedelta(hours=1))
    rival = _next_revision(case, updated_at=NOW + timedelta(hours=2))

    assert await cases.save(first)
    assert not await cases.save(rival)  # computed from revision 1, which is gone
    assert await cases.get(case.case_id) == first


async def test_an_update_parks_until_its_case_opens_and_not_after(
    store: AsyncDatabase[Document],
) -> None:
    cases = CaseRepository(store)
    case = routed_case(complaint_event(source_ref="R-3"), now=NOW)
    update = {"kind": "finding", "at": NOW.isoformat(), "event": {"x": 1}}

    assert await cases.park(case.case_id, "e-1", update)
    assert await cases.get(case.case_id) is None  # a placeholder is not a case
    assert await cases.open(case)  # opens over the placeholder
    assert await cases.parked(case.case_id) == {"e-1": update}
    assert not await cases.park(case.case_id, "e-2", update)  # the case is open now
    await cases.unpark(case.case_id, ["e-1"])
    assert await cases.parked(case.case_id) == {}
    assert await cases.get(case.case_id) == case


async def test_a_related_key_is_claimed_once_and_replaced_only_from_its_holder(
    store: AsyncDatabase[Document],
) -> None:
    cases = CaseRepository(store)

    assert await cases.claim_related("D1|kickback", "CASE-A", replacing=None)
    assert not await cases.claim_related("D1|kickback", "CASE-B", replacing=None)
    assert not await cases.claim_related("D1|kickback", "CASE-B", replacing="CASE-X")
    assert await cases.claim_related("D1|kickback", "CASE-B", replacing="CASE-A")
    assert await cases.related_case("D1|kickback") == "CASE-B"
