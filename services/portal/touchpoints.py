"""扫码评价: the touchpoint tokens printed in the QR codes. Pure.

A QR code opens ``/rate/<touchpoint>/<department>/<signature>``: the signature is an HMAC of
the touchpoint and the department with the portal's QR key, so nobody can rate on behalf of
another department or invent a touchpoint by editing the link. It is not a secret (it is
printed on the wall), only proof that the hospital printed that sheet.
"""

import base64
import hmac
from dataclasses import dataclass

from schemas.satisfaction import Touchpoint

_PURPOSE = b"qinglian/touchpoint/v1"
SIGNATURE_CHARACTERS = 22
"""128 bits of the HMAC, base64url."""


@dataclass(frozen=True)
class Sheet:
    """One printed sheet: a touchpoint of a department."""

    touchpoint: Touchpoint
    department: str

    def path(self, key: bytes) -> str:
        return f"/rate/{self.touchpoint}/{self.department}/{signature(key, self)}"


def signature(key: bytes, sheet: Sheet) -> str:
    signed = f"{sheet.touchpoint}\n{sheet.department}".encode()
    mac = hmac.digest(hmac.digest(key, _PURPOSE, "sha256"), signed, "sha256")
    return base64.urlsafe_b64encode(mac).decode()[:SIGNATURE_CHARACTERS]


def verified(
    key: bytes, touchpoint: str, department: str, given: str, departments: set[str]
) -> Sheet | None:
    """The sheet a link names, if the hospital printed it; None for anything else."""
    try:
        sheet = Sheet(Touchpoint(touchpoint), department)
    except ValueError:
        return None
    if department not in departments:
        return None
    if not hmac.compare_digest(signature(key, sheet).encode(), given.encode("utf-8", "replace")):
        return None
    return sheet
