"""Signing in against the hospital's LDAP directory (optional).

The desk finds the person's entry by their username (``uid`` by default; with a service
account, or anonymously), binds as that entry with the password given (the directory checks
it; the desk never keeps it), then reads the groups that list the entry as a ``member``. The
first group in ``ldap_group_roles`` order it is in gives the role; staff number, department and
name come from the entry's attributes. Someone in no mapped group is refused.
"""

import asyncio
from dataclasses import dataclass

from ldap3 import SIMPLE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from services.common.roles import Role
from services.desk.settings import DeskSettings


@dataclass(frozen=True)
class DirectoryPerson:
    display_name: str
    role: Role
    department: str | None
    staff_id: str | None


class DirectoryError(RuntimeError):
    """The directory could not be asked (unreachable, misconfigured)."""


class Directory:
    def __init__(self, settings: DeskSettings) -> None:
        if settings.ldap_url is None:
            raise ValueError("no directory configured (QINGLIAN_LDAP_URL)")
        self.settings = settings
        self.server = Server(settings.ldap_url, connect_timeout=5)
        self.roles = {group.lower(): role for group, role in settings.ldap_group_roles.items()}

    async def authenticate(self, username: str, password: str) -> DirectoryPerson | None:
        """The person if the directory accepts the password and maps them to a role."""
        if not password:  # an empty password is an anonymous bind, which always "succeeds"
            return None
        try:
            return await asyncio.to_thread(self._authenticate, username, password)
        except LDAPException as error:
            raise DirectoryError(type(error).__name__) from None

    def _connection(self, user: str | None = None, password: str | None = None) -> Connection:
        return Connection(
            self.server,
            user=user,
            password=password,
            authentication=SIMPLE if user else None,
            receive_timeout=10,
            raise_exceptions=False,
        )

    def _authenticate(self, username: str, password: str) -> DirectoryPerson | None:
        settings = self.settings
        bind_password = settings.ldap_bind_password()
        searcher = self._connection(
            settings.ldap_bind_dn, bind_password.get_secret_value() if bind_password else None
        )
        if not searcher.bind():
            raise DirectoryError(f"cannot search the directory: {searcher.result['description']}")
        try:
            attributes = [
                settings.ldap_name_attribute,
                settings.ldap_staff_id_attribute,
                settings.ldap_department_attribute,
            ]
            wanted = f"({settings.ldap_user_attribute}={escape_filter_chars(username)})"
            searcher.search(settings.ldap_base_dn, wanted, attributes=attributes)
            if len(searcher.entries) != 1:
                return None
            entry = searcher.entries[0]
            person = self._connection(entry.entry_dn, password)
            if not person.bind():
                return None
            person.unbind()
            member = f"(member={escape_filter_chars(entry.entry_dn)})"
            searcher.search(settings.ldap_base_dn, member, attributes=[])
            groups = {group.entry_dn.lower() for group in searcher.entries}
        finally:
            searcher.unbind()
        return self._person(entry, groups)

    def _person(self, entry: object, groups: set[str]) -> DirectoryPerson | None:
        role = next((role for group, role in self.roles.items() if group in groups), None)
        if role is None:
            return None
        settings = self.settings

        def first(attribute: str) -> str | None:
            values = getattr(entry, attribute).values if attribute in entry else []  # type: ignore[operator]
            return str(values[0]) if values else None

        return DirectoryPerson(
            display_name=first(settings.ldap_name_attribute) or "",
            role=role,
            department=first(settings.ldap_department_attribute)
            if role is Role.DEPARTMENT_HEAD
            else None,
            staff_id=first(settings.ldap_staff_id_attribute),
        )
