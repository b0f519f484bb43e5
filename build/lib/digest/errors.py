"""Every error papers-digest raises on purpose, in one tree.

    DigestError                      base: the CLI turns any of these into one line + exit 1
    ├── ConfigError                  a setting or argument is wrong (bad URL, reversed dates)
    ├── SourceError                  reading a source failed
    │   ├── ParseError               input is not in the expected shape (where, field, expected)
    │   │   └── DateMismatchError    a list page shows another date than the one asked for
    │   └── FetchError               an HTTP request failed for good (names URL and status)
    │       └── TransientFetchError  429, 5xx, timeout, cut-off body: worth retrying later
    ├── StoreError                   the store could not be read or written
    ├── SubscriptionError            a subscription request is not acceptable (names the field)
    ├── TokenError                   a personal link is forged, altered, expired or misused
    ├── EmbeddingError               the embedding model's process failed (exit, reason)
    ├── DeliveryError                a message could not be handed to its channel
    │   ├── TransientDeliveryError   4xx reply, dropped connection, timeout: retry with backoff
    │   ├── PermanentDeliveryError   5xx reply, refused address: fail the row, count a bounce
    │   └── UndeliverableError       this message can't go as built (e.g. an address the server
    │                                can't take): fail that row alone, no bounce, no retry
    └── PartialFailure               a run finished but some pages or days failed (listed)

Third-party errors (httpx, SQLAlchemy, json, pydantic) are translated where they happen with
``raise ... from exc`` so callers only ever handle this tree. Retry logic keys on ``Transient*``.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DateMismatchError",
    "DeliveryError",
    "DigestError",
    "EmbeddingError",
    "FetchError",
    "ParseError",
    "PartialFailure",
    "PermanentDeliveryError",
    "SourceError",
    "StoreError",
    "SubscriptionError",
    "TokenError",
    "TransientDeliveryError",
    "TransientFetchError",
    "UndeliverableError",
]


class DigestError(Exception):
    """Base class: something papers-digest can explain in one line."""


class ConfigError(DigestError):
    """A setting, parameter or command-line argument has an unusable value."""


class SourceError(DigestError):
    """Reading papers from a source (file or site) failed."""


class ParseError(SourceError):
    """Input does not have the documented shape.

    ``where`` is a ``file:line`` or a URL, ``field`` the part that is wrong, ``expected`` what
    should have been there.
    """

    def __init__(self, where: str, field: str, expected: str, got: str | None = None) -> None:
        self.where, self.field, self.expected, self.got = where, field, expected, got
        message = f"{where}: {field}: expected {expected}"
        if got is not None:
            message += f", got {_clip(got)}"
        super().__init__(message)


class DateMismatchError(ParseError):
    """The site answered a dated request with another day's page (it clamps unknown dates)."""

    def __init__(self, where: str, requested: str, shown: str) -> None:
        super().__init__(where, "dateString", f"the requested period {requested}", shown)
        self.requested, self.shown = requested, shown


class FetchError(SourceError):
    """An HTTP request failed in a way retrying will not fix (404, 400, ...)."""

    def __init__(self, url: str, status: int | None, reason: str) -> None:
        self.url, self.status, self.reason = url, status, reason
        status_text = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{url}: {status_text}: {reason}")


class TransientFetchError(FetchError):
    """An HTTP failure that may succeed later; ``retry_after`` is the server's hint in seconds."""

    def __init__(
        self, url: str, status: int | None, reason: str, retry_after: float | None = None
    ) -> None:
        super().__init__(url, status, reason)
        self.retry_after = retry_after


class StoreError(DigestError):
    """The database could not be opened, migrated, read or written."""


def _clip(text: str, limit: int = 80) -> str:
    text = text.replace("\n", "\\n")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


class SubscriptionError(DigestError):
    """A subscription request is not acceptable: bad address, unknown theme, a duplicate..."""


class TokenError(DigestError):
    """A signed link's token is forged, altered, expired, or made for another purpose."""


class EmbeddingError(DigestError):
    """The child process that embeds texts failed or answered nonsense."""


class DeliveryError(DigestError):
    """Handing a message to its channel failed; ``reply`` is the server's words, if any."""

    def __init__(self, recipient: str, reply: str) -> None:
        self.recipient, self.reply = recipient, reply
        super().__init__(f"{recipient}: {reply}")


class TransientDeliveryError(DeliveryError):
    """Worth retrying later: a 4xx reply, a dropped connection, a timeout."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: a 5xx reply or a refused address. Counts as a hard bounce."""


class UndeliverableError(DeliveryError):
    """This one message cannot be delivered as built: an internationalised address to a server
    without SMTPUTF8, or an error nobody foresaw. Fails that row alone; not a bounce (the
    subscriber did nothing wrong) and not retried (it would fail the same way)."""


class PartialFailure(DigestError):
    """A run stored what it could, but some pages or days failed; ``failures`` lists them."""

    def __init__(self, what: str, failures: list[str], summary: object = None) -> None:
        self.what, self.failures, self.summary = what, failures, summary
        shown = "; ".join(failures[:3]) + (
            f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
        )
        super().__init__(f"{what}: {len(failures)} failed: {shown}")

    def __reduce__(self) -> tuple[object, ...]:  # Prefect may pickle what a flow raised
        return (type(self), (self.what, self.failures, self.summary))
