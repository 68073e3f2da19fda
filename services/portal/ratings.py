"""Ratings counted per device, so one phone cannot flood a department's scores: a device (the
portal's long-lived cookie) may rate each sheet ``per_device`` times in a window, and an
address (an IPv6 client: its /64) ``per_address`` times for all sheets together, which bounds
a client that drops its cookie. Counted in the store (services/portal/tally.py) under HMACs
made with the portal's key: the store holds no cookie and no address."""

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.portal.store import PortalStore
from services.portal.tally import Tally
from services.portal.touchpoints import Sheet
from services.portal.wrong_codes import client_of


@dataclass(frozen=True)
class Rater:
    device: str
    address: str


class RatingLimit:
    def __init__(
        self,
        store: PortalStore,
        *,
        key: bytes,
        per_device: int,
        per_address: int,
        window: timedelta,
    ) -> None:
        self.tally = Tally(store.rating_marks, window=window)
        self._mac_key = hmac.digest(key, b"qinglian/rating/v1", "sha256")
        self.per_device = per_device
        self.per_address = per_address

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._mac_key, "\n".join(parts).encode(), "sha256").hexdigest()

    async def take(self, rater: Rater, sheet: Sheet, *, now: datetime) -> bool:
        """Count a rating; whether it was still allowed (counted first, as wrong codes are)."""
        device = self._mac("device", rater.device, sheet.touchpoint, sheet.department)
        address = self._mac("address", client_of(rater.address))
        for key in (device, address):
            await self.tally.add(key, now=now)
        return (
            await self.tally.count(device, now=now) <= self.per_device
            and await self.tally.count(address, now=now) <= self.per_address
        )

    async def forget(self, *, now: datetime) -> None:
        await self.tally.forget(now=now)
