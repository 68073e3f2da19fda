"""What the services take for a store outage (wait it out) and what for a failing record (dead
letter after a few attempts), on the errors FerretDB on PostgreSQL answers with (their texts
as FerretDB v1.24.2 sent them while the local runtime's PostgreSQL was killed or stopped)."""

import pytest
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure

from services.common.consuming import is_outage


def ferretdb_error(
    errmsg: str, code: int = 1, code_name: str = "InternalError"
) -> OperationFailure:
    return OperationFailure(
        errmsg, code, {"ok": 0.0, "errmsg": errmsg, "code": code, "codeName": code_name}
    )


@pytest.mark.parametrize(
    "errmsg",
    [
        "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109 "
        "postgresql.(*collection).Query] failed to connect to `user=qinglian database=ferretdb`:"
        "\n\t127.0.0.1:25432 (127.0.0.1): dial error: dial tcp 127.0.0.1:25432: connect: "
        "connection refused",
        "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109 "
        "postgresql.(*collection).Query] failed to connect to `user=qinglian database=ferretdb`:"
        "\n\t127.0.0.1:25432 (127.0.0.1): server error: FATAL: the database system is starting "
        "up (SQLSTATE 57P03)",
        "[msg_update.go:133 handler.(*Handler).updateDocument] [query_iterator.go:92 "
        "postgresql.(*queryIterator).Next] FATAL: terminating connection due to unexpected "
        "postmaster exit (SQLSTATE 57P01)",
        "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109 "
        "postgresql.(*collection).Query] FATAL: terminating connection due to administrator "
        "command (SQLSTATE 57P01)",
    ],
)
def test_postgresql_down_under_ferretdb_is_waited_out(errmsg: str) -> None:
    assert is_outage(ferretdb_error(errmsg))


def test_a_lost_connection_to_the_store_is_waited_out() -> None:
    assert is_outage(AutoReconnect("127.0.0.1:27018: connection refused"))


@pytest.mark.parametrize(
    "error",
    [
        DuplicateKeyError("E11000 duplicate key error", 11000, {"code": 11000}),
        ferretdb_error("[msg_insert.go:168] invalid key: '$set' (key must not start with '$')"),
        ferretdb_error("Document failed validation", 121, "DocumentValidationFailure"),
    ],
)
def test_an_error_of_the_record_itself_is_no_outage(error: OperationFailure) -> None:
    assert not is_outage(error)
