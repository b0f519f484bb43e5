"""The subscription web app (FastAPI): sign up with double opt-in, confirm, manage preferences,
one-click unsubscribe (RFC 8058), feedback from the email's links, privacy export and deletion,
and the static archive with its Atom feeds.

Every personal page is reached through a signed, purpose-scoped token (``digest.tokens``); a bad
token is a 404 that changes nothing. Pages that change something do so only on POST, behind a
double-submit CSRF check, so link scanners that fetch every URL in an email change nothing
(confirming a sign-up included: its link opens a page with a button). The one exception is the
RFC 8058 one-click POST, which mail providers send without cookies: its body
``List-Unsubscribe=One-Click`` and the token are its credentials.

Sign-up emails go out from a bounded queue on the app's own threads (``_MailQueue``), never
inside a request: a slow or dead mail server holds no page. Every response, an unhandled
error's 500 included, carries the security headers (``_SecurityHeaders``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import queue
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from limits import parse as parse_rate
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException

from digest.archive import Archive
from digest.compose import compose_theme_days
from digest.db import Engine, accounts, get_engine
from digest.db.accounts import ConfirmOutcome, Vote
from digest.db.models import Cadence, SubscriberStatus
from digest.db.papers import listing_days, newest_listing_day
from digest.delivery import deliverer_for, describe
from digest.errors import DigestError, SubscriptionError, TokenError
from digest.relevance import DEFAULT_STRICTNESS, Strictness
from digest.render import TEMPLATES, Renderer
from digest.requests import Preferences, request_from
from digest.settings import Settings
from digest.themes import Theme, load_themes
from digest.tokens import Purpose, Tokens

__all__ = ["MAX_BODY", "create_app"]

log = logging.getLogger(__name__)

MAX_BODY = 32_768
"""Bytes a request body may hold; every form here fits in a fraction of it."""
CSRF_COOKIE = "pd_csrf"
SAMPLE_PAPERS = 3
"""Recent papers shown under each theme on the sign-up form, from the last ``SAMPLE_DAYS``."""
SAMPLE_DAYS = 7
MAIL_WORKERS = 4
"""Threads that send sign-up emails, apart from the request threads: a slow mail server holds
these, never a page."""
MAIL_QUEUE = 1000
"""Sign-up emails that may wait for a mail worker; past that a sign-up is asked to retry."""
MAIL_GRACE = 10.0
"""Seconds a stopping app gives the queued sign-up emails to go out."""
HSTS = "max-age=31536000"
"""Strict-Transport-Security, sent when the public URL is https (one year; this host only)."""

_PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_ARCHIVE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)

Text = Annotated[str, Form(max_length=2000)]
Short = Annotated[str, Form(max_length=400)]
Token = Annotated[str, Form(max_length=100)]


class _BodyLimit:
    """ASGI middleware: refuse bodies over ``MAX_BODY`` with 413, whether or not the client
    declared a length (a chunked upload is counted as it arrives)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await _too_large(send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise HTTPException(413, "request body too large")
            return message

        await self.app(scope, counted, send)


async def _too_large(send: Any) -> None:
    body = b"request body too large"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"22")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _SecurityHeaders:
    """ASGI middleware, the outermost of the app's own: the security headers on every response,
    whoever made it (a route, an error handler, the body limit, the archive's files), and for
    an unhandled exception the site's own 500 page with them, before the exception goes on to
    the server's log (Starlette's fallback answer would carry none)."""

    def __init__(self, app: Any, *, hsts: bool, error_page: Callable[[], Response]) -> None:
        self.app, self.hsts, self.error_page = app, hsts, error_page

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        archived = str(scope.get("path", "")).startswith("/archive")
        extra = {
            "Content-Security-Policy": _ARCHIVE_CSP if archived else _PAGE_CSP,
            "Referrer-Policy": "no-referrer",  # tokens are in our URLs
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        }
        if not archived:
            extra["Cache-Control"] = "no-store"
        if self.hsts:
            extra["Strict-Transport-Security"] = HSTS
        started = False

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            if not started:
                await self.error_page()(scope, receive, with_headers)
            raise


class _Pages:
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
        html = self.env.get_template(name).render(public_url=self.public_url, **context)
        return HTMLResponse(html, status_code=status)


class _SignupMail:
    """Sends the one email an unconfirmed address may get (or, for a subscriber, a link to
    their preferences) through the configured channel, one connection per message."""

    def __init__(
        self, settings: Settings, renderer: Renderer, tokens: Tokens, engine: Engine
    ) -> None:
        self._settings, self._renderer, self._tokens = settings, renderer, tokens
        self._engine = engine

    def send(self, email: str, kind: str) -> None:
        public = self._settings.public_url
        link = accounts.link_for(self._engine, email)
        if link is None:  # erased meanwhile: nothing to confirm or manage any more
            log.info("a %s email was not sent: the address left before it could go", kind)
            return
        if kind == "confirm":
            message = self._renderer.notice(
                email,
                subject="Confirm your Papers Digest subscription",
                body="Someone, hopefully you, asked to get Papers Digest at this address. "
                "Nothing will be sent until you confirm.",
                action="Confirm my subscription",
                url=f"{public}/confirm/{self._tokens.make(link, Purpose.confirm)}",
                footnote="If it was not you, ignore this email: you will not hear from us again.",
            )
        else:
            message = self._renderer.notice(
                email,
                subject="Your Papers Digest subscription",
                body="Someone asked to subscribe this address, which already gets Papers "
                "Digest. Nothing changed. To change your themes or cadence, use your "
                "preferences page.",
                action="Manage my preferences",
                url=f"{public}/preferences/{self._tokens.make(link, Purpose.preferences)}",
                footnote="If it was not you, ignore this email; your subscription is unchanged.",
            )
        channel = self._settings.delivery.get_secret_value()
        deliverer = deliverer_for(channel, self._settings.outbox_dir)
        name = "signup-" + hashlib.sha256(message.headers["Message-ID"].encode()).hexdigest()[:16]
        try:
            deliverer.deliver(message, name, lambda: True)
        finally:
            deliverer.close()
        log.info("sent a %s email through %s", kind, describe(channel))


_Job = tuple[str, str, datetime]
"""A queued sign-up email: the address, its kind (``confirm`` or ``manage``), and when the
sign-up asked for it (``accounts.sign_up_failed`` needs it to undo the resend throttle)."""


class _MailQueue:
    """Sends the sign-up emails from a bounded queue on ``workers`` threads of its own, so a
    slow or dead mail server holds those threads and never a request's. A failure to send is
    logged and recorded (``accounts.sign_up_failed``: the address may sign up again at once).
    The app's lifespan starts and stops it; the first email starts it where no lifespan runs."""

    def __init__(self, mail: _SignupMail, engine: Engine, workers: int, size: int) -> None:
        self._mail, self._engine, self._workers = mail, engine, max(1, workers)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max(1, size))
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self._workers:
                name = f"signup-mail-{len(self._threads)}"
                thread = threading.Thread(target=self._work, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def submit(self, email: str, kind: str, at: datetime) -> bool:
        """Queue one email without waiting; False when the queue is full (nothing queued)."""
        self.start()
        try:
            self._queue.put_nowait((email, kind, at))
        except queue.Full:
            return False
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued email was sent or given up on; False if ``timeout`` came
        first."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def stop(self, grace: float = MAIL_GRACE) -> None:
        """Give the workers up to ``grace`` seconds to send what is queued, then stop them;
        what is still queued then is recorded as unsent (a daemon worker still waiting on the
        mail server finishes its one email, or dies with the process)."""
        with self._lock:
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + grace
        for _ in threads:
            try:
                self._queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                break
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                if job is not None:
                    self._failed(job, "the app stopped before it went out")
            finally:
                self._queue.task_done()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._send(job)
            finally:
                self._queue.task_done()

    def _send(self, job: _Job) -> None:
        email, kind, _ = job
        try:
            self._mail.send(email, kind)
        except DigestError as exc:
            self._failed(job, str(exc))
        except Exception as exc:  # a worker outlives whatever one email does; the log says it
            log.exception("sign-up email: unexpected error")
            self._failed(job, f"{type(exc).__name__}: {exc}")

    def _failed(self, job: _Job, reason: str) -> None:
        email, kind, at = job
        log.warning("sign-up email (%s) failed: %s", kind, reason)
        try:
            accounts.sign_up_failed(self._engine, email, at)
        except DigestError as exc:
            log.warning("could not record the failed sign-up email: %s", exc)


def create_app(
    settings: Settings, engine: Engine | None = None, themes: dict[str, Theme] | None = None
) -> FastAPI:
    """The web app over the store ``settings`` names (or ``engine``)."""
    engine = engine or get_engine(settings.db_url)
    catalogue = themes or load_themes()
    keys = settings.key_ring()
    tokens = Tokens(keys.keys)
    renderer = Renderer.from_settings(settings)
    pages = _Pages(settings)
    mail = _SignupMail(settings, renderer, tokens, engine)
    outgoing = _MailQueue(mail, engine, MAIL_WORKERS, MAIL_QUEUE)
    issues = Archive(settings.archive_dir, settings.public_url)
    limiter = MovingWindowRateLimiter(MemoryStorage())
    signup_rate = parse_rate(settings.signup_rate)
    csrf_key = hashlib.sha256(b"csrf:" + keys.signing.encode()).digest()
    secure_cookie = settings.public_url.startswith("https://")
    samples = _Samples(engine, catalogue)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        outgoing.start()
        access = logging.getLogger("uvicorn.access")
        access.addFilter(REDACT)
        try:
            yield
        finally:
            access.removeFilter(REDACT)
            await asyncio.to_thread(outgoing.stop, MAIL_GRACE)

    def crashed() -> Response:
        return pages.render(
            "message.html.j2",
            500,
            title=_TITLES[500],
            message="Something went wrong on our side. Please try again in a moment.",
            link=None,
        )

    app = FastAPI(
        title="Papers Digest",
        summary="Subscribe to personalised digests of Hugging Face Daily Papers.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.signup_mail = outgoing
    app.add_middleware(_BodyLimit)
    app.add_middleware(_SecurityHeaders, hsts=secure_cookie, error_page=crashed)
    archive = settings.archive_dir
    archive.mkdir(parents=True, exist_ok=True)
    app.mount("/archive", StaticFiles(directory=archive, html=True), name="archive")

    def csrf_value(request: Request) -> str:
        """The form's CSRF field: the cookie's value (set now if missing) with its MAC."""
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        if not _valid_cookie(cookie, csrf_key):
            nonce = secrets.token_urlsafe(24)
            cookie = f"{nonce}.{_mac(nonce, csrf_key)}"
        request.state.csrf_cookie = cookie
        return cookie

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("csrf", csrf_value(request))
        response = pages.render(name, status, **context)
        response.set_cookie(
            CSRF_COOKIE,
            request.state.csrf_cookie,
            httponly=True,
            samesite="strict",
            secure=secure_cookie,
            path="/",
        )
        return response

    def check_csrf(request: Request, field: str) -> None:
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        if not (_valid_cookie(cookie, csrf_key) and hmac.compare_digest(cookie, field)):
            raise HTTPException(403, "The form expired or came from another site. Reload it.")

    def reader(token: str, purpose: Purpose) -> str:
        """The address a personal link acts for: its token is genuine and for ``purpose``,
        and its link id still belongs to someone (not revoked, not erased)."""
        try:
            email = accounts.email_for_link(engine, tokens.read(token, purpose))
        except TokenError:
            email = None
        if email is None:
            raise HTTPException(404, "This link is not valid.")
        return email

    def preferences_link(email: str) -> str:
        link = accounts.link_for(engine, email)
        if link is None:
            raise HTTPException(404, "This link is not valid.")
        return f"/preferences/{tokens.make(link, Purpose.preferences)}"

    def confirming(token: str) -> tuple[str, datetime]:
        """A confirmation link's address and when it was made; a link whose subscriber has
        left (or whose links were revoked) is gone for good."""
        try:
            link, issued = tokens.read_confirm(token)
        except TokenError:
            raise HTTPException(
                404, "This confirmation link is not valid or has expired."
            ) from None
        email = accounts.email_for_link(engine, link)
        if email is None:
            raise HTTPException(
                410,
                "This link was replaced by a newer one or is no longer "
                "valid. Sign up again to get a fresh link.",
            )
        return email, issued

    def form_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("error", None)
        context.setdefault("values", {})
        return page(
            request,
            "subscribe.html.j2",
            status,
            themes=list(catalogue.values()),
            samples=samples.get(),
            cadences=[c.value for c in Cadence],
            **context,
        )

    def preferences_page(
        request: Request,
        token: str,
        found: accounts.Account,
        *,
        status: int = 200,
        saved: bool = False,
        error: str | None = None,
    ) -> HTMLResponse:
        return page(
            request,
            "preferences.html.j2",
            status,
            token=token,
            account=found,
            saved=saved,
            themes=list(catalogue.values()),
            cadences=[c.value for c in Cadence],
            error=error,
            unsubscribed=found.status == SubscriberStatus.unsubscribed,
        )

    @app.exception_handler(HTTPException)
    async def _error(request: Request, exc: HTTPException) -> HTMLResponse:
        return pages.render(
            "message.html.j2",
            exc.status_code,
            title=_TITLES.get(exc.status_code, "Error"),
            message=str(exc.detail),
            link=None,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> HTMLResponse:
        """A form field out of bounds: say which and why, never echo what was sent."""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        return pages.render("message.html.j2", 422, title=_TITLES[422], message=problems, link=None)

    @app.get("/", response_class=HTMLResponse, summary="The sign-up form")
    def home(request: Request) -> HTMLResponse:
        return form_page(request)

    @app.post("/", response_class=HTMLResponse, summary="Sign up (double opt-in)")
    def sign_up(
        request: Request,
        email: Short,
        csrf: Token,
        themes: Annotated[list[str], Form(max_length=50)] = [],  # noqa: B006
        interest: Text = "",
        keywords: Short = "",
        cadence: Annotated[Cadence, Form()] = Cadence.daily,
    ) -> HTMLResponse:
        check_csrf(request, csrf)
        client = request.client.host if request.client else "unknown"
        values = {"email": email, "themes": themes, "interest": interest, "keywords": keywords}
        values["cadence"] = cadence.value
        if not limiter.hit(signup_rate, "signup", client):
            return form_page(
                request, 429, error="Too many sign-ups from here; try later.", values=values
            )
        try:
            wanted = request_from(
                {
                    "email": email,
                    "themes": themes,
                    "interest": interest,
                    "keywords": _split(keywords),
                    "cadence": cadence,
                },
                "sign-up",
            )
            outcome = accounts.sign_up(
                engine, wanted, catalogue, timedelta(seconds=settings.signup_resend)
            )
        except SubscriptionError as exc:
            return form_page(request, 422, error=_plain(str(exc)), values=values)
        if outcome.send is not None and outcome.at is not None:
            if not outgoing.submit(outcome.email, outcome.send, outcome.at):
                log.warning("sign-up email not queued: %d wait for the mail server", MAIL_QUEUE)
                accounts.sign_up_failed(engine, outcome.email, outcome.at)
                return form_page(
                    request,
                    503,
                    values=values,
                    error="We could not send the email just now; try again soon.",
                )
        return page(
            request,
            "message.html.j2",
            200,
            title="Check your inbox",
            message=f"If {outcome.email} can get Papers Digest, a message is on its way "
            "there. Open it and confirm to start receiving digests.",
            link=None,
        )

    @app.get("/confirm/{token}", response_class=HTMLResponse, summary="Confirmation page")
    def confirm_page(request: Request, token: str) -> HTMLResponse:
        """The emailed link shows a button and changes nothing: link scanners open it too."""
        email, _ = confirming(token)
        return page(request, "confirm.html.j2", token=token, email=email)

    @app.post("/confirm/{token}", response_class=HTMLResponse, summary="Confirm an address")
    def confirm(request: Request, token: str, csrf: Token) -> HTMLResponse:
        email, issued = confirming(token)
        check_csrf(request, csrf)
        outcome = accounts.confirm(engine, email, issued)
        if outcome is ConfirmOutcome.stale:
            raise HTTPException(
                410,
                "This link was replaced by a newer one or is no longer "
                "valid. Sign up again to get a fresh link.",
            )
        preferences = preferences_link(email)
        title = "You're subscribed" if outcome is ConfirmOutcome.confirmed else "Already confirmed"
        return page(
            request,
            "message.html.j2",
            200,
            title=title,
            message=f"{email} will get Papers Digest.",
            link=(preferences, "Choose themes and cadence"),
        )

    @app.get("/preferences/{token}", response_class=HTMLResponse, summary="Preferences")
    def preferences(request: Request, token: str, saved: bool = False) -> HTMLResponse:
        email = reader(token, Purpose.preferences)
        found = accounts.account(engine, email)
        if found is None:
            raise HTTPException(404, "There is no subscription for this link any more.")
        return preferences_page(request, token, found, saved=saved)

    @app.post("/preferences/{token}", response_class=HTMLResponse, summary="Save preferences")
    def save_preferences(
        request: Request,
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
        email = reader(token, Purpose.preferences)
        check_csrf(request, csrf)
        found = accounts.account(engine, email)
        if found is None:
            raise HTTPException(404, "There is no subscription for this link any more.")
        try:
            wanted = Preferences(
                themes=tuple(themes),
                interest=interest,
                keywords=_split(keywords),
                require=_split(require),
                exclude=_split(exclude),
                cadence=cadence,
                max_items=max_items,
                strictness=strictness,
                paused=paused,
                quiet_days=quiet_days,
            )
            accounts.update_preferences(engine, email, wanted, catalogue)
        except (SubscriptionError, ValueError) as exc:
            return preferences_page(request, token, found, status=422, error=_plain(str(exc)))
        return RedirectResponse(f"/preferences/{token}?saved=true", status_code=303)

    @app.get("/preferences/{token}/export", summary="Everything stored about you, as JSON")
    def export(token: str) -> Response:
        email = reader(token, Purpose.preferences)
        data = accounts.export_account(engine, email)
        if data is None:
            raise HTTPException(404, "There is no subscription for this link any more.")
        return Response(
            json.dumps(data, indent=2, ensure_ascii=False),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="papers-digest-data.json"'},
        )

    @app.post(
        "/preferences/{token}/delete",
        response_class=HTMLResponse,
        summary="Delete everything stored about you",
    )
    def delete(
        request: Request,
        token: str,
        csrf: Token,
        confirm: Annotated[str, Form(max_length=10)] = "",
    ) -> HTMLResponse:
        email = reader(token, Purpose.preferences)
        check_csrf(request, csrf)
        if confirm != "yes":
            raise HTTPException(400, "Tick the box to confirm the deletion.")
        try:
            accounts.delete_account(engine, email, issues.remove_issues)
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

    @app.get("/unsubscribe/{token}", response_class=HTMLResponse, summary="Unsubscribe page")
    def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
        email = reader(token, Purpose.unsubscribe)
        return page(request, "unsubscribe.html.j2", token=token, email=email)

    @app.post(
        "/unsubscribe/{token}",
        response_class=HTMLResponse,
        summary="Unsubscribe (RFC 8058 one-click)",
    )
    def unsubscribe(
        request: Request,
        token: str,
        one_click: Annotated[str, Form(alias="List-Unsubscribe", max_length=20)] = "",
    ) -> HTMLResponse:
        email = reader(token, Purpose.unsubscribe)
        if one_click != "One-Click":
            raise HTTPException(400, "Expected List-Unsubscribe=One-Click.")
        accounts.leave(engine, email)
        preferences = preferences_link(email)
        return page(
            request,
            "message.html.j2",
            title="You're unsubscribed",
            message=f"{email} will get no more digests.",
            link=(preferences, "Changed your mind? Resubscribe"),
        )

    @app.get("/feedback/{token}", response_class=HTMLResponse, summary="Feedback on a paper")
    def feedback_page(
        request: Request,
        token: str,
        paper: Annotated[str, Query(max_length=64)],
        vote: Vote,
    ) -> HTMLResponse:
        reader(token, Purpose.feedback)
        title = accounts.paper_title(engine, paper)
        if title is None:
            raise HTTPException(404, "That paper is not in our store.")
        return page(
            request, "feedback.html.j2", token=token, paper=paper, vote=vote.value, title=title
        )

    @app.post("/feedback/{token}", response_class=HTMLResponse, summary="Record feedback")
    def feedback(
        request: Request,
        token: str,
        csrf: Token,
        paper: Annotated[str, Form(max_length=64)],
        vote: Annotated[Vote, Form()],
    ) -> HTMLResponse:
        email = reader(token, Purpose.feedback)
        check_csrf(request, csrf)
        if not accounts.record_feedback(engine, email, paper, vote):
            raise HTTPException(404, "That paper or subscription is not in our store.")
        more = "more" if vote is Vote.more else "fewer"
        return page(
            request,
            "message.html.j2",
            title="Thanks, noted",
            message=f"Your next digests will have {more} papers like that one.",
            link=None,
        )

    @app.get("/assets/site.css", include_in_schema=False)
    def stylesheet() -> Response:
        return Response(
            pages.css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


class _Samples:
    """A few recent papers per theme for the sign-up form: the best-scored of the last listing
    days that mention one of the theme's keywords (so a theme with nothing new shows nothing
    rather than a poor match). Lexical scoring; recomputed when a newer day arrives."""

    def __init__(self, engine: Engine, themes: dict[str, Theme]) -> None:
        self._engine, self._themes = engine, themes
        self._day: date | None = None
        self._picks: dict[str, list[str]] = {}

    def get(self) -> dict[str, list[str]]:
        day = newest_listing_day(self._engine)
        if day is not None and day != self._day:
            days = listing_days(self._engine, day, SAMPLE_DAYS)
            picks: dict[str, list[str]] = {}
            for theme, digests in compose_theme_days(self._engine, self._themes, days).items():
                papers = [p for d in reversed(digests) for s in d.sections for p in s.papers]
                matching = [p for p in papers if p.why.startswith("matches:")]
                best = sorted(matching, key=lambda p: -p.score)
                picks[theme] = list(dict.fromkeys(p.title for p in best))[:SAMPLE_PAPERS]
            self._picks, self._day = picks, day
        return self._picks


_TITLES = {
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


_PERSONAL = re.compile(r"/(confirm|preferences|unsubscribe|feedback)/[^/?\s]+")


class RedactTokens(logging.Filter):
    """Access-log lines keep the page, never the personal link's token or its query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact(text: str) -> str:
    """``/preferences/<token>?saved=true`` as ``/preferences/…``."""
    if not _PERSONAL.search(text):
        return text
    return _PERSONAL.sub(r"/\1/…", text.split("?", 1)[0])


REDACT = RedactTokens()


def _split(text: str) -> tuple[str, ...]:
    """Comma- or newline-separated words from a form field."""
    return tuple(w.strip() for w in text.replace("\n", ",").split(",") if w.strip())


def _plain(message: str) -> str:
    """An error for a person: without the internal prefix naming the request."""
    return message.split(": ", 1)[1] if message.startswith("sign-up: ") else message


def _mac(nonce: str, key: bytes) -> str:
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()[:32]


def _valid_cookie(cookie: str, key: bytes) -> bool:
    nonce, _, mac = cookie.partition(".")
    return bool(nonce) and hmac.compare_digest(mac, _mac(nonce, key))
