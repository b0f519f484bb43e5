"""A subscriber's own page, reached through the preferences link: change themes, interest,
keywords and cadence, download everything stored about them, or delete it all."""

from __future__ import annotations

import json
import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from digest.db import accounts, privacy
from digest.db.models import Cadence, SubscriberStatus
from digest.errors import SubscriptionError
from digest.relevance import DEFAULT_STRICTNESS, Strictness
from digest.requests import Preferences
from digest.subscriptions import unmatched_note
from digest.tokens import Purpose
from digest.web.deps import StateDep, check_csrf, page, reader
from digest.web.forms import Short, Text, Token, plain, split
from digest.web.state import WebState

log = logging.getLogger(__name__)

router = APIRouter()

_GONE = "There is no subscription for this link any more."


@router.get("/preferences/{token}", response_class=HTMLResponse, summary="Preferences")
def preferences(request: Request, state: StateDep, token: str, saved: bool = False) -> HTMLResponse:
    """The preferences form, filled with what the subscriber has now."""
    email = reader(state, token, Purpose.preferences)
    found = accounts.account(state.engine, email)
    if found is None:
        raise HTTPException(404, _GONE)
    return _preferences_page(request, state, token, found, saved=saved)


@router.post("/preferences/{token}", response_class=HTMLResponse, summary="Save preferences")
def save_preferences(
    request: Request,
    state: StateDep,
    token: str,
    csrf: Token,
    themes: Annotated[list[str], Form(max_length=50)] = [],  # noqa: B006
    interest: Text = "",
    keywords: Short = "",
    require: Short = "",
    exclude: Short = "",
    cadence: Annotated[Cadence, Form()] = Cadence.daily,
    max_items: Annotated[int, Form(ge=1, le=50)] = 10,
    strictness: Annotated[Strictness, Form()] = DEFAULT_STRICTNESS,
    paused: Annotated[bool, Form()] = False,
    quiet_days: Annotated[bool, Form()] = False,
) -> Response:
    """Save the form and redirect to the page (post/redirect/get: a reload posts nothing)."""
    email = reader(state, token, Purpose.preferences)
    check_csrf(request, csrf)
    found = accounts.account(state.engine, email)
    if found is None:
        raise HTTPException(404, _GONE)
    try:
        wanted = Preferences(
            themes=tuple(themes),
            interest=interest,
            keywords=split(keywords),
            require=split(require),
            exclude=split(exclude),
            cadence=cadence,
            max_items=max_items,
            strictness=strictness,
            paused=paused,
            quiet_days=quiet_days,
        )
        accounts.update_preferences(state.engine, email, wanted, state.themes)
    except (SubscriptionError, ValueError) as exc:
        error = plain(str(exc))
        return _preferences_page(request, state, token, found, status=422, error=error)
    return RedirectResponse(f"/preferences/{token}?saved=true", status_code=303)


@router.get("/preferences/{token}/export", summary="Everything stored about you, as JSON")
def export(state: StateDep, token: str) -> Response:
    """Everything stored about the subscriber, as a JSON download (the right of access)."""
    email = reader(state, token, Purpose.preferences)
    data = privacy.export_account(state.engine, email)
    if data is None:
        raise HTTPException(404, _GONE)
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="papers-digest-data.json"'},
    )


@router.post(
    "/preferences/{token}/delete",
    response_class=HTMLResponse,
    summary="Delete everything stored about you",
)
def delete(
    request: Request,
    state: StateDep,
    token: str,
    csrf: Token,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    """Erase the subscriber and their archive pages (the right to erasure); if a page will not
    go, the account stays so that a retry can finish the job."""
    email = reader(state, token, Purpose.preferences)
    check_csrf(request, csrf)
    if confirm != "yes":
        raise HTTPException(400, "Tick the box to confirm the deletion.")
    try:
        privacy.delete_account(state.engine, email, state.archive.remove_issues)
    except OSError as exc:  # an archive page would not go: the account stays, to retry
        log.warning("deleting an account's archive pages failed: %s", exc)
        raise HTTPException(
            503, "We could not delete everything just now. Please try again soon."
        ) from None
    return page(
        request,
        "message.html.j2",
        title="Deleted",
        message="Everything we stored about you is gone.",
        link=None,
    )


def _preferences_page(
    request: Request,
    state: WebState,
    token: str,
    found: accounts.Account,
    *,
    status: int = 200,
    saved: bool = False,
    error: str | None = None,
) -> HTMLResponse:
    """The preferences form for ``found``, saved or with what is wrong with the last try, and
    a note on any of their words no stored paper has."""
    return page(
        request,
        "preferences.html.j2",
        status,
        token=token,
        account=found,
        saved=saved,
        themes=list(state.themes.values()),
        cadences=[c.value for c in Cadence],
        error=error,
        unsubscribed=found.status == SubscriberStatus.unsubscribed,
        unmatched=unmatched_note(state.engine, found.preferences),
    )
