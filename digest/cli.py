"""The ``digest`` command's library half: commands that need no Prefect (``papers``).

``flows.cli`` adds the commands that run flows to this same Typer app. Every ``DigestError``
becomes one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from digest.errors import DigestError
from digest.models import Paper
from digest.periods import parse_date
from digest.settings import load_settings
from digest.store import get_engine, list_papers

__all__ = ["app", "reporting_errors"]

app = typer.Typer(
    name="digest",
    help="papers-digest: Hugging Face Daily Papers into a store, then into personal digests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn a ``DigestError`` into ``error: <message>`` on stderr and exit status 1."""
    try:
        yield
    except DigestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def papers(
    date: Annotated[
        str | None, typer.Option(help="Only papers listed on this day (YYYY-MM-DD).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON array, one object per paper.")
    ] = False,
) -> None:
    """List stored papers, newest listing first.

    Example: digest papers --date 2026-04-15 --json
    """
    with reporting_errors():
        day = parse_date(date) if date else None
        rows = list_papers(get_engine(load_settings().db_url), listed_on=day)
    if as_json:
        typer.echo(json.dumps([paper_json(row) for row in rows], ensure_ascii=False, indent=1))
        return
    for row in rows:
        typer.echo(paper_line(row))
    typer.echo(f"{len(rows)} paper(s)", err=True)


def paper_json(paper: Paper) -> dict[str, Any]:
    """The public JSON shape of a stored paper."""
    data = paper.model_dump(mode="json", exclude={"title_key", "abstract_key", "counters_at"})
    data["id"] = paper.key
    data["organization"] = (
        {"slug": paper.org_slug, "name": paper.org_name} if paper.org_slug else None
    )
    for name in ("org_slug", "org_name"):
        data.pop(name)
    return data


def paper_line(paper: Paper) -> str:
    """One line for a terminal: listing day, upvotes, comments, id, title."""
    day = paper.last_listed_on.isoformat() if paper.last_listed_on else "-" * 10
    upvotes = "-" if paper.upvotes is None else str(paper.upvotes)
    comments = "-" if paper.num_comments is None else str(paper.num_comments)
    ident = paper.arxiv_id or "(no id)"
    title = paper.title if len(paper.title) <= 90 else paper.title[:89] + "…"
    return f"{day}  {upvotes:>4} up  {comments:>3} comments  {ident:<12}  {title}"
