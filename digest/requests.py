"""What a person asks for, validated once for every way in: the CLI's ``digest subscribe``, a
YAML/CSV import and the web's sign-up and preferences forms all build these models, so their
fields, limits and messages cannot drift apart.

``Interests`` holds what both a subscription request and the preferences page edit (themes,
a personal profile, cadence, size, strictness); ``SubscriptionRequest`` adds who is asking,
``Preferences`` adds pause and quiet days. Nothing here touches the store.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from digest.errors import SubscriptionError
from digest.kinds import Cadence
from digest.relevance import DEFAULT_STRICTNESS, Strictness
from digest.themes import Theme

__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT",
    "Interests",
    "Preferences",
    "SubscriptionRequest",
    "check_request",
    "request_from",
]

MAX_TEXT = 2000
"""Characters of free text in an interest."""
MAX_ITEMS = 50
"""Papers per section at most: past that a digest is a listing, not a digest."""
MAX_ENTRY = 200
"""Characters per keyword, theme, author or filter word."""


class Interests(BaseModel):
    """What a subscriber wants, as both a request and the preferences page state it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    themes: tuple[str, ...] = ()
    interest: str = Field("", max_length=MAX_TEXT)
    keywords: tuple[str, ...] = Field((), max_length=50)
    require: tuple[str, ...] = Field((), max_length=20)
    exclude: tuple[str, ...] = Field((), max_length=20)
    cadence: Cadence = Cadence.daily
    max_items: int = Field(10, ge=1, le=MAX_ITEMS)
    strictness: Strictness = DEFAULT_STRICTNESS

    @field_validator("themes", "keywords", "require", "exclude")
    @classmethod
    def _words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _cleaned(value)

    @property
    def personal(self) -> bool:
        """Whether this asks for a personal profile (an interest or keywords of its own)."""
        return bool(self.interest.strip() or self.keywords)


class SubscriptionRequest(Interests):
    """Someone asking for themes and/or a personal profile (CLI, import or sign-up form)."""

    email: str
    name: str = Field("", max_length=MAX_ENTRY)
    timezone: str = "UTC"
    authors: tuple[str, ...] = Field((), max_length=50)
    quiet_days: bool | None = Field(
        None, description="a short digest on days with no match; None leaves it as it was"
    )
    channel: str | None = Field(
        None, max_length=2000, description="apprise:URL instead of email; None leaves it"
    )

    @field_validator("authors")
    @classmethod
    def _authors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _cleaned(value)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("apprise:") and "://" in value):
            raise ValueError("expected apprise:URL, e.g. apprise:ntfy://ntfy.sh/my-topic")
        return value

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return validate_email(value.strip(), check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            raise ValueError(f"{value!r} is not an email address: {exc}") from exc

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone such as Europe/Berlin") from None
        return value

    @property
    def has_profile(self) -> bool:
        return bool(self.interest.strip() or self.keywords or self.require or self.authors)


class Preferences(Interests):
    """What the preferences page edits: the interests, and pause / quiet days."""

    paused: bool = False
    quiet_days: bool = False


def request_from(fields: dict[str, Any], where: str) -> SubscriptionRequest:
    """Validate raw fields into a request, or ``SubscriptionError`` naming ``where`` and field."""
    try:
        return SubscriptionRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "request"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SubscriptionError(f"{where}: {field}: {message}") from None


def check_request(request: Interests, themes: dict[str, Theme], where: str = "") -> None:
    """Refuse interests that ask for nothing or for a theme outside the catalogue (before
    anything is written); ``where`` prefixes the message."""
    if not request.themes and not request.personal:
        raise SubscriptionError(f"{where}give a theme, an interest or a keyword")
    unknown = [t for t in request.themes if t not in themes]
    if unknown:
        raise SubscriptionError(
            f"{where}theme {unknown[0]!r} is not in the catalogue ({', '.join(themes)})"
        )


def _cleaned(value: tuple[str, ...]) -> tuple[str, ...]:
    """Stripped, blank and repeated entries dropped, each at most ``MAX_ENTRY`` characters."""
    cleaned = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
    if any(len(v) > MAX_ENTRY for v in cleaned):
        raise ValueError(f"each entry must be at most {MAX_ENTRY} characters")
    return cleaned
