"""MongoDB through PyMongo's async client."""

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from services.common.settings import ServiceSettings

T = TypeVar("T")
Document = dict[str, Any]
"""A BSON document as PyMongo reads and writes it."""


def connect(settings: ServiceSettings) -> AsyncMongoClient[Document]:
    """A client that connects lazily; UTC-aware datetimes in and out.

    Logs in with the user and password from their files when the settings name them
    (authenticated against ``admin``, where the production user is created); the URL may
    come from a file too. PyMongo's repr and errors show neither.
    """
    login: dict[str, Any] = {}
    if (credentials := settings.mongo_credentials()) is not None:
        username, password = credentials
        login = {
            "username": username.get_secret_value(),
            "password": password.get_secret_value(),
            "authSource": "admin",
        }
    return AsyncMongoClient(
        settings.mongo_client_url().get_secret_value(),
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        appname="qinglian",
        **login,
    )


def database(
    client: AsyncMongoClient[Document], settings: ServiceSettings
) -> AsyncDatabase[Document]:
    return client[settings.mongo_db]


BULK_CHUNK = 10
"""Statements per bulk write. FerretDB 1.24 keeps each update statement's read of its document
open, holding a connection to PostgreSQL, until the whole command ends, and needs one more to
write: a bulk update of N statements takes N + 1 of its pool's connections (90 on the local
runtime), and one that cannot get them waits forever, with every other request behind it."""


BACKEND_UNREACHABLE = (
    "failed to connect to",  # FerretDB could not open a connection to PostgreSQL
    "(SQLSTATE 57P",  # PostgreSQL shutting down, crashed, or still starting up
    "(SQLSTATE 08",  # PostgreSQL's connection exceptions
    "unexpected EOF",  # the connection to PostgreSQL died mid-query
)
"""What FerretDB's errors (code 1, InternalError) say when the PostgreSQL below it is down."""


def is_unreachable(error: PyMongoError) -> bool:
    """The store cannot be reached: no connection to it, or, on the local runtime, FerretDB
    answers but the PostgreSQL it keeps its data in does not."""
    if isinstance(error, ConnectionFailure):
        return True
    details = error.details if isinstance(error, OperationFailure) else None
    return any(sign in f"{error} {details}" for sign in BACKEND_UNREACHABLE)


def is_transient(error: PyMongoError) -> bool:
    """Errors worth trying again: the store could not be reached, or was busy.

    FerretDB's SQLite backend answers "database is locked" when two writers meet; MongoDB
    marks its own retryable errors with a label.
    """
    if is_unreachable(error) or error.has_error_label("RetryableWriteError"):
        return True
    details = error.details if isinstance(error, OperationFailure) else None
    return "database is locked" in f"{error} {details}"


async def retry_transient(operation: Callable[[], Awaitable[T]], *, attempts: int = 8) -> T:
    """Run ``operation``, again after a short, growing, jittered pause on a transient error.

    Only for operations that are safe to repeat (upserts, inserts keyed by id). A store that
    could not be reached within the client's server selection timeout is down, not blinking:
    that error is raised at once, so intake answers 503 in seconds, not after every attempt's
    timeout, and a handler's retry pauses instead (``services.common.broker``).
    """
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except PyMongoError as error:
            down = isinstance(error, ServerSelectionTimeoutError)
            if attempt == attempts or down or not is_transient(error):
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 (jitter)
    raise AssertionError("unreachable")
