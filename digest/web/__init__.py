"""The subscription web app (FastAPI): sign up with double opt-in, confirm, manage preferences,
one-click unsubscribe (RFC 8058), feedback from the email's links, privacy export and deletion,
and the static archive with its Atom feeds.

Every personal page is reached through a signed, purpose-scoped token (``digest.tokens``); a bad
token is a 404 that changes nothing. Pages that change something do so only on POST, behind a
double-submit CSRF check, so link scanners that fetch every URL in an email change nothing
(confirming a sign-up included: its link opens a page with a button). The one exception is the
RFC 8058 one-click POST, which mail providers send without cookies: its body
``List-Unsubscribe=One-Click`` and the token are its credentials.

Sign-up emails go out from a bounded queue on the app's own threads (``mail.MailQueue``), never
inside a request: a slow or dead mail server holds no page. Every response, an unhandled
error's 500 included, carries the security headers (``security.SecurityHeaders``).

The package is cut like FastAPI's full-stack template: ``app`` builds one ``state.WebState``
per app and assembles middleware, routers and error pages; the routers in ``routes`` reach
that state only through ``deps``; none of them imports another (``pyproject.toml`` says so to
import-linter).
"""

from digest.web.app import create_app
from digest.web.mail import MAIL_QUEUE, MAIL_WORKERS
from digest.web.security import MAX_BODY, REDACT, RedactTokens, redact

__all__ = [
    "MAIL_QUEUE",
    "MAIL_WORKERS",
    "MAX_BODY",
    "REDACT",
    "RedactTokens",
    "create_app",
    "redact",
]
