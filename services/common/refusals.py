"""How a service that takes requests from other systems or from people refuses one, the same
way everywhere (intake, portal):

- a body that does not match its schema: 422 naming each field and reason, without echoing
  the submitted values back (they may hold a complainant's phone number);
- a body that is not UTF-8, not readable as JSON or nested too deeply: 400 naming the body;
- a body larger than allowed: 413, refused before it is read (``BodySizeLimit``);
- the store unreachable where no route catches it (a credential not remembered, a code): 503,
  like any outage, never a 500.
"""

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException

from schemas.dead_letter import problems_of
from services.common.body_limit import BodySizeLimit
from services.common.store import is_unreachable


def refuse_plainly(app: FastAPI, *, max_body_bytes: int, by_path: dict[str, int]) -> None:
    """Answer refusals as this module says; ``by_path`` overrides the body limit of a path."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _unreadable_body)
    app.add_exception_handler(PyMongoError, _store_unavailable)
    app.add_middleware(BodySizeLimit, limit=max_body_bytes, by_path=by_path)


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, RequestValidationError):
        raise error
    problems = problems_of(error.errors())
    return JSONResponse({"detail": [p.model_dump() for p in problems]}, status_code=422)


async def _store_unavailable(_: Request, error: Exception) -> JSONResponse:
    if not (isinstance(error, PyMongoError) and is_unreachable(error)):
        raise error
    return JSONResponse(
        {"detail": "the store is unavailable; nothing was accepted, retry later"},
        status_code=503,
    )


async def _unreadable_body(request: Request, error: Exception) -> Response:
    """FastAPI answers 400 when it cannot read a body as JSON; say why, naming the body."""
    if isinstance(error, HTTPException) and error.status_code == 400:
        if isinstance(error.__cause__, UnicodeDecodeError):
            reason = "the body is not valid UTF-8"
        elif isinstance(error.__cause__, RecursionError):
            reason = "the body is nested too deeply"
        elif isinstance(error.__cause__, ValueError):  # e.g. a number with thousands of digits
            reason = "the body could not be read as JSON"
        else:
            return await http_exception_handler(request, error)
        return JSONResponse({"detail": [{"field": "body", "reason": reason}]}, status_code=400)
    if isinstance(error, HTTPException) and error.status_code == 413:  # a streamed body too long
        return JSONResponse(
            {"detail": [{"field": "body", "reason": error.detail}]}, status_code=413
        )
    if not isinstance(error, HTTPException):
        raise error
    return await http_exception_handler(request, error)
