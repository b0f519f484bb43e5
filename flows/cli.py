"""The ``digest`` console script: the library commands plus those that run Prefect flows.

Flow commands import Prefect lazily, so ``digest papers`` stays quick.
"""

from __future__ import annotations

from typing import Annotated

import typer

import flows  # noqa: F401  (sets Prefect's environment defaults before Prefect is imported)
from digest.cli import app, paper_line, reporting_errors
from digest.periods import days, parse_date, parse_period
from digest.settings import load_settings
from digest.sources import SOURCE_NAMES, get_source
from digest.store import count_rows, get_engine, list_papers

__all__ = ["app"]

SOURCE_HELP = f"One of: {', '.join(SOURCE_NAMES)}."


@app.command()
def run() -> None:
    """Run the daily job on the configured defaults: ingest the bundled seeds into the store
    and show what was stored.

    Example: digest run
    """
    from flows.ingest import ingest as ingest_flow

    with reporting_errors():
        settings = load_settings()
        summary = ingest_flow(source="seeds")
        engine = get_engine(settings.db_url)
        totals = count_rows(engine)
    typer.echo(f"Ingested the seeds: {summary}.")
    typer.echo(
        f"The store at {settings.db_url} holds {totals['papers']} papers, "
        f"{totals['sightings']} sightings."
    )
    newest = list_papers(engine)[:10]
    if newest:
        typer.echo("Newest listings:")
        for paper in newest:
            typer.echo("  " + paper_line(paper))
    typer.echo("See them all with: digest papers")


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
    from flows.ingest import ingest as ingest_flow

    with reporting_errors():
        get_source(source)  # refuse bad arguments before starting Prefect
        if date:
            parse_period(date)
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
) -> None:
    """Ingest every day of a date range, weekends included, a few requests at a time.

    Example: digest backfill --from 2026-03-02 --to 2026-03-06
    """
    from flows.backfill import backfill as backfill_flow

    with reporting_errors():
        get_source(source)  # refuse bad arguments before starting Prefect
        first, last = parse_date(start), parse_date(end)
        days(first, last)
        summary = backfill_flow(start=first, end=last, source=source, concurrency=concurrency)
    typer.echo(f"Backfilled {source} {first}..{last}: {summary}.")
