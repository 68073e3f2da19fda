"""The desk's accounts, on the command line::

    python -m services.desk.users create USERNAME --role ROLE [--department CODE]
                                         [--staff-id ID] [--name 姓名]
    python -m services.desk.users list
    python -m services.desk.users disable USERNAME
    python -m services.desk.users reset-password USERNAME
    python -m services.desk.users set-role USERNAME --role ROLE [--department CODE] [--staff-id ID]

``create`` and ``reset-password`` print a one-time password alone on the last line of standard
output (everything else goes to standard error): give it to the person, who chooses their own
at the first sign-in. Roles: conduct_office 行风办, discipline_inspection 纪检监察室,
department_head 科室负责人 (with the department they head and their staff number, as in
services/common/departments.toml), leadership 院领导, auditor 审计, admin.
"""

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from services.common.departments import DepartmentCatalogue
from services.common.documents import MongoDocuments
from services.common.roles import Role
from services.common.store import connect, database
from services.desk.settings import DeskSettings
from services.desk.signin import Accounts
from services.desk.store import DeskStore


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="python -m services.desk.users",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = made.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make an account; prints its one-time password")
    set_role = commands.add_parser("set-role", help="change an account's role")
    for command in (create, set_role):
        command.add_argument("username")
        command.add_argument("--role", required=True, choices=[str(role) for role in Role])
        command.add_argument("--department", help="a department head's department (its code)")
        command.add_argument("--staff-id", help="the person's staff number (工号)")
    create.add_argument("--name", default="", help="the name shown on the desk (姓名)")
    commands.add_parser("list", help="list the accounts (never a password)")
    for name, text in (
        ("disable", "disable an account; its sessions end"),
        ("reset-password", "give an account a new one-time password; its sessions end"),
    ):
        commands.add_parser(name, help=text).add_argument("username")
    return made


async def run(arguments: argparse.Namespace, accounts: Accounts) -> int:
    command = arguments.command
    if command == "list":
        for account in await accounts.listed():
            state = "disabled" if account.disabled else "active"
            print(
                f"{account.username:<20} {account.role:<22} {account.department or '-':<22} "
                f"{account.staff_id or '-':<10} {account.source:<9} {state:<8} "
                f"{account.display_name}"
            )
        return 0
    if command == "create":
        password = await accounts.create(
            arguments.username,
            role=Role(arguments.role),
            display_name=arguments.name,
            department=arguments.department,
            staff_id=arguments.staff_id,
            now=datetime.now(UTC),
        )
    elif command == "set-role":
        role = Role(arguments.role)
        await accounts.set_role(arguments.username, role, arguments.department, arguments.staff_id)
        print(f"{arguments.username} is now {role} ({role.label_zh})", file=sys.stderr)
        return 0
    elif command == "disable":
        await accounts.disable(arguments.username)
        print(f"disabled {arguments.username}; its sessions have ended", file=sys.stderr)
        return 0
    else:
        password = await accounts.reset_password(arguments.username)
    print(f"one-time password for {arguments.username} (shown once):", file=sys.stderr)
    print(password)
    return 0


async def main(argv: list[str]) -> int:
    arguments = parser().parse_args(argv)
    settings = DeskSettings()
    mongo = connect(settings)
    try:
        documents = MongoDocuments(database(mongo, settings))
        store = DeskStore(documents)
        await documents.prepare()
        accounts = Accounts(store, DepartmentCatalogue.from_file(settings.departments))
        return await run(arguments, accounts)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    finally:
        await mongo.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
