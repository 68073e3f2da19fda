"""The notifier's channels against real servers on loopback: an SMTP server (aiosmtpd's) that
requires STARTTLS and a login, with a certificate of a CA the notifier is told to trust; a
group-chat robot's webhook that answers as WeCom and DingTalk do."""

import email
import email.policy
import ipaddress
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.common.addressees import Addressee, Robot
from services.notifier.channels import MSGID_HEADER, ChannelRefusedError, Channels
from services.notifier.domain import Marker, Notification, Purpose
from services.notifier.main import links_of, smtp_of
from services.notifier.settings import NotifierSettings
from tests.integration.test_notifier import free_port

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA): its PEM and its key's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qinglian test relay")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "relay.pem", tmp_path / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Relay:
    """Takes mail only after STARTTLS and the right login."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append((str(session.auth_data), list(envelope.rcpt_tos), message))
        return "250 OK"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"notifier",
        b"relay password",
    )
    return AuthResult(success=good, handled=False, auth_data=data.login.decode() if good else None)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Relay, int, Path]]:
    cert_file, key_file = certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    handler = Relay()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield handler, controller.port, cert_file
    finally:
        controller.stop()


def notification(title: str = "【清廉】R-KICKBACK 上报（司法机关）：案件 CASE-1") -> Notification:
    return Notification(
        notification_id=uuid.uuid4(),
        purpose=Purpose.DECISION,
        marker=Marker.NEW,
        send_key="escalation_judicial_organs",
        rule_id="R-KICKBACK",
        case_id="CASE-1",
        subject_id="S1",
        addressee="group:judicial_liaison",
        title=title,
        body="收件：司法机关移送联络人\n事项：上报（司法机关）",
        deadline=NOW,
        within_hours=24,
        created_at=NOW,
        next_attempt_at=NOW,
    )


def settings_for(tmp_path: Path, port: int, ca: Path, password: str) -> NotifierSettings:
    (tmp_path / "smtp_user").write_text("notifier\n")
    (tmp_path / "smtp_password").write_text(password + "\n")
    return NotifierSettings(
        smtp_port=port,
        smtp_starttls=True,
        smtp_ca_file=ca,
        smtp_username_file=tmp_path / "smtp_user",
        smtp_password_file=tmp_path / "smtp_password",
        desk_url="https://desk.hospital.example",
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


LIAISON = Addressee(
    key="group:judicial_liaison",
    name_zh="司法机关移送联络人",
    email=("yisong@hospital.example",),
    robots=(),
    members=(),
    instead=None,
    superior=None,
)


async def test_email_goes_over_starttls_with_the_login_from_secret_files(
    relay: tuple[Relay, int, Path], tmp_path: Path, http: httpx.AsyncClient
) -> None:
    handler, port, ca = relay
    settings = settings_for(tmp_path, port, ca, "relay password")
    channels = Channels(smtp=smtp_of(settings), links=links_of(settings), http=http)
    sent = notification()
    await channels.deliver(sent, LIAISON, "email", NOW)
    await channels.deliver(sent, LIAISON, "email", NOW)  # a repeat: the same Message-ID
    [(login, to, message), (_, _, repeat)] = handler.messages
    assert login == "notifier"
    assert to == ["yisong@hospital.example"]
    assert message["Message-ID"] == f"<{sent.notification_id}@qinglian.notifier>"
    assert repeat["Message-ID"] == message["Message-ID"]
    assert message["Subject"] == sent.title
    body = message.get_content()
    assert "https://desk.hospital.example/ack/" in body
    assert f"通知编号：{sent.notification_id}" in body


async def test_a_wrong_login_or_an_untrusted_certificate_is_refused(
    relay: tuple[Relay, int, Path], tmp_path: Path, http: httpx.AsyncClient
) -> None:
    handler, port, ca = relay
    wrong = settings_for(tmp_path, port, ca, "not the password")
    with pytest.raises(Exception, match=r"(?i)auth"):
        await Channels(smtp=smtp_of(wrong), links=links_of(wrong), http=http).deliver(
            notification(), LIAISON, "email", NOW
        )
    untrusted = settings_for(tmp_path, port, ca, "relay password").model_copy(
        update={"smtp_ca_file": None}
    )
    with pytest.raises(Exception, match=r"(?i)certificate"):
        await Channels(smtp=smtp_of(untrusted), links=links_of(untrusted), http=http).deliver(
            notification(), LIAISON, "email", NOW
        )
    assert handler.messages == []


async def test_robots_get_the_text_message_and_a_refusal_is_an_error(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    answers = iter([{"errcode": 0, "errmsg": "ok"}, {"errcode": 310000, "errmsg": "sign fail"}])
    posts: list[httpx.Request] = []

    def webhook(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(200, json=next(answers))

    robot = Robot(format="dingtalk", url="http://127.0.0.1:1/robot/send?access_token=t")
    desk = Addressee("group:security_desk", "保卫科值班室", (), (robot,), (), None, None)
    settings = NotifierSettings(desk_url="https://desk.hospital.example")
    client = httpx.AsyncClient(transport=httpx.MockTransport(webhook))
    channels = Channels(smtp=smtp_of(settings), links=links_of(settings), http=client)
    sent = notification("【清廉】R-REP-VISIT 驱离提醒：企业 YX-1")
    await channels.deliver(sent, desk, f"robot:{robot.url}", NOW)
    with pytest.raises(ChannelRefusedError, match="310000"):
        await channels.deliver(sent, desk, f"robot:{robot.url}", NOW)
    body = json.loads(posts[0].content)
    assert body["msgtype"] == "text"
    assert body["text"]["content"].startswith("【清廉】R-REP-VISIT 驱离提醒")
    assert posts[0].headers[MSGID_HEADER] == str(sent.notification_id)
    await client.aclose()
