"""Manage report tokens, machines' credentials (roles: conduct_office, department_head, auditor).

    python -m services.reporting.tokens create --role conduct_office --label 行风办张三
    python -m services.reporting.tokens create --role department_head --department finance
    python -m services.reporting.tokens list
    python -m services.reporting.tokens revoke TOKEN_ID

A new token is printed once, at creation, alone on the last line of standard output; only its
SHA-256 is stored.
"""

import argparse
import asyncio
import functools
import sys
from collections.abc import Mapping

from services.common.credentials import GrantOption, Grants, command_line, run_command
from services.common.departments import DepartmentCatalogue
from services.common.documents import MongoDocuments
from services.common.roles import Role
from services.common.store import connect, database
from services.reporting.access import TOKEN_ROLES, grants, report_tokens
from services.reporting.settings import ReportingSettings

KIND = "token"
OPTIONS = (
    GrantOption("--role", "role", "the token's role", choices=[str(role) for role in TOKEN_ROLES]),
    GrantOption(
        "--department", "department", "the department of a department head", required=False
    ),
)


def grants_from(given: Mapping[str, str | None], *, catalogue: DepartmentCatalogue) -> Grants:
    department = given["department"]
    if department is not None and department not in catalogue.departments:
        raise ValueError(f"no department {department!r} in the catalogue")
    return grants(Role(given["role"] or ""), department)


async def run(arguments: argparse.Namespace, settings: ReportingSettings) -> int:
    catalogue = DepartmentCatalogue.from_file(settings.departments)
    mongo = connect(settings)
    return await run_command(
        arguments,
        report_tokens(MongoDocuments(database(mongo, settings)), cache_seconds=0),
        kind=KIND,
        options=OPTIONS,
        grants_from=functools.partial(grants_from, catalogue=catalogue),
        closing=mongo.close,
    )


def main() -> int:
    parser = command_line(
        prog="python -m services.reporting.tokens", doc=__doc__ or "", kind=KIND, options=OPTIONS
    )
    return asyncio.run(run(parser.parse_args(), ReportingSettings()))


if __name__ == "__main__":
    sys.exit(main())
