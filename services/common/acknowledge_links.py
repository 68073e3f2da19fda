"""Acknowledge links (确认收到): signed, expiring tokens the notifier puts in each
notification and the desk checks at ``/ack/{token}``, with a key both are given
(``QINGLIAN_ACK_LINK_KEY_FILE``). Pure.

A token names the notification it acknowledges and when it stops working, and is signed with
HMAC-SHA256: nobody without the key can make one, or change what one says. Single use is the
desk's: the first acknowledgement of a notification is recorded (first writer wins), later
ones are answered as already acknowledged.
"""

import base64
import hashlib
import hmac
import re
import uuid
from datetime import UTC, datetime

_TOKEN = re.compile(r"([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


class LinkRefusedError(ValueError):
    """A token that is forged, damaged or expired; the message says which, for the person."""


def _mac(payload: str, key: bytes) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(notification_id: uuid.UUID, expires_at: datetime, key: bytes) -> str:
    payload = f"{notification_id.hex}.{int(expires_at.timestamp())}"
    return f"{payload}.{_mac(payload, key)}"


def verify(token: str, key: bytes, *, now: datetime) -> uuid.UUID:
    """The notification ``token`` acknowledges; LinkRefusedError if forged, damaged or expired."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise LinkRefusedError("链接无效 (the link is damaged)")
    notification_hex, expires, mac = match.groups()
    if not hmac.compare_digest(mac, _mac(f"{notification_hex}.{expires}", key)):
        raise LinkRefusedError("链接无效 (the link is not one Qinglian made)")
    if now >= datetime.fromtimestamp(int(expires), UTC):
        raise LinkRefusedError("链接已过期 (the link has expired)")
    return uuid.UUID(notification_hex)


DEVELOPMENT_KEY = b"qinglian development acknowledge links: never in production"
"""The key local runs and tests sign with when no key file is given (refused in production:
the notifier's and the desk's settings require QINGLIAN_ACK_LINK_KEY_FILE there)."""
