"""Form fields with the bounds every form here shares, and the reading of their free text.

The bounds are part of the OpenAPI schema, so a request over them is a 422 page before a
route runs (and the schemathesis test knows what to generate)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form

Text = Annotated[str, Form(max_length=2000)]
"""Free text: the interest a subscriber describes."""
Short = Annotated[str, Form(max_length=400)]
"""An address or a comma-separated list of words."""
Token = Annotated[str, Form(max_length=100)]
"""The hidden CSRF field."""


def split(text: str) -> tuple[str, ...]:
    """Comma- or newline-separated words from a form field."""
    return tuple(w.strip() for w in text.replace("\n", ",").split(",") if w.strip())


def plain(message: str) -> str:
    """An error for a person: without the internal prefix naming the request."""
    return message.split(": ", 1)[1] if message.startswith("sign-up: ") else message
