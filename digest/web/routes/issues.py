""" "View in browser": a subscriber's issue rendered when it is asked for, from what its ledger
row recorded (``digest.contents``) and the papers as the store holds them now. The address is
the issue's name, keyed and unguessable (``digest.issues``), so it is the page's credential, as
the static page's file name was; an unknown, unsent or deleted issue is a 404.

The path stays under ``/archive/`` (the URL in every email sent before pages were rendered on
demand); the archive's other top-level page, its index, is still a static file.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException

from digest.compose import digest_paper
from digest.contents import rebuild
from digest.db import papers as papers_db
from digest.db import sent
from digest.web.deps import StateDep

router = APIRouter()

ISSUE = re.compile(r"\d{4}-[0-9A-Za-z.\-]+-[0-9a-f]{20}")
"""An issue's name: its period's label, then its 20-hex key (``IssueNames.name``)."""


@router.get("/archive/{name}.html", include_in_schema=False)
def issue_page(name: str, state: StateDep) -> Response:
    """The issue's page, with its subscriber's personal links; other top-level archive pages
    (the index) are served as the files they are."""
    if not ISSUE.fullmatch(name):
        return _static(state.archive.folder, f"{name}.html")
    issue = sent.sent_issue(state.engine, name)
    if issue is None:
        raise HTTPException(404, "no such issue")
    keys = {p[0] for s in issue.contents.get("sections", []) for p in s["papers"]}
    papers = {p.key: digest_paper(p) for p in papers_db.by_keys(state.engine, keys)}
    digest = rebuild(issue.contents, papers, email=issue.email, link_id=issue.link_id)
    return HTMLResponse(
        state.renderer.web_page(digest),
        headers={"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex"},
    )


def _static(folder: Path, file: str) -> Response:
    """A top-level archive file, as the static mount would serve it."""
    path = folder / file
    if path.parent != folder or not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, media_type="text/html")
