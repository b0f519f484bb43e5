"""The web pages' templates (``templates/web/``): one Jinja environment per app, autoescaped and
strict, so a missing value fails a test instead of showing an empty field."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from digest.render import TEMPLATES
from digest.settings import Settings


class Pages:
    """The web pages' templates (``templates/web/``), autoescaped, sharing the emails' CSS."""

    def __init__(self, settings: Settings) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES / "web"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.css = (TEMPLATES / "email.css").read_text() + (
            TEMPLATES / "web" / "site.css"
        ).read_text()
        self.public_url = settings.public_url

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Template ``name`` filled with ``context`` (and the public URL) as a response."""
        html = self.env.get_template(name).render(public_url=self.public_url, **context)
        return HTMLResponse(html, status_code=status)
