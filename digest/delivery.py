"""Channels that carry a rendered digest out: the outbox folder, SMTP, and apprise.

Every ``Deliverer`` takes a ``commit`` callback and calls it at its point of no return; the
send run marks the ledger row ``sent`` there. Where that point sits is what makes a crash safe:

- **outbox** writes ``<issue>.eml`` atomically and commits after; a crash in between leaves a
  file the next run finds (``already_delivered``) and only records.
- **SMTP** sends the whole message but the final ``.``, checks the server is still there,
  commits, then sends the ``.``: the server cannot accept a message the ledger does not already
  call sent, and a crash before the commit drops the connection mid-DATA, so the server discards
  it and the next run sends it again. Only a crash in the window between the commit and
  handing ``.`` to the kernel (microseconds; longer when the process waits for CPU or the GIL)
  loses a message, one per worker at most, and its row stays ``sent`` with no server reply;
  none can duplicate one. A 4xx/5xx answer to
  the ``.`` reopens the row (retry or bounce); no answer at all (timeout, dropped connection)
  leaves it sent but ``unconfirmed``, because the server may have kept it.
- **apprise** (Slack, Discord, Telegram, Matrix, ntfy, ...) has no such step: it commits after
  apprise reports success, so a crash right then may repeat that one notification.

Email never goes through apprise: its email plugin drops the plain-text part's links and cannot
carry a per-subscriber ``List-Unsubscribe``, so mail goes through ``SmtpDeliverer`` and apprise
serves the other channels.
"""

from __future__ import annotations

import email.policy
import functools
import logging
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import apprise
from email_validator import EmailNotValidError, validate_email

from digest.db.ledger import UNCONFIRMED_PREFIX
from digest.errors import (
    ConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UndeliverableError,
)
from digest.files import write_atomic
from digest.render import RenderedEmail, one_line

__all__ = [
    "AppriseDeliverer",
    "Commit",
    "Deliverer",
    "UNCONFIRMED",
    "OutboxDeliverer",
    "SmtpDeliverer",
    "deliverer_for",
    "describe",
    "envelope_address",
    "message_bytes",
    "reason_of",
]

log = logging.getLogger(__name__)

Commit = Callable[[], bool]
"""Called once, at the point of no return; False means "stop: this row is no longer yours"."""

_LEADING_DOT = re.compile(rb"(?m)^\.")
UNCONFIRMED = UNCONFIRMED_PREFIX
"""Starts the reply of a message whose acceptance never came back (see ``SmtpDeliverer``)."""


class Deliverer(Protocol):
    """One channel, used by one worker thread at a time (connections are reused)."""

    name: str
    findable: bool
    """Whether ``already_delivered`` always finds what it delivered (the outbox's files):
    then a crash before the ledger hears of a delivery loses nothing, and the send run may
    record a chunk of them at once instead of committing each before it goes out."""

    def already_delivered(self, email: RenderedEmail, issue_id: str) -> bool:
        """Whether an earlier, interrupted attempt did get this issue out (where knowable)."""

    def deliver(self, email: RenderedEmail, issue_id: str, commit: Commit) -> str:
        """Send ``email``; return the channel's acceptance. Raises ``TransientDeliveryError``
        (retry later) or ``PermanentDeliveryError`` (a hard bounce)."""

    def reset(self) -> None:
        """Drop any connection: an error nobody foresaw left it in an unknown state."""

    def close(self) -> None: ...


class LeaseLost(Exception):  # noqa: N818  (control flow, not an error to report)
    """The ledger row went to another run before the point of no return: nothing was sent."""


def message_bytes(email: RenderedEmail, utf8: bool = False) -> bytes:
    """The MIME message as sent: multipart/alternative, CRLF line ends; ``utf8``: headers in
    raw UTF-8, for an SMTPUTF8 transaction."""
    return email.as_bytes(utf8=utf8)


class OutboxDeliverer:
    """Writes each message as ``<issue>.eml`` (real MIME) into a folder, plus ``index.tsv``."""

    name = "outbox"
    findable = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, issue_id: str) -> Path:
        return self.folder / f"{issue_id}.eml"

    def already_delivered(self, email: RenderedEmail, issue_id: str) -> bool:
        return self.path(issue_id).exists()

    def deliver(self, email: RenderedEmail, issue_id: str, commit: Commit) -> str:
        path = write_atomic(self.path(issue_id), message_bytes(email))
        entry = _index_entry(email.to, email.subject)
        with _UNINDEXED_LOCK:
            _UNINDEXED.setdefault(self.folder, {})[path.name] = entry
        if not commit():
            raise LeaseLost(issue_id)
        return f"written to {path}"

    def reset(self) -> None:
        return None

    def close(self) -> None:
        self.write_index()

    def write_index(self) -> Path:
        """``index.tsv``: file, recipient, subject, one line per ``.eml`` in the folder (so it
        never lists a file that is not there, nor leaves one out). Lines already in the index
        and those of files written in this process since are reused; only a file neither knows
        (another process's) has its headers read, so closing after 100,000 messages costs a
        directory listing, not 100,000 parses."""
        index = self.folder / "index.tsv"
        with _UNINDEXED_LOCK:
            known = _UNINDEXED.pop(self.folder, {})
        if index.exists():
            for line in index.read_text(encoding="utf-8").splitlines()[1:]:
                name, _, entry = line.partition("\t")
                known.setdefault(name, entry)
        lines = ["file\tto\tsubject"]
        for path in sorted(self.folder.glob("*.eml")):
            entry = known.get(path.name) or _read_entry(path)
            lines.append(f"{path.name}\t{entry}")
        return write_atomic(index, ("\n".join(lines) + "\n").encode())


_UNINDEXED: dict[Path, dict[str, str]] = {}
"""Index lines of the ``.eml`` files written in this process and not yet in an index, per
folder: every worker's deliverer adds to it; the first to close takes them all."""
_UNINDEXED_LOCK = threading.Lock()


def _index_entry(to: str, subject: str) -> str:
    return f"{one_line(to, 998)}\t{one_line(subject, 998)}"


def _read_entry(path: Path) -> str:
    """The index entry of an ``.eml`` file, from its header block only."""
    with path.open("rb") as file:
        head = file.read(65_536).split(b"\r\n\r\n", 1)[0]
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(head + b"\r\n\r\n")
    return _index_entry(str(headers["To"] or ""), str(headers["Subject"] or ""))


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
        return False  # the server keeps no record we can ask; see the module docstring

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


class AppriseDeliverer:
    """Any apprise URL except email: the digest's plain text, titled with its subject."""

    name = "apprise"
    findable = False

    def __init__(self, url: str) -> None:
        self._url = url
        self._apprise = apprise.Apprise()
        if urlsplit(url).scheme in ("mailto", "mailtos") or not self._apprise.add(url):
            raise ConfigError(
                f"apprise URL {describe(url)}: not usable (email goes through smtp://, "
                "other channels through apprise)"
            )

    def already_delivered(self, email: RenderedEmail, issue_id: str) -> bool:
        return False

    def deliver(self, email: RenderedEmail, issue_id: str, commit: Commit) -> str:
        ok = self._apprise.notify(
            body=email.text, title=email.subject, body_format=apprise.NotifyFormat.TEXT
        )
        if not ok:
            raise TransientDeliveryError(email.to, f"{describe(self._url)} refused the message")
        if not commit():
            log.warning("%s: sent, but another run had taken the row over", email.to)
        return f"accepted by {describe(self._url)}"

    def reset(self) -> None:
        return None

    def close(self) -> None:
        return None


def reason_of(exc: BaseException) -> str:
    """An exception in one line: its type, and its words when it has any."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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


def deliverer_for(channel: str, outbox: Path, timeout: float = 30.0) -> Deliverer:
    """The deliverer a channel setting names: ``outbox``, ``smtp[s]://...`` or ``apprise:URL``."""
    if channel == "outbox":
        return OutboxDeliverer(outbox)
    if channel.startswith(("smtp://", "smtps://")):
        return SmtpDeliverer(channel, timeout=timeout)
    if channel.startswith("apprise:"):
        return AppriseDeliverer(channel.removeprefix("apprise:"))
    raise ConfigError(
        f"delivery channel {describe(channel)}: expected outbox, smtp://..., smtps://... "
        "or apprise:URL"
    )


def describe(url: str) -> str:
    """A channel URL fit for logs: no password, no query (tokens live there)."""
    if "://" not in url:
        return url.split(":", 1)[0] + (":…" if ":" in url else "")
    parts = urlsplit(url.removeprefix("apprise:"))
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    prefix = "apprise:" if url.startswith("apprise:") else ""
    return f"{prefix}{parts.scheme}://{user}{host}{port}"


def _error(
    recipient: str, code: int, reply: str
) -> TransientDeliveryError | PermanentDeliveryError:
    text = f"{code} {reply}"
    if 400 <= code < 500:
        return TransientDeliveryError(recipient, text)
    return PermanentDeliveryError(recipient, text)
