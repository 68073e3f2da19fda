"""Secrets intake keeps: complainants' contact details, follow-up codes, API keys.

- Contact details and follow-up codes are sealed with AES-GCM (authenticated encryption),
  bound to the event they belong to, so a sealed value cannot be moved to another record.
- A submission's fingerprint is an HMAC, not a plain hash: a plain hash of a phone number
  could be reversed by trying every number.
- Follow-up codes and API keys are long random tokens; only their SHA-256 is used to find them.
"""

import base64
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE_BYTES = 12
_SEAL_VERSION = b"\x01"


class SealError(ValueError):
    """A sealed value could not be opened: wrong key, or it was altered."""


def new_key() -> str:
    """A fresh master key, base64: what QINGLIAN_CONTACT_KEY holds."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def parse_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as error:
        raise ValueError("the contact key is not base64") from error
    if len(key) != KEY_BYTES:
        raise ValueError(f"the contact key must be {KEY_BYTES} bytes, base64-encoded")
    return key


class Vault:
    """Seals and opens private values, and fingerprints submissions, with one master key."""

    def __init__(self, master_key: bytes) -> None:
        # Separate keys for separate purposes, derived from the master key.
        self._aead = AESGCM(hmac.digest(master_key, b"qinglian/seal/v1", "sha256"))
        self._mac_key = hmac.digest(master_key, b"qinglian/fingerprint/v1", "sha256")

    def seal(self, plaintext: bytes, *, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _SEAL_VERSION + nonce + self._aead.encrypt(nonce, plaintext, bound_to.encode())

    def open(self, sealed: bytes, *, bound_to: str) -> bytes:
        if sealed[:1] != _SEAL_VERSION:
            raise SealError("unknown seal version")
        nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, bound_to.encode())
        except Exception as error:  # cryptography raises InvalidTag; never say more
            raise SealError("cannot open sealed value") from error

    def fingerprint(self, canonical: bytes) -> str:
        return hmac.new(self._mac_key, canonical, "sha256").hexdigest()


FOLLOW_UP_PREFIX = "QL-"


def new_follow_up_code() -> str:
    """About 190 random bits: guessing one is hopeless, and wrong guesses are rate-limited."""
    return FOLLOW_UP_PREFIX + secrets.token_urlsafe(24)


API_KEY_PREFIX = "qlk"
