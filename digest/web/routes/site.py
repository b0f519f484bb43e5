"""What the pages need besides themselves: the stylesheet, and a health check for whatever
runs the app. Neither is in the OpenAPI schema."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from digest.web.deps import StateDep

router = APIRouter()


@router.get("/assets/site.css", include_in_schema=False)
def stylesheet(state: StateDep) -> Response:
    """The emails' CSS and the site's own, served from here because the pages' CSP allows
    styles from this site only; cached for an hour."""
    return Response(
        state.pages.css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    """Up, and answering: the app touches no store to say so."""
    return {"status": "ok"}
