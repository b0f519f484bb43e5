"""The operator's subscriber commands: subscribe, list, unsubscribe, revoke personal links and
import many at once. Each request is validated as the web's are (``digest.requests``); the
console script (``flows.cli.build_app``) adds these to the library's other commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from digest.apprise_channel import AppriseDeliverer
from digest.cli import reporting_errors
from digest.db import get_engine
from digest.db.models import Cadence
from digest.relevance import DEFAULT_STRICTNESS, Strictness
from digest.requests import request_from
from digest.settings import load_settings
from digest.subscriptions import (
    import_subscribers,
    list_subscribers,
    revoke_links,
    unmatched_note,
)
from digest.subscriptions import subscribe as subscribe_request
from digest.subscriptions import unsubscribe as unsubscribe_address
from digest.themes import load_themes

__all__ = ["app"]

app = typer.Typer()
"""The subscriber commands; ``flows.cli.build_app`` adds them to the ``digest`` command."""


@app.command()
def subscribe(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    theme: Annotated[list[str] | None, typer.Option(help="A theme id (repeatable).")] = None,
    interest: Annotated[str | None, typer.Option(help="Free text: what you want to read.")] = None,
    keyword: Annotated[list[str] | None, typer.Option(help="Soft keyword (repeatable).")] = None,
    require: Annotated[list[str] | None, typer.Option(help="Must occur (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Must not occur (repeatable).")] = None,
    author: Annotated[list[str] | None, typer.Option(help="Followed author (repeatable).")] = None,
    cadence: Annotated[Cadence, typer.Option(help="daily or weekly.")] = Cadence.daily,
    name: Annotated[str, typer.Option(help="How to greet them.")] = "",
    timezone: Annotated[str, typer.Option(help="IANA zone for delivery time.")] = "UTC",
    max_items: Annotated[int, typer.Option(help="Papers per section at most.")] = 10,
    strictness: Annotated[
        Strictness,
        typer.Option(help="How sure a paper must be to be sent: strict, balanced or broad."),
    ] = DEFAULT_STRICTNESS,
    quiet_days: Annotated[
        bool | None,
        typer.Option(help="On days with no match, send the most upvoted papers instead."),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(help="Deliver through apprise instead of email, e.g. apprise:ntfy://..."),
    ] = None,
) -> None:
    """Subscribe an address to themes and/or a personal interest profile (confirmed, since an
    operator adds them).

    Example: digest subscribe ada@example.org --theme agents --keyword GRPO --exclude survey
    """
    with reporting_errors():
        settings = load_settings()
        fields = {
            "email": email,
            "name": name,
            "timezone": timezone,
            "themes": theme or [],
            "interest": interest or "",
            "keywords": keyword or [],
            "require": require or [],
            "exclude": exclude or [],
            "authors": author or [],
            "cadence": cadence,
            "max_items": max_items,
            "strictness": strictness,
            "quiet_days": quiet_days,
            "channel": channel,
        }
        request = request_from(fields, email)
        if request.channel:
            AppriseDeliverer(request.channel.removeprefix("apprise:"))  # refuses unusable URLs
        subscriber = subscribe_request(get_engine(settings.db_url), request, load_themes())
        note = unmatched_note(get_engine(settings.db_url), request)
    typer.echo(f"Subscribed {subscriber.email}.")
    if note:
        typer.echo(f"note: {note}", err=True)


@app.command()
def subscribers(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array, one object each.")] = False,
) -> None:
    """List subscribers and their subscriptions.

    Example: digest subscribers --json
    """
    with reporting_errors():
        people = list_subscribers(get_engine(load_settings().db_url))
    if as_json:
        typer.echo(json.dumps([p.model_dump() for p in people], ensure_ascii=False, indent=1))
        return
    for person in people:
        sections = [s["theme_id"] or "profile" for s in person.subscriptions if s["active"]]
        typer.echo(f"{person.email:40} {person.status:13} {', '.join(sections) or '-'}")
    typer.echo(f"{len(people)} subscriber(s)", err=True)


@app.command()
def unsubscribe(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    theme: Annotated[str | None, typer.Option(help="Only this theme; default: everything.")] = None,
) -> None:
    """Unsubscribe an address from one theme, or from everything.

    Example: digest unsubscribe ada@example.org --theme agents
    """
    with reporting_errors():
        unsubscribe_address(get_engine(load_settings().db_url), email, theme)
    typer.echo(f"Unsubscribed {email}" + (f" from {theme}." if theme else "."))


@app.command(name="revoke-links")
def revoke_links_command(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
) -> None:
    """Make every personal link an address was sent stop working (unsubscribe, preferences,
    feedback); its next digest carries new ones.

    Example: digest revoke-links ada@example.org
    """
    with reporting_errors():
        revoke_links(get_engine(load_settings().db_url), email)
    typer.echo(f"Revoked every personal link sent to {email}.")


@app.command(name="import-subscribers")
def import_subscribers_command(
    path: Annotated[Path, typer.Argument(help="A YAML list or a CSV file (lists split by ';').")],
) -> None:
    """Add many subscribers from a file, all or nothing.

    Example: digest import-subscribers subscribers.yaml
    """
    with reporting_errors():
        engine = get_engine(load_settings().db_url)
        imported = import_subscribers(engine, path, load_themes())
        notes = [(r.email, unmatched_note(engine, r)) for r in imported]
    typer.echo(f"Imported {len(imported)} subscriber(s) from {path}.")
    for email, note in notes:
        if note:
            typer.echo(f"note: {email}: {note}", err=True)
