""" "More like this" and "less like this" from a digest's papers: the link opens a page with a
button, and only the button's POST records the vote."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from digest.db import accounts
from digest.db.accounts import Vote
from digest.tokens import Purpose
from digest.web.deps import StateDep, check_csrf, page, reader
from digest.web.forms import Token

router = APIRouter()


@router.get("/feedback/{token}", response_class=HTMLResponse, summary="Feedback on a paper")
def feedback_page(
    request: Request,
    state: StateDep,
    token: str,
    paper: Annotated[str, Query(max_length=64)],
    vote: Vote,
) -> HTMLResponse:
    """The email's vote link shows the paper and a button, and records nothing."""
    reader(state, token, Purpose.feedback)
    title = accounts.paper_title(state.engine, paper)
    if title is None:
        raise HTTPException(404, "That paper is not in our store.")
    return page(request, "feedback.html.j2", token=token, paper=paper, vote=vote.value, title=title)


@router.post("/feedback/{token}", response_class=HTMLResponse, summary="Record feedback")
def feedback(
    request: Request,
    state: StateDep,
    token: str,
    csrf: Token,
    paper: Annotated[str, Form(max_length=64)],
    vote: Annotated[Vote, Form()],
) -> HTMLResponse:
    """Record the vote; the subscriber's next digests lean towards it."""
    email = reader(state, token, Purpose.feedback)
    check_csrf(request, csrf)
    if not accounts.record_feedback(state.engine, email, paper, vote):
        raise HTTPException(404, "That paper or subscription is not in our store.")
    more = "more" if vote is Vote.more else "fewer"
    return page(
        request,
        "message.html.j2",
        title="Thanks, noted",
        message=f"Your next digests will have {more} papers like that one.",
        link=None,
    )
