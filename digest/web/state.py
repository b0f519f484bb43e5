"""Everything the routes share, as one typed object per app: ``create_app`` builds it and puts
it on ``app.state``; routes get it through ``deps.get_state`` rather than from a closure, so
each route module stands alone."""

from __future__ import annotations

from dataclasses import dataclass

from limits import RateLimitItem
from limits.strategies import MovingWindowRateLimiter

from digest.archive import Archive
from digest.db import Engine
from digest.render import Renderer
from digest.settings import Settings
from digest.themes import Theme
from digest.tokens import Tokens
from digest.web.mail import MailQueue
from digest.web.pages import Pages
from digest.web.samples import Samples


@dataclass(frozen=True)
class WebState:
    """One app's store, themes, tokens, templates, mail queue and limits."""

    settings: Settings
    engine: Engine
    themes: dict[str, Theme]
    """The theme catalogue sign-ups and preferences choose from."""
    tokens: Tokens
    renderer: Renderer
    """Renders the sign-up emails and each issue's "view in browser" page."""
    pages: Pages
    mail: MailQueue
    """The sign-up emails' queue (the lifespan starts and stops its workers)."""
    archive: Archive
    """The static archive, whose pages of a deleted account go with it."""
    limiter: MovingWindowRateLimiter
    signup_rate: RateLimitItem
    """Sign-ups one client address may make (``settings.signup_rate``)."""
    csrf_key: bytes
    https: bool
    """The public URL is https: cookies are ``Secure`` and responses carry HSTS."""
    samples: Samples
