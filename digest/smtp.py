"""The SMTP channel: one reused connection per worker, and the ledger committed between the
message and its final ``.``, so a crash loses at most one message and never repeats one (the
whole argument is in ``digest.delivery``). Also how a server's reply becomes retry or bounce."""

from __future__ import annotations

import functools
import logging
import re
import smtplib
import socket
import ssl
from email.utils import parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from email_validator import EmailNotValidError, validate_email

from digest.delivery import UNCONFIRMED, Commit, LeaseLost, describe, reason_of
from digest.errors import (
    ConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UndeliverableError,
)
from digest.mime import RenderedEmail, message_bytes

__all__ = ["SmtpDeliverer", "envelope_address"]

log = logging.getLogger(__name__)

_LEADING_DOT = re.compile(rb"(?m)^\.")


class SmtpDeliverer:
    """SMTP over one reused connection: ``smtp://`` (plain, or STARTTLS with
    ``?starttls=true``), ``smtps://`` (TLS from the start); ``user:password@`` logs in;
    ``?timeout=S`` sets the socket timeout (default 30 s)."""

    name = "smtp"
    findable = False

    def __init__(self, url: str, timeout: float = 30.0, local_hostname: str | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"delivery URL {describe(url)}: expected smtp://host[:port]")
        query = parse_qs(parts.query)
        self._tls = parts.scheme == "smtps"
        self._starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        self._host, self._port = parts.hostname, parts.port or (465 if self._tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._timeout = float(query.get("timeout", [timeout])[0])
        self._local = local_hostname
        self._connection: smtplib.SMTP | None = None

    def already_delivered(self, email: RenderedEmail, issue_id: str) -> bool:
        return False  # the server keeps no record we can ask; see ``digest.delivery``

    @functools.lru_cache(maxsize=8)  # noqa: B019  (one From for a whole run)
    def _sender(self, header: str) -> str:
        return parseaddr(header)[1]

    def deliver(self, email: RenderedEmail, issue_id: str, commit: Commit) -> str:
        sender = self._sender(email.headers["From"])
        recipient, utf8 = envelope_address(email.to)
        if recipient != email.to and not utf8:
            email = email.addressed(recipient)
        body = message_bytes(email, utf8)
        if body.startswith(b".") or b"\n." in body:  # rare: the regex costs 0.3 ms a message
            body = _LEADING_DOT.sub(b"..", body)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp = self._connect()
        options = self._utf8_options(smtp, email.to) if utf8 else []
        try:
            self._expect(smtp, smtp.mail(sender, options), 250, email.to)
            self._expect(smtp, smtp.rcpt(recipient), 250, email.to, also=(251,))
            smtp.putcmd("data")
            self._expect(smtp, smtp.getreply(), 354, email.to)
            smtp.send(body)
            if not _still_open(smtp):
                raise smtplib.SMTPServerDisconnected("the server closed the connection in DATA")
            if not commit():
                self._drop()  # the server sees DATA cut off and discards the message
                raise LeaseLost(issue_id)
            smtp.send(b".\r\n")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise TransientDeliveryError(email.to, f"connection lost: {exc}") from exc
        try:
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The whole message and its final "." went out and no reply came back: a timeout,
            # a clean close or a reset. The server may have stored it (some store, then reset),
            # so sending it again could duplicate it: the row stays sent, marked unconfirmed,
            # for the operator to review (`digest unconfirmed`) and resend deliberately.
            self._drop()
            log.warning("%s: no reply after the end of DATA (%s); not resent", email.to, exc)
            return f"{UNCONFIRMED} no reply after the end of DATA ({reason_of(exc)})"
        text = reply.decode(errors="replace")
        if code == 250:
            return f"{code} {text}"
        self._reset(smtp)
        raise _error(email.to, code, text)

    def _utf8_options(self, smtp: smtplib.SMTP, recipient: str) -> list[str]:
        """An internationalised mailbox goes out only where the server takes SMTPUTF8."""
        if not smtp.has_extn("smtputf8"):
            raise UndeliverableError(
                recipient,
                f"{self._host}:{self._port} does not offer SMTPUTF8, which this address needs",
            )
        return ["SMTPUTF8", "BODY=8BITMIME"] if smtp.has_extn("8bitmime") else ["SMTPUTF8"]

    def reset(self) -> None:
        """Forget the connection: after an error nobody foresaw, its state is unknown."""
        self._drop()

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._connection = None

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        try:
            if self._tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self._host,
                    self._port,
                    local_hostname=self._local,
                    timeout=self._timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    self._host, self._port, local_hostname=self._local, timeout=self._timeout
                )
            # The final "." goes out on its own after the body; with Nagle's algorithm on, it
            # would wait for the body's delayed ACK (40 ms a message on Linux).
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self._user:
                smtp.login(self._user, self._password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigError(
                f"SMTP {self._host}:{self._port}: login refused ({exc.smtp_code})"
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(
                f"{self._host}:{self._port}", f"cannot connect: {exc}"
            ) from exc
        self._connection = smtp
        return smtp

    def _expect(
        self,
        smtp: smtplib.SMTP,
        answer: tuple[int, bytes],
        code: int,
        recipient: str,
        also: tuple[int, ...] = (),
    ) -> None:
        got, reply = answer
        if got == code or got in also:
            return
        if got == -1:
            raise smtplib.SMTPServerDisconnected(reply.decode(errors="replace"))
        self._reset(smtp)
        raise _error(recipient, got, reply.decode(errors="replace"))

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except OSError:
                pass
        self._connection = None


def envelope_address(address: str) -> tuple[str, bool]:
    """The address as SMTP carries it, and whether it needs SMTPUTF8: an internationalised
    domain goes as IDNA (``xn--``), which every server takes; a non-ASCII local part can only
    go where the server offers SMTPUTF8. An address that is not one raises
    ``UndeliverableError`` (the sign-up checks should have refused it)."""
    try:
        valid = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise UndeliverableError(address, f"not a deliverable address: {exc}") from None
    if valid.ascii_email:
        return valid.ascii_email, False
    return f"{valid.local_part}@{valid.ascii_domain}", True


def _still_open(smtp: smtplib.SMTP) -> bool:
    """Whether the server is still listening: a peek that finds the connection closed (or an
    early reply, which in DATA only comes before closing) means the message cannot be
    complete, so the ledger must not call it sent."""
    sock = smtp.sock
    if sock is None:
        return False
    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        return not sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except (OSError, ssl.SSLError):
        return False
    finally:
        sock.settimeout(timeout)


def _error(
    recipient: str, code: int, reply: str
) -> TransientDeliveryError | PermanentDeliveryError:
    text = f"{code} {reply}"
    if 400 <= code < 500:
        return TransientDeliveryError(recipient, text)
    return PermanentDeliveryError(recipient, text)
