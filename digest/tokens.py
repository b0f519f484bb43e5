"""Signed tokens for personal links: a subscriber's address and the link's purpose, signed
with the secret key (HMAC-SHA1 via itsdangerous), so a link can act for that subscriber and for
that one purpose only. Confirmation links also carry the time they were made and expire.
"""

from __future__ import annotations

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

__all__ = ["CONFIRM_MAX_AGE", "Purpose", "TokenSerializer", "Tokens"]

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

    def __init__(self, secret_key: str) -> None:
        self._plain = TokenSerializer(secret_key)
        self._timed = _TimedTokenSerializer(secret_key)

    def make(self, email: str, purpose: Purpose) -> str:
        serializer = self._timed if purpose is Purpose.confirm else self._plain
        return serializer.dumps({"email": email, "purpose": purpose.value}, salt=purpose.value)

    def read(self, token: str, purpose: Purpose) -> str:
        """The address ``token`` was made for, if it is genuine and for ``purpose``; else
        ``TokenError`` (forged, altered, or another purpose's)."""
        if purpose is Purpose.confirm:
            return self.read_confirm(token)[0]
        try:
            payload = self._plain.loads(token, salt=purpose.value)
        except BadData as exc:
            raise TokenError(f"{purpose.value} link is not valid: {type(exc).__name__}") from None
        return _email(payload, purpose)

    def read_confirm(self, token: str, max_age: int = CONFIRM_MAX_AGE) -> tuple[str, datetime]:
        """A confirmation token's address and when it was made; expired ones are refused."""
        purpose = Purpose.confirm
        try:
            payload, issued = self._timed.loads(
                token, salt=purpose.value, max_age=max_age, return_timestamp=True
            )
        except SignatureExpired:
            raise TokenError("confirm link has expired; sign up again for a new one") from None
        except BadData as exc:
            raise TokenError(f"confirm link is not valid: {type(exc).__name__}") from None
        return _email(payload, purpose), issued


def _email(payload: Any, purpose: Purpose) -> str:
    if (
        not isinstance(payload, dict)
        or payload.get("purpose") != purpose.value
        or not isinstance(payload.get("email"), str)
    ):
        raise TokenError(f"{purpose.value} link is not valid: wrong payload")
    return str(payload["email"])
