"""What the routes share, over the app's one ``WebState``: the state itself as a FastAPI
dependency, pages that carry the CSRF cookie, the CSRF check, and the readers of personal
links.

The token readers and the CSRF check are plain calls a route makes first thing, not
dependencies: FastAPI resolves dependencies before it validates the form, and a route's order
(a bad form is a 422, then a bad link a 404, then a stale form a 403) is part of its contract.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from digest.db import accounts
from digest.errors import TokenError
from digest.tokens import Purpose
from digest.web.security import CSRF_COOKIE, csrf_cookie, csrf_matches
from digest.web.state import WebState


def get_state(request: Request) -> WebState:
    """The app's ``WebState`` (``create_app`` puts it on ``app.state``)."""
    state: WebState = request.app.state.web
    return state


StateDep = Annotated[WebState, Depends(get_state)]
"""A route's parameter for the app's state."""


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Template ``name`` as a page whose forms pass the CSRF check: the browser's cookie if
    genuine (set afresh if not) and the hidden field that repeats it."""
    state = get_state(request)
    cookie = csrf_cookie(request.cookies.get(CSRF_COOKIE) or "", state.csrf_key)
    context.setdefault("csrf", cookie)
    response = state.pages.render(name, status, **context)
    response.set_cookie(
        CSRF_COOKIE, cookie, httponly=True, samesite="strict", secure=state.https, path="/"
    )
    return response


def check_csrf(request: Request, field: str) -> None:
    """403 unless the form's CSRF ``field`` repeats the browser's genuine cookie: the form
    came from a page of this site, in this browser."""
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    if not csrf_matches(cookie, field, get_state(request).csrf_key):
        raise HTTPException(403, "The form expired or came from another site. Reload it.")


def reader(state: WebState, token: str, purpose: Purpose) -> str:
    """The address a personal link acts for: its token is genuine and for ``purpose``,
    and its link id still belongs to someone (not revoked, not erased)."""
    try:
        email = accounts.email_for_link(state.engine, state.tokens.read(token, purpose))
    except TokenError:
        email = None
    if email is None:
        raise HTTPException(404, "This link is not valid.")
    return email


def preferences_link(state: WebState, email: str) -> str:
    """A fresh link to ``email``'s preferences page (404 if the address is gone meanwhile)."""
    link = accounts.link_for(state.engine, email)
    if link is None:
        raise HTTPException(404, "This link is not valid.")
    return f"/preferences/{state.tokens.make(link, Purpose.preferences)}"
