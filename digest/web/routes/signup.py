"""Sign-up with double opt-in: the form, the sign-up itself (rate-limited per client, its email
queued, never sent inside the request), and the confirmation link, whose GET only shows a
button because link scanners open every URL in an email."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from digest.db import accounts
from digest.db.accounts import ConfirmOutcome
from digest.db.models import Cadence
from digest.errors import SubscriptionError, TokenError
from digest.requests import request_from
from digest.subscriptions import unmatched_note
from digest.web.deps import StateDep, check_csrf, page, preferences_link
from digest.web.forms import Short, Text, Token, plain, split
from digest.web.state import WebState

log = logging.getLogger(__name__)

router = APIRouter()

_STALE = (
    "This link was replaced by a newer one or is no longer "
    "valid. Sign up again to get a fresh link."
)


@router.get("/", response_class=HTMLResponse, summary="The sign-up form")
def home(request: Request, state: StateDep) -> HTMLResponse:
    """The sign-up form, with a few recent papers under each theme."""
    return _form_page(request, state)


@router.post("/", response_class=HTMLResponse, summary="Sign up (double opt-in)")
def sign_up(
    request: Request,
    state: StateDep,
    email: Short,
    csrf: Token,
    themes: Annotated[list[str], Form(max_length=50)] = [],  # noqa: B006
    interest: Text = "",
    keywords: Short = "",
    cadence: Annotated[Cadence, Form()] = Cadence.daily,
) -> HTMLResponse:
    """Record the sign-up and queue its confirmation email; the page says the same whether or
    not the address was new, so it tells nobody who subscribes."""
    check_csrf(request, csrf)
    client = request.client.host if request.client else "unknown"
    values = {"email": email, "themes": themes, "interest": interest, "keywords": keywords}
    values["cadence"] = cadence.value
    if not state.limiter.hit(state.signup_rate, "signup", client):
        error = "Too many sign-ups from here; try later."
        return _form_page(request, state, 429, error=error, values=values)
    try:
        wanted = request_from(
            {
                "email": email,
                "themes": themes,
                "interest": interest,
                "keywords": split(keywords),
                "cadence": cadence,
            },
            "sign-up",
        )
        resend = timedelta(seconds=state.settings.signup_resend)
        outcome = accounts.sign_up(state.engine, wanted, state.themes, resend)
    except SubscriptionError as exc:
        return _form_page(request, state, 422, error=plain(str(exc)), values=values)
    if outcome.send is not None and outcome.at is not None:
        if not state.mail.submit(outcome.email, outcome.send, outcome.at):
            log.warning(
                "sign-up email not queued: %d wait for the mail server", state.mail.capacity
            )
            accounts.sign_up_failed(state.engine, outcome.email, outcome.at)
            error = "We could not send the email just now; try again soon."
            return _form_page(request, state, 503, values=values, error=error)
    message = (
        f"If {outcome.email} can get Papers Digest, a message is on its way there. Open it "
        "and confirm to start receiving digests."
    )
    note = unmatched_note(state.engine, wanted)
    if note:
        message += f" Note: {note}."
    return page(
        request, "message.html.j2", 200, title="Check your inbox", message=message, link=None
    )


@router.get("/confirm/{token}", response_class=HTMLResponse, summary="Confirmation page")
def confirm_page(request: Request, state: StateDep, token: str) -> HTMLResponse:
    """The emailed link shows a button and changes nothing: link scanners open it too."""
    email, _ = _confirming(state, token)
    return page(request, "confirm.html.j2", token=token, email=email)


@router.post("/confirm/{token}", response_class=HTMLResponse, summary="Confirm an address")
def confirm(request: Request, state: StateDep, token: str, csrf: Token) -> HTMLResponse:
    """The confirmation button: the address gets digests from now on (410 if a newer link
    replaced this one)."""
    email, issued = _confirming(state, token)
    check_csrf(request, csrf)
    outcome = accounts.confirm(state.engine, email, issued)
    if outcome is ConfirmOutcome.stale:
        raise HTTPException(410, _STALE)
    preferences = preferences_link(state, email)
    title = "You're subscribed" if outcome is ConfirmOutcome.confirmed else "Already confirmed"
    return page(
        request,
        "message.html.j2",
        200,
        title=title,
        message=f"{email} will get Papers Digest.",
        link=(preferences, "Choose themes and cadence"),
    )


def _confirming(state: WebState, token: str) -> tuple[str, datetime]:
    """A confirmation link's address and when it was made; a link whose subscriber has
    left (or whose links were revoked) is gone for good."""
    try:
        link, issued = state.tokens.read_confirm(token)
    except TokenError:
        raise HTTPException(404, "This confirmation link is not valid or has expired.") from None
    email = accounts.email_for_link(state.engine, link)
    if email is None:
        raise HTTPException(410, _STALE)
    return email, issued


def _form_page(
    request: Request, state: WebState, status: int = 200, **context: Any
) -> HTMLResponse:
    """The sign-up form, blank or with what was sent and what is wrong with it."""
    context.setdefault("error", None)
    context.setdefault("values", {})
    return page(
        request,
        "subscribe.html.j2",
        status,
        themes=list(state.themes.values()),
        samples=state.samples.get(),
        cadences=[c.value for c in Cadence],
        **context,
    )
