"""What tests look for in the log: every record, at every level, and the forms a text would
take there."""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def every_log_record_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """caplog at DEBUG for every logger, including those with their own level or handlers."""
    caplog.set_level(logging.DEBUG)
    loggers = [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    isolated = [logger for logger in loggers if not logger.propagate]
    for logger in loggers:
        if logger.level != logging.NOTSET:
            caplog.set_level(logging.DEBUG, logger=logger.name)
    for logger in isolated:
        logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        for logger in isolated:
            logger.removeHandler(caplog.handler)


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every log line written, with tracebacks, as one text."""
    lines = [caplog.text, *(record.getMessage() for record in caplog.records)]
    assert len(lines) > 2, "nothing was logged: the log check would prove nothing"
    return "\n".join(lines)


def echoes_of(value: str) -> set[str]:
    """How a string could show up in an answer or a log: as itself, JSON-escaped, or as
    Python repr."""
    return {value, json.dumps(value)[1:-1], repr(value)[1:-1]}
