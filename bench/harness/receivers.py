"""Receivers on loopback for what the notifier sends: an SMTP server (aiosmtpd's) and a
group-chat robot's webhook. The notifier's benchmark and its integration tests use both."""

import asyncio
import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Mailbox:
    """What the SMTP server took: (Message-ID, recipient, subject) per recipient, and
    (Message-ID, recipients, body) per message; the answer to the first message is held back
    ``stall_first`` seconds (the notifier is killed meanwhile)."""

    stall_first: float = 0.0
    received: list[tuple[str, str, str]] = field(default_factory=list)
    messages: list[tuple[str, list[str], str]] = field(default_factory=list)
    last_at: float = 0.0  # when the last message came (time.time())
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        body = message.get_body(("plain",))
        message_id, subject = str(message["Message-ID"]), str(message["Subject"])
        with self.lock:
            first = not self.received
            self.received += [(message_id, rcpt, subject) for rcpt in envelope.rcpt_tos]
            text = body.get_content() if body is not None else ""
            self.messages.append((message_id, list(envelope.rcpt_tos), text))
            self.last_at = time.time()
        if first and self.stall_first:
            await asyncio.sleep(self.stall_first)
        return "250 Message accepted for delivery"

    def to(self, recipient: str) -> list[tuple[str, str]]:
        with self.lock:
            return [(mid, subject) for mid, rcpt, subject in self.received if rcpt == recipient]

    def message_ids(self) -> set[str]:
        with self.lock:
            return {message_id for message_id, _, _ in self.messages}


@contextmanager
def smtp_server(mailbox: Mailbox, port: int) -> Iterator[Controller]:
    """An SMTP server on 127.0.0.1:``port`` delivering into ``mailbox``."""
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@dataclass
class RobotReceiver:
    """A group-chat robot's webhook: each post's arrival (time.time()), msgid header and body."""

    posts: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        posts = self.posts

        class Webhook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                posts.append((time.time(), self.headers.get("X-Qinglian-Msgid", ""), body))
                answer = b'{"errcode":0,"errmsg":"ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        return Webhook

    def first_naming(self, text: str) -> float | None:
        """When the first post whose text names ``text`` came."""
        return next(
            (at for at, _, body in self.posts if text in body.get("text", {}).get("content", "")),
            None,
        )


@contextmanager
def robot_server(receiver: RobotReceiver) -> Iterator[str]:
    """The robot's webhook on a free loopback port; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/robot/send?key=security"
    finally:
        server.shutdown()
        server.server_close()
