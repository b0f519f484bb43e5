"""Leaving from an email's footer: a page with a button, and the RFC 8058 one-click POST that
mail providers send without cookies, so its body and the token are its only credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from digest.db import accounts
from digest.tokens import Purpose
from digest.web.deps import StateDep, page, preferences_link, reader

router = APIRouter()


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, summary="Unsubscribe page")
def unsubscribe_page(request: Request, state: StateDep, token: str) -> HTMLResponse:
    """The footer's link shows a button and changes nothing: link scanners open it too."""
    email = reader(state, token, Purpose.unsubscribe)
    return page(request, "unsubscribe.html.j2", token=token, email=email)


@router.post(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    summary="Unsubscribe (RFC 8058 one-click)",
)
def unsubscribe(
    request: Request,
    state: StateDep,
    token: str,
    one_click: Annotated[str, Form(alias="List-Unsubscribe", max_length=20)] = "",
) -> HTMLResponse:
    """Stop the digests; the page's button and a mail provider's one-click POST send the same
    body, and no CSRF field (a provider has no cookie)."""
    email = reader(state, token, Purpose.unsubscribe)
    if one_click != "One-Click":
        raise HTTPException(400, "Expected List-Unsubscribe=One-Click.")
    accounts.leave(state.engine, email)
    preferences = preferences_link(state, email)
    return page(
        request,
        "message.html.j2",
        title="You're unsubscribed",
        message=f"{email} will get no more digests.",
        link=(preferences, "Changed your mind? Resubscribe"),
    )
