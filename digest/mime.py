"""A rendered email and its bytes on the wire: the message model, a fast multipart/alternative
assembly, and the header-safe encodings. Apart from the templates so the channels that send a
message depend on the message alone, not on how it was rendered."""

from __future__ import annotations

import binascii
import email.policy
import re
import uuid
from email.message import EmailMessage
from email.utils import formatdate

import numpy as np
from pydantic import BaseModel, ConfigDict

__all__ = ["WIRE", "RenderedEmail", "encoded_words", "message_bytes", "one_line"]

WIRE = email.policy.SMTP.clone(max_line_length=998)

_SPACE = re.compile(r"\s+")

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class RenderedEmail(BaseModel):
    """Everything needed to send one digest; nothing here is half-built."""

    model_config = ConfigDict(frozen=True)

    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]

    def message(self) -> EmailMessage:
        """A MIME multipart/alternative message: the text part first, then the HTML."""
        message = EmailMessage()
        for name, value in self.headers.items():
            message[name] = value
        message["Subject"] = self.subject
        message["Date"] = formatdate(usegmt=True)
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message

    def addressed(self, to: str) -> RenderedEmail:
        """The same message to ``to`` (an address's ASCII form, its domain in IDNA)."""
        return self.model_copy(update={"to": to, "headers": {**self.headers, "To": to}})

    def as_bytes(self, utf8: bool = False) -> bytes:
        """The message as sent: multipart/alternative, CRLF line ends, base64 parts.

        Built directly (about 20 times faster than ``email``'s generator, which would cost more
        than the whole SMTP exchange); ``message()`` builds the same thing with the standard
        library, which a test holds this to, and is used when a header is not plain ASCII.
        Headers are never folded below RFC 5322's 998 characters: folding at 78 would turn
        the long ``List-Unsubscribe`` URLs into encoded words, unreadable as links."""
        if utf8:  # an internationalised address, for a server that takes SMTPUTF8
            return self.message().as_bytes(policy=WIRE.clone(utf8=True))
        if not all(v.isascii() for v in self.headers.values()):
            return self.message().as_bytes(policy=WIRE)
        boundary = f"=_pd_{uuid.uuid4().hex}"  # "_" never occurs in base64
        subject = self.subject
        if not subject.isascii():
            subject = encoded_words(subject)
        lines = [f"{name}: {value}" for name, value in self.headers.items()]
        lines += [
            f"Subject: {subject}",
            f"Date: {formatdate(usegmt=True)}",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "",
        ]
        out = ["\r\n".join(lines).encode("ascii")]
        for subtype, body in (("plain", self.text), ("html", self.html)):
            out.append(
                f"\r\n--{boundary}\r\nContent-Type: text/{subtype}; charset=utf-8\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n".encode("ascii")
            )
            if "\r" in body:
                body = _LINE_BREAK.sub("\n", body)
            canonical = body.replace("\n", "\r\n")  # RFC 2045: CRLF before encoding
            out.append(_base64_lines(canonical.encode("utf-8")))
        out.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
        return b"".join(out)


def _base64_lines(data: bytes) -> bytes:
    """``data`` in base64, in CRLF-separated lines of 76 characters (RFC 2045), the lines cut
    as one numpy reshape instead of a Python slice per line (a tenth of the time)."""
    raw = binascii.b2a_base64(data, newline=False)
    full = len(raw) // 76
    lines = np.empty((full, 78), dtype=np.uint8)
    lines[:, :76] = np.frombuffer(raw, dtype=np.uint8, count=full * 76).reshape(full, 76)
    lines[:, 76:] = (13, 10)
    wrapped = lines.tobytes() + raw[full * 76 :]
    return wrapped[:-2] if len(raw) == full * 76 and full else wrapped


def message_bytes(email: RenderedEmail, utf8: bool = False) -> bytes:
    """The MIME message as sent: multipart/alternative, CRLF line ends; ``utf8``: headers in
    raw UTF-8, for an SMTPUTF8 transaction."""
    return email.as_bytes(utf8=utf8)


def encoded_words(text: str) -> str:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), each within the 75-character limit
    and never splitting a character, one per folded line."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > 45:  # 45 bytes -> 60 base64 characters + 12 of framing
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    words.append("".join(chunk))
    encoded = (binascii.b2a_base64(w.encode("utf-8"), newline=False).decode() for w in words)
    return "\r\n ".join(f"=?utf-8?b?{word}?=" for word in encoded)


def one_line(text: str, limit: int) -> str:
    """Collapse every kind of line break and space: a title can never become a header."""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
