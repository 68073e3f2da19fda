"""The channels a notification leaves by: email over SMTP (STARTTLS and a login when
configured) and group-chat robots' webhooks in WeCom's or DingTalk's JSON format.

Every message carries the notification's id, the same on every attempt, so a repeat is
recognisable: the email's Message-ID (``<id@domain>``), the robot's text (通知编号) and its
request header ``X-Qinglian-Msgid``. A channel that does not take the message raises; the
outbox tries it again later. And what became of each notification leaves for the desk on
``qinglian.notifications.v1`` (``NotificationPublisher``).
"""

import asyncio
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import aiosmtplib
import httpx
from faststream.kafka.publisher import DefaultPublisher
from pydantic import SecretStr

from schemas.notification import NotificationUpdated
from services.common.acknowledge_links import sign
from services.common.addressees import Addressee, Robot
from services.notifier.domain import Notification

MSGID_HEADER = "X-Qinglian-Msgid"


class ChannelRefusedError(RuntimeError):
    """A channel answered that it did not take the message."""


@dataclass(frozen=True)
class AckLinks:
    """Links to the desk that acknowledge a notification: signed with ``key``, valid for
    ``valid_for`` after the notification was made."""

    desk_url: str
    key: SecretStr
    valid_for: timedelta

    def link(self, notification: Notification) -> str:
        token = sign(
            notification.acknowledged_one,
            notification.created_at + self.valid_for,
            self.key.get_secret_value().encode(),
        )
        return f"{self.desk_url.rstrip('/')}/ack/{token}"


def text_of(notification: Notification, links: AckLinks) -> str:
    lines = [notification.body]
    if notification.asks_for_ack:
        lines.append(f"确认收到（登录案件台后生效）：{links.link(notification)}")
    lines.append(f"通知编号：{notification.notification_id}")
    return "\n".join(lines)


def message_id(notification_id: uuid.UUID, domain: str) -> str:
    return f"<{notification_id}@{domain}>"


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    sender: str
    message_id_domain: str
    starttls: bool
    credentials: tuple[SecretStr, SecretStr] | None
    timeout: float
    ca_file: Path | None = None

    def message(
        self, notification: Notification, to: tuple[str, ...], text: str, now: datetime
    ) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = notification.title
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id(notification.notification_id, self.message_id_domain)
        message.set_content(text, charset="utf-8")
        return message

    async def send(self, message: EmailMessage) -> None:
        username, password = self.credentials or (None, None)
        # The relay's certificate is always checked (against ca_file when given).
        tls = ssl.create_default_context(cafile=self.ca_file) if self.starttls else None
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            start_tls=self.starttls,
            tls_context=tls,
            username=username.get_secret_value() if username else None,
            password=password.get_secret_value() if password else None,
            timeout=self.timeout,
        )


def robot_payload(robot: Robot, notification: Notification, text: str) -> dict[str, object]:
    """WeCom and DingTalk robots take the same text message shape."""
    return {"msgtype": "text", "text": {"content": f"{notification.title}\n{text}"}}


@dataclass(frozen=True)
class Channels:
    smtp: Smtp
    links: AckLinks
    http: httpx.AsyncClient

    @staticmethod
    def of(addressee: Addressee) -> list[str]:
        """The channels an addressee is reached by, by name."""
        email = ["email"] if addressee.email else []
        return email + [f"robot:{robot.url}" for robot in addressee.robots]

    async def deliver(
        self, notification: Notification, addressee: Addressee, channel: str, now: datetime
    ) -> None:
        text = text_of(notification, self.links)
        if channel == "email":
            await self.smtp.send(self.smtp.message(notification, addressee.email, text, now))
            return
        robot = next(r for r in addressee.robots if f"robot:{r.url}" == channel)
        answer = await self.http.post(
            robot.url,
            json=robot_payload(robot, notification, text),
            headers={MSGID_HEADER: str(notification.notification_id)},
        )
        answer.raise_for_status()
        errcode = answer.json().get("errcode", 0) if answer.content else 0
        if errcode != 0:
            raise ChannelRefusedError(f"the robot answered errcode {errcode}")


@dataclass(frozen=True)
class NotificationPublisher:
    """Notifications' states to the notifications topic, keyed by notification (aiokafka
    batches the publishes made together)."""

    publisher: DefaultPublisher

    async def publish(self, updates: Sequence[NotificationUpdated]) -> None:
        await asyncio.gather(
            *(self.publisher.publish(u, key=u.notification_id.bytes) for u in updates)
        )
