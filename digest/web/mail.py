"""The sign-up emails: the one message an address gets before it confirms (or a subscriber's
link to their preferences), sent from a bounded queue on threads of the app's own so that a
slow or dead mail server holds those threads and never a request's."""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from datetime import datetime

from digest.channels import deliverer_for
from digest.db import Engine, accounts
from digest.delivery import describe
from digest.errors import DigestError
from digest.render import Renderer
from digest.settings import Settings
from digest.tokens import Purpose, Tokens

log = logging.getLogger(__name__)

MAIL_WORKERS = 4
"""Threads that send sign-up emails, apart from the request threads: a slow mail server holds
these, never a page."""
MAIL_QUEUE = 1000
"""Sign-up emails that may wait for a mail worker; past that a sign-up is asked to retry."""
MAIL_GRACE = 10.0
"""Seconds a stopping app gives the queued sign-up emails to go out."""


class SignupMail:
    """Sends the one email an unconfirmed address may get (or, for a subscriber, a link to
    their preferences) through the configured channel, one connection per message."""

    def __init__(
        self, settings: Settings, renderer: Renderer, tokens: Tokens, engine: Engine
    ) -> None:
        self._settings, self._renderer, self._tokens = settings, renderer, tokens
        self._engine = engine

    def send(self, email: str, kind: str) -> None:
        """Send ``email`` its ``confirm`` or ``manage`` message now (on a mail worker)."""
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


class MailQueue:
    """Sends the sign-up emails from a bounded queue on ``workers`` threads of its own, so a
    slow or dead mail server holds those threads and never a request's. A failure to send is
    logged and recorded (``accounts.sign_up_failed``: the address may sign up again at once).
    The app's lifespan starts and stops it; the first email starts it where no lifespan runs."""

    def __init__(self, mail: SignupMail, engine: Engine, workers: int, size: int) -> None:
        self._mail, self._engine, self._workers = mail, engine, max(1, workers)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max(1, size))
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """Emails that may wait for a worker before ``submit`` refuses one."""
        return self._queue.maxsize

    def start(self) -> None:
        """Bring the workers up to ``workers`` (again, if any died); idempotent."""
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
        """A worker: send queued emails until it draws the ``None`` that stops it."""
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._send(job)
            finally:
                self._queue.task_done()

    def _send(self, job: _Job) -> None:
        """One email; whatever goes wrong is recorded, never raised into the worker."""
        email, kind, _ = job
        try:
            self._mail.send(email, kind)
        except DigestError as exc:
            self._failed(job, str(exc))
        except Exception as exc:  # a worker outlives whatever one email does; the log says it
            log.exception("sign-up email: unexpected error")
            self._failed(job, f"{type(exc).__name__}: {exc}")

    def _failed(self, job: _Job, reason: str) -> None:
        """Log an unsent email and let its address sign up again at once."""
        email, kind, at = job
        log.warning("sign-up email (%s) failed: %s", kind, reason)
        try:
            accounts.sign_up_failed(self._engine, email, at)
        except DigestError as exc:
            log.warning("could not record the failed sign-up email: %s", exc)
