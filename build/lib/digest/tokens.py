"""Signed tokens for personal links: the subscriber's link id (a random handle stored with
them, never their address) and the link's purpose, signed with the secret keys (HMAC via
itsdangerous), so a link acts for that subscriber and that one purpose only. Nothing in a token
decodes to an address, so none reaches access logs, proxies or forwarded mail; giving the
subscriber a new link id revokes every link they were sent. Confirmation links also carry the
time they were made and expire. The newest key signs; every key of the ring verifies.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from itsdangerous import (
    BadData,
    Serializer,
    SignatureExpired,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_encode

from digest.errors import TokenError

__all__ = ["CONFIRM_MAX_AGE", "Purpose", "TokenSerializer", "Tokens", "new_link"]

CONFIRM_MAX_AGE = 7 * 24 * 3600
"""Seconds a double opt-in link stays valid; after that, signing up again sends a new one."""


class Purpose(StrEnum):
    """What a token may do; each purpose is also the signature's salt."""

    confirm = "confirm"
    preferences = "preferences"
    unsubscribe = "unsubscribe"
    feedback = "feedback"


class TokenSerializer(URLSafeSerializer):
    """itsdangerous' URL-safe serializer without its zlib attempt, which never pays off on a
    token this short yet costs more than the signing; ``loads`` reads these tokens unchanged."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class _TimedTokenSerializer(URLSafeTimedSerializer):
    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class Tokens:
    """Makes and reads the tokens in personal links. Email links (preferences, unsubscribe,
    feedback) never expire: a digest read months later must still let its reader leave."""

    def __init__(self, secret_key: str | Sequence[str]) -> None:
        keys = [secret_key] if isinstance(secret_key, str) else list(secret_key)
        oldest_first = keys[::-1]  # itsdangerous signs with the last key, verifies with all
        self._plain = TokenSerializer(oldest_first)
        self._timed = _TimedTokenSerializer(oldest_first)

    def make(self, link: str, purpose: Purpose) -> str:
        """A token for the subscriber whose link id is ``link``."""
        serializer = self._timed if purpose is Purpose.confirm else self._plain
        return serializer.dumps({"link": link, "purpose": purpose.value}, salt=purpose.value)

    def read(self, token: str, purpose: Purpose) -> str:
        """The link id ``token`` was made for, if it is genuine and for ``purpose``; else
        ``TokenError`` (forged, altered, or another purpose's)."""
        if purpose is Purpose.confirm:
            return self.read_confirm(token)[0]
        try:
            payload = self._plain.loads(token, salt=purpose.value)
        except BadData as exc:
            raise TokenError(f"{purpose.value} link is not valid: {type(exc).__name__}") from None
        return _link(payload, purpose)

    def read_confirm(self, token: str, max_age: int = CONFIRM_MAX_AGE) -> tuple[str, datetime]:
        """A confirmation token's link id and when it was made; expired ones are refused."""
        purpose = Purpose.confirm
        try:
            payload, issued = self._timed.loads(
                token, salt=purpose.value, max_age=max_age, return_timestamp=True
            )
        except SignatureExpired:
            raise TokenError("confirm link has expired; sign up again for a new one") from None
        except BadData as exc:
            raise TokenError(f"confirm link is not valid: {type(exc).__name__}") from None
        return _link(payload, purpose), issued


def _link(payload: Any, purpose: Purpose) -> str:
    if (
        not isinstance(payload, dict)
        or payload.get("purpose") != purpose.value
        or not isinstance(payload.get("link"), str)
    ):
        raise TokenError(f"{purpose.value} link is not valid: wrong payload")
    return str(payload["link"])


def new_link() -> str:
    """A subscriber's link id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)
