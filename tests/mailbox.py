"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the e-mail tests."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from engine.notifications import Mailer


class Mailbox:
    """What the loopback server received, and a mailer that sends to it."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = False  # answer every message with a 451: the sender must try again later

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse:
            return "451 try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self) -> None:
        self.box = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.mailer = Mailer("127.0.0.1", self.port, sender="opsflow@opsflow.example", timeout=5)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
