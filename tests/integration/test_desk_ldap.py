"""Signing in to the desk against a real LDAP directory: Debian's OpenLDAP slapd, started here
on loopback with a throwaway configuration and data folder, holding test people and groups.

The desk runs in process on the in-memory store (what it keeps is not the point here); the
directory is real: binds, searches, group membership, and what it refuses."""

import base64
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from services.desk import signin
from tests.desk import Running, client, running_desk, sign_in

pytestmark = pytest.mark.infra

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SUFFIX = "dc=hospital,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
PASSWORDS = {"wangmin": "directory pass 1", "caiwu": "directory pass 2", "nogroup": "pass 3"}
GROUP_ROLES = {
    f"cn=qinglian-conduct-office,{GROUPS}": "conduct_office",
    f"cn=qinglian-department-heads,{GROUPS}": "department_head",
}


def _value(name: str, value: str) -> str:
    """An LDIF line; text other than ASCII goes base64-encoded, as LDIF requires."""
    if value.isascii():
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


def _person(uid: str, name: str, staff: str, department: str | None) -> str:
    lines = [
        f"dn: uid={uid},{PEOPLE}",
        "objectClass: inetOrgPerson",
        f"uid: {uid}",
        _value("cn", name),
        _value("sn", name[:1]),
        f"employeeNumber: {staff}",
        f"userPassword: {PASSWORDS[uid]}",
    ]
    if department:
        lines.append(f"departmentNumber: {department}")
    return "\n".join(lines)


def _group(cn: str, *members: str) -> str:
    lines = [f"dn: cn={cn},{GROUPS}", "objectClass: groupOfNames", f"cn: {cn}"]
    return "\n".join(lines + [f"member: uid={member},{PEOPLE}" for member in members])


DIRECTORY = "\n\n".join(
    [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
        "o: Hospital\ndc: hospital",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        _person("wangmin", "王敏", "S0102", None),
        _person("caiwu", "钱财务", "S0201", "finance"),
        _person("nogroup", "无组", "S7777", None),
        _group("qinglian-conduct-office", "wangmin"),
        _group("qinglian-department-heads", "caiwu"),
    ]
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _configuration(folder: Path) -> Path:
    (folder / "data").mkdir()
    configuration = folder / "slapd.conf"
    configuration.write_text(
        "\n".join(
            [
                "include /etc/ldap/schema/core.schema",
                "include /etc/ldap/schema/cosine.schema",
                "include /etc/ldap/schema/inetorgperson.schema",
                "modulepath /usr/lib/ldap",
                "moduleload back_mdb",
                f"pidfile {folder}/slapd.pid",
                "database mdb",
                "maxsize 10485760",
                f'suffix "{SUFFIX}"',
                f'rootdn "cn=admin,{SUFFIX}"',
                f"directory {folder}/data",
                # People's passwords are only for binding as themselves; the rest anyone reads.
                "access to attrs=userPassword by anonymous auth by self read by * none",
                "access to * by * read",
            ]
        )
        + "\n"
    )
    return configuration


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """slapd on a free loopback port with the test people; its URL."""
    if not SLAPD.exists():
        pytest.fail(f"{SLAPD} not found: run deploy/local/setup.sh (Debian's slapd)")
    folder = tmp_path_factory.mktemp("slapd")
    configuration = _configuration(folder)
    (folder / "people.ldif").write_text(DIRECTORY + "\n", encoding="utf-8")
    subprocess.run(  # noqa: S603 (Debian's slapadd, our files)
        [SLAPADD, "-f", configuration, "-l", folder / "people.ldif"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    with (folder / "slapd.log").open("wb") as log:
        server = subprocess.Popen(  # noqa: S603 (Debian's slapd, our configuration)
            [SLAPD, "-f", configuration, "-h", f"{url}/", "-d", "0"], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((folder / "slapd.log").read_text(errors="replace"))
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture
async def desk(
    directory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    monkeypatch.setattr(signin, "HASHER", PasswordHasher(time_cost=1, memory_cost=64))
    async with running_desk(
        tmp_path,
        NOW,
        ldap_url=directory,
        ldap_base_dn=SUFFIX,
        ldap_group_roles=GROUP_ROLES,
    ) as running:
        yield running


async def test_a_directory_person_signs_in_with_the_role_their_group_gives(
    desk: Running,
) -> None:
    http = client(desk.http._transport)
    answer = await sign_in(http, "wangmin", PASSWORDS["wangmin"])
    assert answer.status_code == 303
    assert answer.headers["location"] == "/cases", "the directory keeps the password"
    page = await http.get("/cases")
    assert page.status_code == 200
    assert "王敏（行风办 conduct_office）" in page.text

    account = await desk.desk.casework.store.accounts.get("wangmin")
    assert account is not None
    assert (account.role, account.staff_id, account.source) == (
        "conduct_office",
        "S0102",
        "directory",
    )
    assert account.password_hash is None, "the desk never keeps a directory password"


async def test_a_department_head_from_the_directory_gets_their_department(desk: Running) -> None:
    http = client(desk.http._transport)
    assert (await sign_in(http, "caiwu", PASSWORDS["caiwu"])).status_code == 303
    page = await http.get("/cases")
    assert "钱财务（科室负责人 department_head，财务部 Finance Department）" in page.text


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("wangmin", "not the password"),
        ("wangmin", ""),  # an empty password would be an anonymous bind, which "succeeds"
        ("nogroup", PASSWORDS["nogroup"]),  # in the directory, but in no group of the desk
        ("*", PASSWORDS["wangmin"]),  # a filter in the username finds no one
        ("nobody", "whatever"),
    ],
)
async def test_the_directory_refuses_who_it_should(
    desk: Running, username: str, password: str
) -> None:
    http = client(desk.http._transport)
    answer = await sign_in(http, username, password)
    assert answer.status_code == 401
    assert "用户名或密码错误" in answer.text
    assert (await http.get("/cases")).status_code == 303


async def test_an_unreachable_directory_is_said_so_and_counts_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signin, "HASHER", PasswordHasher(time_cost=1, memory_cost=64))
    closed = f"ldap://127.0.0.1:{_free_port()}"
    async with running_desk(
        tmp_path, NOW, ldap_url=closed, ldap_base_dn=SUFFIX, ldap_group_roles=GROUP_ROLES
    ) as running:
        http = client(running.http._transport)
        answer = await sign_in(http, "wangmin", PASSWORDS["wangmin"])
        assert answer.status_code == 503
        assert "无法连接统一身份目录" in answer.text
        assert await running.desk.casework.store.failures.find() == {}
