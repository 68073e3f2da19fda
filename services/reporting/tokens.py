"""Manage report tokens (roles: conduct_office, department_head, auditor).

    python -m services.reporting.tokens create --role conduct_office --label 行风办张三
    python -m services.reporting.tokens create --role department_head --department finance
    python -m services.reporting.tokens list
    python -m services.reporting.tokens revoke TOKEN_ID

A new token is printed once, at creation; only its SHA-256 is stored.
"""

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from services.common.departments import DepartmentCatalogue
from services.common.store import connect, database
from services.reporting.access import ReportTokens, Role
from services.reporting.repository import ReportRepository
from services.reporting.settings import ReportingSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.reporting.tokens",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a token and print it once")
    create.add_argument("--role", required=True, choices=[str(role) for role in Role])
    create.add_argument("--department", help="the department of a department head")
    create.add_argument("--label", default="", help="who holds the token, for the list")
    commands.add_parser("list", help="list tokens (never the tokens themselves)")
    revoke = commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    return parser


async def run(arguments: argparse.Namespace, settings: ReportingSettings) -> int:
    if arguments.command == "create" and arguments.department is not None:
        catalogue = DepartmentCatalogue.from_file(settings.departments)
        if arguments.department not in catalogue.departments:
            print(f"no department {arguments.department!r} in the catalogue", file=sys.stderr)
            return 2
    mongo = connect(settings)
    reports = ReportRepository(database(mongo, settings))
    try:
        if arguments.command == "create":
            try:
                token_id, token = await ReportTokens(reports, cache_seconds=0).create(
                    role=Role(arguments.role),
                    department=arguments.department,
                    label=arguments.label,
                    now=datetime.now(UTC),
                )
            except ValueError as error:
                print(error, file=sys.stderr)
                return 2
            print(f"token id {token_id}: {arguments.role}", file=sys.stderr)
            print("store this token now; it cannot be shown again:", file=sys.stderr)
            print(token)
        elif arguments.command == "list":
            for record in await reports.list_tokens():
                revoked = record["revoked_at"]
                state = f"revoked {revoked:%Y-%m-%d}" if revoked else "active"
                print(
                    f"{record['_id']}  {record['role']:<16} {record.get('department') or '-':<22}"
                    f" {state:<18} {record['label']}"
                )
        elif not await reports.revoke_token(arguments.token_id, at=datetime.now(UTC)):
            print(f"no active token {arguments.token_id}", file=sys.stderr)
            return 1
        else:
            print(f"revoked {arguments.token_id}", file=sys.stderr)
        return 0
    finally:
        await mongo.close()


def main() -> int:
    return asyncio.run(run(_parser().parse_args(), ReportingSettings()))


if __name__ == "__main__":
    sys.exit(main())
