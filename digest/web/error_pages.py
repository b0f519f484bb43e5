"""The site's own page for every refused or failed request, in the layout of the others and
with a title per status; FastAPI's default JSON errors would echo what was sent."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from digest.web.deps import get_state
from digest.web.pages import Pages

TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Not allowed",
    410: "Link no longer valid",
    413: "Too large",
    422: "Please check the form",
    429: "Slow down",
    500: "Something went wrong",
    503: "Try again soon",
}


def crashed(pages: Pages) -> Response:
    """The 500 page, which ``security.SecurityHeaders`` sends when a route raised."""
    return pages.render(
        "message.html.j2",
        500,
        title=TITLES[500],
        message="Something went wrong on our side. Please try again in a moment.",
        link=None,
    )


async def http_error(request: Request, exc: HTTPException) -> HTMLResponse:
    """An ``HTTPException`` (a route's, or the router's 404 and 405) as a page."""
    return get_state(request).pages.render(
        "message.html.j2",
        exc.status_code,
        title=TITLES.get(exc.status_code, "Error"),
        message=str(exc.detail),
        link=None,
    )


async def invalid_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
    """A form field out of bounds: say which and why, never echo what was sent."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
        for e in exc.errors()[:5]
    )
    return get_state(request).pages.render(
        "message.html.j2", 422, title=TITLES[422], message=problems, link=None
    )
