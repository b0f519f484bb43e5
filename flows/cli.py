"""The ``digest`` console script: the library commands (``digest.cli``) plus those that run
Prefect flows (here), composed into one app by ``build_app``; ``main`` is the entry point.

Flow commands import Prefect lazily, so ``digest papers`` stays quick.
"""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli import app as library_app
from digest.cli import reporting_errors
from digest.cli_subscribers import app as subscriber_app
from digest.db import count_rows, get_engine
from digest.db import unconfirmed as unconfirmed_db
from digest.db.models import Cadence
from digest.periods import days, parse_date, parse_period
from digest.settings import BUNDLED_SEEDS_DIR, load_settings
from digest.sources import SOURCE_NAMES, get_source
from digest.subscriptions import import_subscribers, list_subscribers
from digest.themes import load_themes
from flows import use_prefect_defaults

__all__ = ["build_app", "main"]

SOURCE_HELP = f"One of: {', '.join(SOURCE_NAMES)}."
EXAMPLE_SUBSCRIBERS = BUNDLED_SEEDS_DIR / "subscribers.yaml"

app = typer.Typer()
"""The commands that run flows; ``build_app`` adds them to the library's."""


def build_app() -> typer.Typer:
    """The whole ``digest`` command: the library's commands (the subscriber ones among them)
    and the flow commands."""
    whole = typer.Typer(
        name="digest",
        help=library_app.info.help,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    whole.add_typer(library_app)
    whole.add_typer(subscriber_app)
    whole.add_typer(app)
    return whole


def main() -> None:
    """The console script: Prefect's defaults first (before Prefect is imported), then the
    command line."""
    use_prefect_defaults()
    build_app()()


@app.command()
def run(
    date: Annotated[
        str | None,
        typer.Option(
            help="Digest day YYYY-MM-DD (default: yesterday, UTC; on the seeds, the newest day)."
        ),
    ] = None,
    source: Annotated[str, typer.Option(help=SOURCE_HELP)] = "seeds",
) -> None:
    """Run the daily job: ingest (the bundled seeds by default), refresh the web archive, and
    send the daily digests through the configured channel (default: .eml files in the outbox).
    On an empty store it first adds the example subscribers from seeds/subscribers.yaml.

    Example: digest run
    """
    from flows.api import prefect_api
    from flows.daily import daily

    with reporting_errors():
        settings = load_settings()
        get_source(source)  # refuse bad arguments before starting Prefect
        day = parse_date(date) if date else None
        engine = get_engine(settings.db_url)
        if not list_subscribers(engine):
            added = len(import_subscribers(engine, EXAMPLE_SUBSCRIBERS, load_themes()))
            typer.echo(
                f"The store had no subscribers: added {added} examples ({EXAMPLE_SUBSCRIBERS})."
            )
        try:
            with prefect_api():
                summary = daily(source=source, day=day)
        finally:
            totals = count_rows(engine)
            typer.echo(
                f"The store at {settings.db_url} holds {totals['papers']} papers, "
                f"{totals['sightings']} sightings."
            )
    typer.echo(f"Sent {summary}.")
    channel = settings.delivery.get_secret_value()
    if channel == "outbox":
        typer.echo(f"Digests: {settings.outbox_dir}/ (open the .eml files; index.tsv lists them)")
    typer.echo(f"Web archive: {settings.archive_dir / 'index.html'}")


@app.command()
def send(
    cadence: Annotated[Cadence, typer.Option(help="daily or weekly.")] = Cadence.daily,
    date: Annotated[
        str | None, typer.Option(help="A day in the period to send (default: today, UTC).")
    ] = None,
    newest: Annotated[
        bool, typer.Option(help="Anchor at the newest listing day in the store (for seeds).")
    ] = False,
) -> None:
    """Send the digests of one cadence for one period; what was sent before is not sent again.

    Example: digest send --cadence weekly --newest
    """
    from flows.api import prefect_api
    from flows.send import send_digests

    with reporting_errors():
        day = parse_date(date) if date else None
        with prefect_api():
            summary = send_digests(cadence=cadence.value, day=day, anchor_at_newest=newest)
    typer.echo(f"Sent {summary}.")


@app.command()
def serve() -> None:
    """Serve the daily, weekly and backfill deployments from this process until stopped
    (Ctrl-C): schedules fire here, and `prefect deployment run 'backfill/backfill'` runs here.

    Example: digest serve  (with PREFECT_API_URL set to watch runs in the Prefect UI)
    """
    from prefect import serve as prefect_serve

    from flows.api import prefect_api
    from flows.deployments import deployments

    with reporting_errors():
        settings = load_settings()
        typer.echo(
            f"Serving daily ({settings.daily_cron} in {settings.send_timezones}), weekly "
            f"({settings.weekly_cron}) and backfill; Ctrl-C to stop."
        )
        with prefect_api():
            prefect_serve(*deployments(settings))


@app.command()
def ingest(
    source: Annotated[str, typer.Option(help=SOURCE_HELP)] = "seeds",
    date: Annotated[
        str | None, typer.Option(help="Day YYYY-MM-DD, week YYYY-Www or month YYYY-MM (UTC).")
    ] = None,
    path: Annotated[
        str | None, typer.Option(help="Read saved pages (a file or folder) instead of fetching.")
    ] = None,
) -> None:
    """Ingest one listing from a source into the store.

    Example: digest ingest --source hf-api --date 2026-03-06
    """
    from flows.api import prefect_api
    from flows.ingest import ingest as ingest_flow

    with reporting_errors():
        get_source(source)  # refuse bad arguments before starting Prefect
        if date:
            parse_period(date)
        with prefect_api():
            summary = ingest_flow(source=source, period=date, path=path)
    typer.echo(f"Ingested {source}: {summary}.")


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD; not in the future.")],
    source: Annotated[str, typer.Option(help="hf-api or hf-html.")] = "hf-api",
    concurrency: Annotated[
        int | None, typer.Option(help="Requests at once (default: setting).")
    ] = None,
    send: Annotated[
        bool, typer.Option(help="Then send each daily subscriber one digest for the range.")
    ] = False,
) -> None:
    """Ingest every day of a date range, weekends included, a few requests at a time.

    Example: digest backfill --from 2026-03-02 --to 2026-03-06
    """
    from flows.api import prefect_api
    from flows.backfill import backfill as backfill_flow

    with reporting_errors():
        get_source(source)  # refuse bad arguments before starting Prefect
        first, last = parse_date(start), parse_date(end)
        days(first, last)
        with prefect_api():
            summary = backfill_flow(
                start=first, end=last, source=source, concurrency=concurrency, send=send
            )
    typer.echo(f"Backfilled {source} {first}..{last}: {summary}.")


@app.command()
def unconfirmed(
    resend: Annotated[
        list[int] | None,
        typer.Option("--resend", help="A listed delivery id to send again (repeatable)."),
    ] = None,
    resend_all: Annotated[
        bool, typer.Option("--resend-all", help="Send every listed message again.")
    ] = False,
) -> None:
    """Messages that went out whole but whose server never answered the end: they may have
    arrived or not, so no run sends them again by itself. Check (the server's log, the reader),
    then resend the ones that did not arrive.

    Example: digest unconfirmed --resend 12 --resend 40
    """
    with reporting_errors():
        engine = get_engine(load_settings().db_url)
        listed = unconfirmed_db.listed(engine)
        chosen = [u for u in listed if resend_all or u.delivery_id in set(resend or [])]
        if not chosen:
            for u in listed:
                typer.echo(
                    f"{u.delivery_id:6}  {u.email}  {u.cadence.value} {u.period_label}  "
                    f"sent {u.sent_at:%Y-%m-%d %H:%M}  {u.reply}"
                    if u.sent_at
                    else f"{u.delivery_id:6}  {u.email}  {u.reply}"
                )
            typer.echo(f"{len(listed)} unconfirmed." + (" Nothing resent." if resend else ""))
            return
        reopened = unconfirmed_db.reopen(engine, [u.delivery_id for u in chosen])
        typer.echo(f"Reopened {reopened}; sending them now.")
        _send_periods(chosen)


def _send_periods(chosen: list[unconfirmed_db.Unconfirmed]) -> None:
    """One send run per period the reopened messages belong to: it sends only what is pending."""
    from flows.api import prefect_api
    from flows.send import send_digests

    periods = sorted({(u.cadence, u.period_start, u.period_end) for u in chosen})
    with prefect_api():
        for cadence, first, last in periods:
            start = first if cadence is Cadence.daily and first != last else None
            summary = send_digests(cadence=cadence.value, day=last, start=start)
            typer.echo(f"Sent {summary}.")
