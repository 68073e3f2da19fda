"""Make Kafka's users, ACLs and topics what ``services.common.kafka_access`` says, as admin.

    python -m services.common.kafka_setup            # apply the plan
    python -m services.common.kafka_setup --users    # list the plan's users, admin aside

Run before the services start: by the compose file's one-shot ``kafka-setup`` service, and by
``deploy/local/runtime.sh start kafka-secure``. Every run sets the whole plan again, so it is
also how a change is applied (a sender added or removed, a password replaced):

- each user's SCRAM-SHA-512 credential, from its password file
  ``$QINGLIAN_KAFKA_PASSWORDS_DIR/kafka_<user>_password``; a SCRAM user the plan does not name
  (a former sender, the former shared ``qinglian``) is removed, admin aside;
- the ACLs: those missing are created, those the plan does not hold are deleted;
- every topic (``ensure_topics``), so no other user needs the right to create one.

It logs in with the usual settings (``QINGLIAN_KAFKA_SASL_USERNAME=admin`` and its password
file). Prints a JSON summary; never a password.
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from services.common.broker import ensure_topics
from services.common.kafka_access import ADMIN, AccessPlan, Grant, access_plan, all_topics
from services.common.logs import configure_logging
from services.common.raw_senders import RAW_SENDERS_FILE, RawSenders
from services.common.settings import ServiceSettings, read_secret

SCRAM_ITERATIONS = 8192
MIN_PASSWORD_LENGTH = 16
PROPAGATION_SECONDS = 30.0
"""How long the broker may take to apply the ACLs it accepted (they travel through KRaft's
metadata log); the run fails if they are not all in force by then."""

# None matches any name, principal and host (the library's annotations say str).
_ANY_ACL = AclBindingFilter(
    ResourceType.ANY,
    None,  # type: ignore[arg-type]
    ResourcePatternType.ANY,
    None,  # type: ignore[arg-type]
    None,  # type: ignore[arg-type]
    AclOperation.ANY,
    AclPermissionType.ANY,
)


class KafkaSetupSettings(ServiceSettings):
    http_port: int = 0  # serves nothing
    kafka_passwords_dir: Path = Path("/run/secrets")
    raw_senders: Path = RAW_SENDERS_FILE


def binding(grant: Grant) -> AclBinding:
    return AclBinding(
        ResourceType.TOPIC if grant.resource == "topic" else ResourceType.GROUP,
        grant.name,
        ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL,
        f"User:{grant.user}",
        "*",
        AclOperation[grant.operation],
        AclPermissionType.ALLOW,
    )


def passwords(plan: AccessPlan, directory: Path) -> dict[str, bytes]:
    """Each user's password from its file; refuses a missing, empty or short one by name."""
    found = {}
    for user in plan.users:
        path = directory / f"kafka_{user}_password"
        password = read_secret(path, "kafka_passwords_dir").get_secret_value()
        if len(password) < MIN_PASSWORD_LENGTH:
            raise SystemExit(f"{path}: a Kafka password needs {MIN_PASSWORD_LENGTH} characters")
        found[user] = password.encode()
    return found


def _admin_client(settings: ServiceSettings) -> AdminClient:
    config: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap}
    credentials = settings.kafka_credentials()
    if credentials is not None:
        username, password = credentials
        config |= {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": username,
            "sasl.password": password.get_secret_value(),
        }
    return AdminClient(config)


def _wait(futures: dict[Any, Any]) -> None:
    for future in futures.values():
        future.result()


def set_users(admin: AdminClient, plan: AccessPlan, secrets: dict[str, bytes]) -> list[str]:
    """Sets every user's credential; removes the SCRAM users the plan does not name."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    described = admin.describe_user_scram_credentials()  # every user's: one future
    if not isinstance(described, Future):
        raise TypeError("describe_user_scram_credentials() gave one future per user")
    existing = set(described.result())
    removed = sorted(existing - {*plan.users, ADMIN})
    _wait(
        admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, info, secrets[user]) for user in plan.users]
            + [UserScramCredentialDeletion(u, ScramMechanism.SCRAM_SHA_512) for u in removed]
        )
    )
    return removed


def _acls(admin: AdminClient) -> set[AclBinding]:
    return set(admin.describe_acls(_ANY_ACL).result())


def set_acls(admin: AdminClient, plan: AccessPlan) -> tuple[int, int]:
    """Creates the ACLs missing, deletes those the plan does not hold; (created, deleted)."""
    wanted = {binding(grant) for grant in plan.grants}
    existing = _acls(admin)
    missing, extra = wanted - existing, existing - wanted
    if missing:
        _wait(admin.create_acls(list(missing)))
    if extra:
        _wait(admin.delete_acls([AclBindingFilter(*_fields(acl)) for acl in extra]))
    deadline = time.monotonic() + PROPAGATION_SECONDS
    while _acls(admin) != wanted:
        if time.monotonic() > deadline:
            raise SystemExit(f"the broker did not apply the ACLs within {PROPAGATION_SECONDS} s")
        time.sleep(0.2)
    return len(missing), len(extra)


def _fields(acl: AclBinding) -> tuple[Any, ...]:
    return (
        acl.restype,
        acl.name,
        acl.resource_pattern_type,
        acl.principal,
        acl.host,
        acl.operation,
        acl.permission_type,
    )


def set_up(settings: KafkaSetupSettings) -> dict[str, Any]:
    senders = RawSenders.from_file(settings.raw_senders)
    plan = access_plan(senders, group_prefix=settings.kafka_group_prefix)
    secrets = passwords(plan, settings.kafka_passwords_dir)
    admin = _admin_client(settings)
    removed = set_users(admin, plan, secrets)
    created, deleted = set_acls(admin, plan)
    asyncio.run(ensure_topics(settings, all_topics(senders)))
    return {
        "users": sorted(plan.users),
        "users_removed": removed,
        "acls": len(plan.grants),
        "acls_created": created,
        "acls_deleted": deleted,
        "topics": len(all_topics(senders)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.common.kafka_setup")
    parser.add_argument("--users", action="store_true", help="list the users; change nothing")
    options = parser.parse_args(argv)
    configure_logging("kafka-setup", "INFO")
    settings = KafkaSetupSettings()
    if options.users:
        senders = RawSenders.from_file(settings.raw_senders)
        print("\n".join(access_plan(senders, group_prefix=settings.kafka_group_prefix).users))
        return
    json.dump(set_up(settings), sys.stdout, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
