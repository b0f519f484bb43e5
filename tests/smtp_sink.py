"""A real SMTP server (aiosmtpd) on loopback that keeps what it accepts and misbehaves on cue.

Faults are queued per recipient and used up one per delivery attempt:

    "451"   answer the end of DATA with 451 (try again later)
    "554"   answer the end of DATA with 554 (rejected for good)
    "550"   refuse the recipient at RCPT TO with 550 (no such user)
    "cut"   close the connection right after answering DATA with 354 (mid-DATA; nothing kept)
    "drop"  close the connection at the end of DATA without answering (nothing kept)
    "keep-reset"  keep the message, then reset the connection (TCP RST) without answering
    "keep-close"  keep the message, then close the connection cleanly without answering
    "slow"  wait ``slow_seconds`` before answering (then accept)

Run as a script (``python -m tests.smtp_sink PORT [--echo]``) it serves in its own process (the
benchmarks use that, so the sink has a core of its own); ``--echo`` prints each recipient.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import threading
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_STAGES = {"550": "rcpt", "cut": "cut"}


class _FaultySMTP(SMTP):
    async def smtp_DATA(self, arg: str) -> None:
        handler: SinkHandler = self.event_handler
        if self.envelope is not None and self.envelope.rcpt_tos:
            if handler._fault(self.envelope.rcpt_tos[0], "cut") == "cut":
                await self.push("354 End data with <CR><LF>.<CR><LF>")
                assert self.transport is not None
                self.transport.close()
                return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _FaultySMTP(self.handler, **self.SMTP_kwargs)


class SinkHandler:
    def __init__(self, echo: bool = False) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.mail_options: list[list[str]] = []
        self.faults: dict[str, list[str]] = {}
        self.slow_seconds = 1.0
        self.connections = 0
        self.echo = echo
        self._lock = threading.Lock()

    def _fault(self, recipient: str, stage: str) -> str | None:
        with self._lock:
            queue = self.faults.get(recipient)
            if queue and _STAGES.get(queue[0], "data") == stage:
                return queue.pop(0)
        return None

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:  # noqa: E501
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:  # noqa: E501
        if self._fault(address, "rcpt") == "550":
            return f"550 5.1.1 <{address}>: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipient = envelope.rcpt_tos[0]
        fault = self._fault(recipient, "data")
        if fault == "451":
            return "451 4.3.0 mailbox busy, try again later"
        if fault == "554":
            return "554 5.7.1 message rejected as spam"
        if fault == "drop":
            server.transport.close()
            return "421 closing"  # never reaches the client: the connection is gone
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        with self._lock:
            self.messages.append((recipient, envelope.original_content or envelope.content))
            self.mail_options.append(list(envelope.mail_options))
            number = len(self.messages)
        if fault in ("keep-reset", "keep-close"):
            transport = server.transport
            if fault == "keep-reset":
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort() if fault == "keep-reset" else transport.close()
            return "421 closing"  # never reaches the client
        if self.echo:
            print(recipient, flush=True)
        return f"250 2.0.0 OK queued as {number}"

    def recipients(self) -> Counter[str]:
        with self._lock:
            return Counter(recipient for recipient, _ in self.messages)

    def parsed(self) -> list[EmailMessage]:
        with self._lock:
            raw = [content for _, content in self.messages]
        return [message_from_bytes(content, policy=policy.default) for content in raw]  # type: ignore[misc]


class Sink:
    """The server running in a thread of this process."""

    def __init__(self, smtputf8: bool = True) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self._controller = _Controller(
            self.handler, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=smtputf8
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> Sink:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


if __name__ == "__main__":
    handler = SinkHandler(echo="--echo" in sys.argv)
    controller = _Controller(handler, hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()
