"""The ``digest`` command's library half: commands that need no Prefect (``papers``).

``flows.cli`` adds the commands that run flows to this same Typer app. Every ``DigestError``
becomes one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from digest.archive import publish_themes
from digest.compose import compose_digest
from digest.db import get_engine, list_papers
from digest.db.models import Paper
from digest.db.papers import newest_listing_day
from digest.db.status import read_status
from digest.embeddings import load_cached_embedder
from digest.errors import ConfigError, DigestError
from digest.keys import KEY_FILE, rotate_keys
from digest.paper_index import PaperIndex, PaperText
from digest.periods import parse_date
from digest.profiles import Profile
from digest.relevance import DEFAULT_STRICTNESS, Strictness, estimate_matrix, floor_of
from digest.runtime import Runtime
from digest.scoring import profile_vectors
from digest.scoring import rank as score_rank
from digest.settings import load_settings
from digest.sources import get_source
from digest.themes import get_theme, load_themes

__all__ = ["app", "reporting_errors"]

app = typer.Typer(
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


@app.command()
def themes() -> None:
    """List the theme catalogue: id, name and keywords.

    Example: digest themes
    """
    with reporting_errors():
        catalogue = load_themes()
    for theme in catalogue.values():
        typer.echo(f"{theme.id:24} {theme.name}")
        typer.echo(f"{'':24} {theme.description}")
        typer.echo(f"{'':24} keywords: {', '.join(theme.keywords)}")


@app.command()
def rank(
    theme: Annotated[str | None, typer.Option(help="A theme id (see digest themes).")] = None,
    interest: Annotated[str | None, typer.Option(help="Free text describing an interest.")] = None,
    keyword: Annotated[list[str] | None, typer.Option(help="Soft keyword (repeatable).")] = None,
    require: Annotated[list[str] | None, typer.Option(help="Must occur (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Must not occur (repeatable).")] = None,
    source: Annotated[str, typer.Option(help="Candidates: seeds (bundled) or store.")] = "seeds",
    strictness: Annotated[
        Strictness, typer.Option(help="The floor that --json's 'sent' is judged at.")
    ] = DEFAULT_STRICTNESS,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="[{title, id, score, estimate, sent, why}], best first."),
    ] = False,
) -> None:
    """Rank candidate papers for a theme or an interest, with the reason for each.

    Example: digest rank --theme llm-reasoning-rl --exclude robot
    """
    with reporting_errors():
        profile = _profile(theme, interest, keyword or [], require or [], exclude or [])
        papers = _candidates(source)
        index = PaperIndex(papers)
        embedder = load_cached_embedder(load_settings())
        if embedder is not None:
            index.embeddings = embedder.encode([p.text for p in papers])
        ranked = score_rank(profile, index, embedder)
        vectors = profile_vectors([profile], embedder, index) if embedder else None
        estimates = estimate_matrix(index, [profile], vectors)[0]
        floor = floor_of(strictness)
    if not any(w in index.vocab for w in index.query_terms(profile.query)):
        typer.echo("note: none of the profile's words occur in the candidates", err=True)
    estimate = {p.key: round(float(e), 4) for p, e in zip(index.papers, estimates, strict=True)}
    if as_json:
        rows = [
            {
                "title": r.title,
                "id": r.key,
                "score": r.score,
                "estimate": estimate[r.key],
                "sent": estimate[r.key] >= floor,
                "why": r.why,
            }
            for r in ranked
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    for row in ranked:
        mark = "*" if estimate[row.key] >= floor else " "
        typer.echo(f"{row.score:8.3f} {estimate[row.key]:4.2f}{mark} {row.title}")
        typer.echo(f"{'':15}{row.why}")
    typer.echo(f"* clears the {strictness.value} floor ({floor:.2f}): what a digest would send")


def _profile(
    theme: str | None,
    interest: str | None,
    keywords: list[str],
    require: list[str],
    exclude: list[str],
) -> Profile:
    if theme is None and not (interest and interest.strip()) and not keywords:
        raise ConfigError("give --theme, a non-empty --interest, or at least one --keyword")
    base = get_theme(theme).profile() if theme else Profile()
    return base.extended(text=interest or "", keywords=keywords, require=require, exclude=exclude)


def _candidates(source: str) -> list[PaperText]:
    if source == "seeds":
        seeds = get_source("seeds")
        records = [
            r for page in seeds.read(load_settings().seeds_dir, None) for r in seeds.parse(page)
        ]
        return list(
            {r.title_key: PaperText.of(r, r.paper_id or r.title_key) for r in records}.values()
        )
    if source == "store":
        return [PaperText.of(p, p.key) for p in list_papers(get_engine(load_settings().db_url))]
    raise ConfigError(f"source {source!r}: expected seeds or store")


@app.command(name="rotate-key")
def rotate_key() -> None:
    """Put a new secret key in front of DATA_DIR/secret.key: it signs new links; the older
    ones still verify links already mailed; issues keep their names. With DIGEST_SECRET_KEY
    set, rotate there instead: put the new key first (new,old).

    Example: digest rotate-key
    """
    with reporting_errors():
        settings = load_settings()
        if settings.secret_key is not None:
            raise ConfigError("DIGEST_SECRET_KEY is set: rotate it there (new key first: new,old)")
        ring = rotate_keys(settings.data_dir)
    typer.echo(f"New signing key in {settings.data_dir / KEY_FILE}; {len(ring.keys)} keys kept.")


@app.command()
def archive(
    date: Annotated[
        str | None, typer.Option(help="Last day to publish (default: the newest listing).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Listing days to (re)build, newest first.")] = 30,
    out: Annotated[
        Path | None, typer.Option(help="Archive folder (default: DATA_DIR/archive).")
    ] = None,
) -> None:
    """Build the static web archive: each theme's picks per day and an Atom feed per theme.

    Example: digest archive --days 7
    """
    with reporting_errors():
        runtime = Runtime.from_settings(load_settings(), archive=out)
        until = parse_date(date) if date else newest_listing_day(runtime.engine)
        if until is None:
            raise ConfigError("the store holds no papers yet: run `digest ingest` first")
        published = publish_themes(
            runtime.engine,
            runtime.renderer,
            runtime.themes,
            runtime.archive,
            until,
            runtime.embedder,
            days,
        )
    typer.echo(
        f"Published {published.pages} theme page(s) over {len(published.days)} day(s) and "
        f"{published.feeds} Atom feed(s): open {published.index}"
    )


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    days: Annotated[int, typer.Option(min=1, help="Listing days to count papers for.")] = 21,
) -> None:
    """The pipeline at a glance: last ingests, papers per day, subscribers, deliveries.

    Example: digest status
    """
    with reporting_errors():
        report = read_status(get_engine(load_settings().db_url), days=days)
    if as_json:
        typer.echo(report.model_dump_json(indent=1))
        return
    typer.echo(f"Newest listing: {report.newest_day or 'none yet'}")
    typer.echo("Papers first listed per day:")
    for day, count in report.papers_per_day.items():
        typer.echo(f"  {day} {day:%a}  {count:4}  {'#' * min(count, 60)}")
    typer.echo("Last ingests:")
    for line in report.last_ingests:
        error = f"  {line.error}" if line.error else ""
        typer.echo(
            f"  {line.at:%Y-%m-%d %H:%M} {line.source:8} {line.listing:22} {line.status:12} "
            f"new {line.new:3} updated {line.updated:3}{error}"
        )
    people = ", ".join(f"{n} {s}" for s, n in sorted(report.subscribers.items())) or "none"
    typer.echo(f"Subscribers: {people}; {report.suppressed} suppressed")
    typer.echo("Deliveries:")
    for d in report.deliveries:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(d.counts.items()))
        span = f"{d.period_start}" + (f"..{d.period_end}" if d.period_end != d.period_start else "")
        typer.echo(f"  {d.cadence:6} {span:22} {counts}")
    for error in report.recent_errors:
        typer.echo(f"  recent error: {error}")


@app.command()
def web(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (DIGEST_WEB_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (DIGEST_WEB_PORT).")] = None,
) -> None:
    """Serve the subscription web app: sign-up, confirmation, preferences, unsubscribe,
    feedback, and the archive with its feeds (uvicorn, on embedded defaults).

    Example: digest web --port 8000
    """
    import uvicorn

    from digest.web import create_app

    with reporting_errors():
        settings = load_settings()
        application = create_app(settings)
    uvicorn.run(
        application,
        host=host or settings.web_host,
        port=port or settings.web_port,
        proxy_headers=True,
        server_header=False,
    )


@app.command()
def preview(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    date: Annotated[
        str | None, typer.Option(help="Digest day (default: the newest listing in the store).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the .html, .txt and .eml files.")] = Path(
        "preview"
    ),
) -> None:
    """Write one subscriber's digest to files without sending it or marking anything sent.

    Example: digest preview ada@example.org --out preview/
    """
    with reporting_errors():
        runtime = Runtime.from_settings(load_settings())
        day = parse_date(date) if date else None
        digest = compose_digest(runtime.engine, email, day, runtime.themes, runtime.embedder)
        if digest.is_empty:
            typer.echo(f"Nothing to preview for {digest.email}: {digest.skip_reason}.")
            return
        rendered = runtime.renderer.render(digest)
        out.mkdir(parents=True, exist_ok=True)
        name = digest.email.replace("@", "_at_")
        (out / f"{name}.html").write_text(rendered.html, encoding="utf-8")
        (out / f"{name}.txt").write_text(rendered.text, encoding="utf-8")
        (out / f"{name}.eml").write_bytes(rendered.as_bytes())
    count = len(digest.paper_keys)
    typer.echo(
        f"{count} paper(s) in {len(digest.sections)} section(s): {out / name}.html, .txt, .eml"
    )
