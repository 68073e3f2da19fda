"""Wrong follow-up codes, counted so that guessing a code is slowed down.

- Counted in the store (services/portal/tally.py), so every portal instance sees the same
  count and a restart forgets nothing.
- Counted per client address and code group (the first hex digit of the code's SHA-256, so
  16 groups). Many reporters can share one address (a proxy, the hospital's Wi-Fi): wrong codes
  from there lock out only the codes of their own group, not everyone behind it.
- The store holds an HMAC of the address and group, never the address nor any of the code;
  what is older than the window is forgotten (``forget``, every window).
"""

import hmac
import ipaddress
from datetime import datetime, timedelta

from services.common.credentials import digest
from services.portal.store import Attempt, PortalStore
from services.portal.tally import Tally


def code_group(code: str) -> str:
    """The group a code's wrong attempts are counted in."""
    return digest(code)[0]


def client_of(address: str) -> str:
    """Who a wrong code is counted against: an IPv4 address, or an IPv6 /64 network (one
    subscriber's: the addresses inside it cost nothing to change)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # not an address (a test client's name): counted as it is
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class WrongCodeLimit:
    """``allowed`` wrong codes per client and code group in any ``window``, then 429."""

    def __init__(
        self, store: PortalStore, *, address_key: bytes, allowed: int, window: timedelta
    ) -> None:
        self.tally = Tally(store.wrong_codes, window=window)
        self._mac_key = hmac.digest(address_key, b"qinglian/wrong-follow-up-code/v1", "sha256")
        self.allowed = allowed
        self.window = window

    def key(self, address: str, code: str) -> str:
        counted = f"{client_of(address)}\n{code_group(code)}".encode()
        return hmac.new(self._mac_key, counted, "sha256").hexdigest()

    async def exhausted(self, key: str, *, now: datetime) -> bool:
        """No answer about any code of this group for this client until the window moves on."""
        return await self.tally.count(key, now=now) >= self.allowed

    async def still_allowed_after(self, key: str, *, now: datetime) -> bool:
        """Count one more wrong code; whether it was still within the limit. Each of the
        window's ``allowed`` answers is a numbered slot, claimed by inserting it (refused
        atomically to all but one writer): of guesses sent at once, exactly as many as slots
        are left are answered, never more and never none."""
        window = int(now.timestamp() // self.window.total_seconds())
        for slot in range(self.allowed):
            if await self.tally.records.insert(f"{key}|{window}|{slot}", Attempt(key=key, at=now)):
                return True
        await self.tally.add(key, now=now)  # a refused guess keeps the client waiting too
        return False

    async def forget(self, *, now: datetime) -> None:
        await self.tally.forget(now=now)
