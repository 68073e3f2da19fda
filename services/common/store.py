"""MongoDB through PyMongo's async client."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import ServiceSettings

Document = dict[str, Any]
"""A BSON document as PyMongo reads and writes it."""


def connect(settings: ServiceSettings) -> AsyncMongoClient[Document]:
    """A client that connects lazily; UTC-aware datetimes in and out."""
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        appname="qinglian",
    )


def database(
    client: AsyncMongoClient[Document], settings: ServiceSettings
) -> AsyncDatabase[Document]:
    return client[settings.mongo_db]
