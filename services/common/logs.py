"""Structured logs: one JSON object per line, with the event id and case id of the message
being handled on every line written while handling it.

Nothing here logs message bodies; complainants' contact details never reach Kafka, and intake
never logs them (tested).
"""

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from faststream.middlewares import BaseMiddleware
from pythonjsonlogger.json import JsonFormatter

_event_id: ContextVar[str | None] = ContextVar("event_id", default=None)
_case_id: ContextVar[str | None] = ContextVar("case_id", default=None)


class _Correlation(logging.Filter):
    """Adds the service, and the event and case being handled, to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.event_id = _event_id.get()
        record.case_id = _case_id.get()
        return True


def configure_logging(service: str, level: str) -> None:
    """JSON lines on stdout for the whole process (uvicorn and FastStream included)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}{service}{event_id}{case_id}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    )
    handler.addFilter(_Correlation(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings become log lines too, not bare text on stderr


@contextmanager
def correlated(event_id: object | None, case_id: object | None) -> Iterator[None]:
    """Log lines written inside carry these ids."""
    event_token = _event_id.set(None if event_id is None else str(event_id))
    case_token = _case_id.set(None if case_id is None else str(case_id))
    try:
        yield
    finally:
        _event_id.reset(event_token)
        _case_id.reset(case_token)


def ids_of(value: object) -> tuple[Any, Any]:
    """The event id and case id a record's value carries, if any."""
    if isinstance(value, bytes):
        return _ids(value)
    return getattr(value, "event_id", None), getattr(value, "case_id", None)


def _ids(body: bytes) -> tuple[Any, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        return None, None
    if not isinstance(document, dict):
        return None, None
    return document.get("event_id"), document.get("case_id")


class CorrelationMiddleware(BaseMiddleware):
    """Sets the event id and case id of each consumed message for the log lines it causes,
    FastStream's "Received" and "Processed" included.

    Set on receipt and left until the next message of the same consumer task, because
    FastStream writes "Processed" after the middlewares have exited.
    """

    async def on_receive(self) -> None:
        value = getattr(self.msg, "value", None)
        event_id, case_id = _ids(value) if isinstance(value, bytes) else (None, None)
        _event_id.set(None if event_id is None else str(event_id))
        _case_id.set(None if case_id is None else str(case_id))
