"""Wrong follow-up codes, counted so that guessing a code is slowed down.

- Counted in the store, so every intake instance sees the same count and a restart forgets
  nothing: one inserted document per wrong code (a fresh ``_id`` is inserted atomically on
  FerretDB and MongoDB alike; FerretDB 1.x makes neither ``$inc`` nor a conditional update
  atomic), counted over the last window.
- Counted per client address and code group (the first hex digit of the code's SHA-256, so
  16 groups). Many reporters can share one address (a proxy, the hospital's Wi-Fi): wrong codes
  from there lock out only the codes of their own group, not everyone behind it.
- The store holds an HMAC of the address and group, never the address nor any of the code.
"""

import ipaddress
from datetime import datetime, timedelta

from services.common.tokens import token_digest
from services.intake.crypto import Vault
from services.intake.repository import IntakeStore


def code_group(code: str) -> str:
    """The group a code's wrong attempts are counted in."""
    return token_digest(code)[0]


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
        self, store: IntakeStore, vault: Vault, *, allowed: int, window: timedelta
    ) -> None:
        self.store = store
        self.vault = vault
        self.allowed = allowed
        self.window = window

    def key(self, address: str, code: str) -> str:
        return self.vault.fingerprint(
            f"wrong-follow-up-code\n{client_of(address)}\n{code_group(code)}".encode()
        )

    async def exhausted(self, key: str, *, now: datetime) -> bool:
        """No answer about any code of this group for this client until the window moves on."""
        return await self.store.wrong_codes_since(key, since=now - self.window) >= self.allowed

    async def still_allowed_after(self, key: str, *, now: datetime) -> bool:
        """Count one more wrong code; whether it was still within the limit. Counted before
        it is judged, so guesses sent at once are counted one by one, not all let through."""
        await self.store.add_wrong_code(key, at=now, forget_before=now - self.window)
        return await self.store.wrong_codes_since(key, since=now - self.window) <= self.allowed
