"""The app factory: one ``WebState`` per app, kept on ``app.state`` for the routes' dependencies,
and the middleware, the archive mount, the routers and the error pages around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from limits import parse as parse_rate
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException

from digest.db import Engine
from digest.runtime import Runtime
from digest.settings import Settings
from digest.themes import Theme
from digest.tokens import Tokens
from digest.web.error_pages import crashed, http_error, invalid_request
from digest.web.mail import MAIL_GRACE, MailQueue, SignupMail
from digest.web.pages import Pages
from digest.web.routes import feedback, issues, preferences, signup, site, unsubscribe
from digest.web.samples import Samples
from digest.web.security import REDACT, BodyLimit, SecurityHeaders, csrf_key
from digest.web.state import WebState


def create_app(
    settings: Settings, engine: Engine | None = None, themes: dict[str, Theme] | None = None
) -> FastAPI:
    """The web app over the store ``settings`` names (or ``engine``)."""
    state = _state(settings, Runtime.from_settings(settings, engine=engine, themes=themes))
    app = FastAPI(
        title="Papers Digest",
        summary="Subscribe to personalised digests of Hugging Face Daily Papers.",
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
        exception_handlers={HTTPException: http_error, RequestValidationError: invalid_request},
    )
    app.state.web = state
    app.state.signup_mail = state.mail  # by its own name too: tests wait on it until idle
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders, hsts=state.https, error_page=partial(crashed, state.pages))
    archive = settings.archive_dir
    archive.mkdir(parents=True, exist_ok=True)
    app.include_router(issues.router)  # before the static archive: issues are rendered
    app.mount("/archive", StaticFiles(directory=archive, html=True), name="archive")
    for routes in (signup, preferences, unsubscribe, feedback, site):
        app.include_router(routes.router)
    return app


def _state(settings: Settings, runtime: Runtime) -> WebState:
    """Everything the routes share, built once per app from the run's parts."""
    # The queue's knobs are read from the package now, not bound when this module loads:
    # ``digest.web.MAIL_WORKERS`` and ``MAIL_QUEUE`` stay the places to turn (tests shrink them).
    from digest import web

    keys = settings.key_ring()
    tokens = Tokens(keys.keys)
    engine = runtime.engine
    mail = SignupMail(settings, runtime.renderer, tokens, engine)
    return WebState(
        settings=settings,
        engine=engine,
        themes=runtime.themes,
        tokens=tokens,
        renderer=runtime.renderer,
        pages=Pages(settings),
        mail=MailQueue(mail, engine, web.MAIL_WORKERS, web.MAIL_QUEUE),
        archive=runtime.archive,
        limiter=MovingWindowRateLimiter(MemoryStorage()),
        signup_rate=parse_rate(settings.signup_rate),
        csrf_key=csrf_key(keys.signing),
        https=settings.public_url.startswith("https://"),
        samples=Samples(engine, runtime.themes),
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the app serves: the sign-up mail workers run and uvicorn's access log drops
    tokens; on the way out the queued emails get ``MAIL_GRACE`` seconds to go."""
    state: WebState = app.state.web
    state.mail.start()
    access = logging.getLogger("uvicorn.access")
    access.addFilter(REDACT)
    try:
        yield
    finally:
        access.removeFilter(REDACT)
        await asyncio.to_thread(state.mail.stop, MAIL_GRACE)
