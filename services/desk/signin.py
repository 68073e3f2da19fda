"""Named accounts, sign-in and sessions.

- Passwords are kept as argon2id hashes (argon2-cffi's defaults, RFC 9106's second
  recommended setting); a new or reset account gets a one-time password, replaced by one the
  person chooses at their first sign-in.
- Wrong passwords are counted in the store, per account and per client address, so every desk
  instance counts together and a restart forgets nothing: past the limit within the window, a
  sign-in is refused before the password is even checked (the right one too).
- A session is a random id in an HttpOnly cookie; the store keeps only its SHA-256, with the
  account, its CSRF token and when it was last used. It ends at sign-out, after
  ``session_idle_minutes`` without a request, after ``session_hours`` in all, or as soon as the
  account is disabled.
- Every sign-in, failure, lock-out and sign-out is recorded (``desk_sign_ins``).
"""

import asyncio
import functools
import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.common.departments import DepartmentCatalogue
from services.common.roles import Role
from services.desk.access import Account, Viewer, account_problem
from services.desk.directory import Directory, DirectoryError
from services.desk.store import DeskStore, Session, SignInFailure, SignInRecord

MIN_PASSWORD_LENGTH = 12
HASHER = PasswordHasher()
"""argon2id with argon2-cffi's defaults: RFC 9106's second recommended setting (t=3, 64 MiB)."""


@functools.cache
def nobody() -> str:
    """A hash checked against when the account does not exist, so that costs the same time."""
    return HASHER.hash(secrets.token_urlsafe(16))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def one_time_password() -> str:
    return secrets.token_urlsafe(12)


def viewer_of(account: Account) -> Viewer:
    return Viewer(
        account.username, account.display_name, account.role, account.department, account.staff_id
    )


def password_problem(account: Account, new: str, repeated: str) -> str | None:
    """Why a chosen password will not do (in Chinese and English), or None."""
    if new != repeated:
        return "两次输入的密码不一致 / the two passwords differ"
    if len(new) < MIN_PASSWORD_LENGTH:
        return f"密码至少 {MIN_PASSWORD_LENGTH} 个字符 / at least {MIN_PASSWORD_LENGTH} characters"
    if account.username in new.lower():
        return "密码不能包含用户名 / the password may not contain the username"
    return None


@dataclass(frozen=True)
class Limits:
    """How many failed sign-ins within ``window`` lock out an account, or an address."""

    per_account: int
    per_address: int
    window: timedelta

    def locked_out(self, account_failures: int, address_failures: int) -> bool:
        return account_failures >= self.per_account or address_failures >= self.per_address


@dataclass(frozen=True)
class Attempt:
    """What a sign-in came to: an account, or why not (shown as it is)."""

    account: Account | None
    refusal: Literal["wrong", "locked_out", "directory_down"] | None = None


class Accounts:
    """The accounts (the ``users`` command and the sign-in page both use these)."""

    def __init__(self, store: DeskStore, catalogue: DepartmentCatalogue) -> None:
        self.store = store
        self.catalogue = catalogue

    async def create(
        self,
        username: str,
        *,
        role: Role,
        display_name: str,
        department: str | None,
        staff_id: str | None,
        now: datetime,
    ) -> str:
        """Make a local account; its one-time password. Raises ValueError naming the problem."""
        self.check(username, role, department, staff_id)
        password = one_time_password()
        account = Account(
            username=username,
            display_name=display_name or username,
            role=role,
            department=department,
            staff_id=staff_id,
            password_hash=await asyncio.to_thread(HASHER.hash, password),
            password_expired=True,
            created_at=now,
        )
        if not await self.store.accounts.insert(username, account):
            raise ValueError(f"an account {username!r} exists")
        return password

    def check(self, username: str, role: Role, department: str | None, staff: str | None) -> None:
        problem = account_problem(
            username=username,
            role=role,
            department=department,
            staff_id=staff,
            catalogue=self.catalogue,
        )
        if problem:
            raise ValueError(problem)

    async def get(self, username: str) -> Account:
        account = await self.store.accounts.get(username)
        if account is None:
            raise ValueError(f"no account {username!r}")
        return account

    async def change(self, username: str, **changes: object) -> Account:
        account = (await self.get(username)).model_copy(update=changes)
        await self.store.accounts.put(username, account)
        return account

    async def reset_password(self, username: str) -> str:
        password = one_time_password()
        hashed = await asyncio.to_thread(HASHER.hash, password)
        await self.change(username, password_hash=hashed, password_expired=True, source="local")
        await self.end_sessions(username)
        return password

    async def set_role(
        self, username: str, role: Role, department: str | None, staff_id: str | None
    ) -> None:
        self.check(username, role, department, staff_id)
        await self.change(username, role=role, department=department, staff_id=staff_id)
        await self.end_sessions(username)

    async def disable(self, username: str) -> None:
        await self.change(username, disabled=True)
        await self.end_sessions(username)

    async def end_sessions(self, username: str) -> None:
        """Sessions end anyway once their account changes (``Sessions.current`` reads it);
        this removes them from the store."""
        sessions = await self.store.sessions.find()
        for key, session in sessions.items():
            if session.username == username:
                await self.store.sessions.delete(key)

    async def listed(self) -> list[Account]:
        return sorted((await self.store.accounts.find()).values(), key=lambda a: a.username)

    async def choose_password(self, account: Account, password: str) -> Account:
        hashed = await asyncio.to_thread(HASHER.hash, password)
        return await self.change(account.username, password_hash=hashed, password_expired=False)


@dataclass(eq=False)
class SignIn:
    store: DeskStore
    accounts: Accounts
    _: KW_ONLY
    limits: Limits
    directory: Directory | None
    clock: Callable[[], datetime]

    async def record(self, kind: str, username: str, address: str, detail: str = "") -> None:
        entry = SignInRecord.model_validate(
            {"kind": kind, "username": username, "address": address, "at": self.clock()}
            | {"detail": detail}
        )
        await self.store.sign_ins.insert(str(uuid.uuid4()), entry)

    async def attempt(self, username: str, password: str, address: str) -> Attempt:
        username = username.strip().lower()
        keys = (f"account:{username}", f"address:{address}")
        account_failures, address_failures = await asyncio.gather(
            *(self._recent_failures(key) for key in keys)
        )
        if self.limits.locked_out(account_failures, address_failures):
            await self.record("locked_out", username, address)
            return Attempt(None, "locked_out")
        outcome = await self._check(username, password)
        if outcome.account is not None:
            for failure_id in await self.store.failures.find(key=keys[0]):
                await self.store.failures.delete(failure_id)
            await self.record("signed_in", username, address, outcome.account.source)
            return outcome
        if outcome.refusal == "directory_down":
            await self.record("failed", username, address, "directory unreachable")
            return outcome
        at = self.clock()
        await self.store.failures.insert_many(
            {str(uuid.uuid4()): SignInFailure(key=key, at=at) for key in keys}
        )
        await self.record("failed", username, address)
        return Attempt(None, "wrong")

    async def _check(self, username: str, password: str) -> Attempt:
        account = await self.store.accounts.get(username)
        if account is not None and account.source == "local":
            fits = await _password_fits(account.password_hash, password)
            return Attempt(account if fits and not account.disabled else None)
        if self.directory is not None:
            return await self._directory(username, password, account)
        await _password_fits(nobody(), password)  # as long as a wrong password takes
        return Attempt(None)

    async def _recent_failures(self, key: str) -> int:
        """Failures within the window; older ones are forgotten."""
        since = self.clock() - self.limits.window
        found = await self.store.failures.find(key=key)
        for failure_id, failure in found.items():
            if failure.at <= since:
                await self.store.failures.delete(failure_id)
        return sum(failure.at > since for failure in found.values())

    async def _directory(self, username: str, password: str, known: Account | None) -> Attempt:
        """Ask the directory; keep what it says of the person as their account."""
        assert self.directory is not None  # noqa: S101 (the caller checked)
        try:
            person = await self.directory.authenticate(username, password)
        except DirectoryError:
            return Attempt(None, "directory_down")
        if person is None or (known is not None and known.disabled):
            return Attempt(None)
        try:
            self.accounts.check(username, person.role, person.department, person.staff_id)
        except ValueError:
            return Attempt(None)
        account = Account(
            username=username,
            display_name=person.display_name or username,
            role=person.role,
            department=person.department,
            staff_id=person.staff_id,
            source="directory",
            created_at=known.created_at if known else self.clock(),
        )
        await self.store.accounts.put(username, account)
        return Attempt(account)


async def _password_fits(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        return False
    try:
        return await asyncio.to_thread(HASHER.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(eq=False)
class Sessions:
    store: DeskStore
    _: KW_ONLY
    idle: timedelta
    lifetime: timedelta
    clock: Callable[[], datetime]

    async def start(self, account: Account, address: str) -> tuple[str, Session]:
        """A new session: (its id for the cookie, the session)."""
        session_id, now = secrets.token_urlsafe(32), self.clock()
        session = Session(
            username=account.username,
            created_at=now,
            last_seen_at=now,
            csrf_token=secrets.token_urlsafe(32),
            address=address,
        )
        await self.store.sessions.insert(digest(session_id), session)
        return session_id, session

    async def current(self, session_id: str) -> tuple[Session, Account] | None:
        """The session and its account, or None once it has ended; a request keeps it alive
        (the store is written at most once a minute for that)."""
        key, now = digest(session_id), self.clock()
        session = await self.store.sessions.get(key)
        if session is None:
            return None
        account = await self.store.accounts.get(session.username)
        ended = (
            now - session.last_seen_at > self.idle
            or now - session.created_at > self.lifetime
            or account is None
            or account.disabled
        )
        if ended or account is None:
            await self.store.sessions.delete(key)
            return None
        if now - session.last_seen_at > timedelta(minutes=1):
            session = session.model_copy(update={"last_seen_at": now})
            await self.store.sessions.put(key, session)
        return session, account

    async def end(self, session_id: str) -> Session | None:
        key = digest(session_id)
        session = await self.store.sessions.get(key)
        await self.store.sessions.delete(key)
        return session
