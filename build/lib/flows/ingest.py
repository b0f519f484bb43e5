"""``ingest``: one source, one period (or one set of saved files) into the store."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from digest.errors import PartialFailure
from digest.ingest import IngestSummary, release_fetchers
from digest.periods import Period, parse_period, utc_today
from digest.settings import load_settings
from flows import tasks


@flow(name="ingest")
def ingest(
    source: str = "seeds", period: str | None = None, path: str | None = None
) -> IngestSummary:
    """Fetch (or read from ``path``) one listing and store it; ``period`` is a day ``YYYY-MM-DD``,
    week ``YYYY-Www`` or month ``YYYY-MM`` (default: today, UTC). ``seeds`` reads the bundled
    pages unless ``path`` names others."""
    settings = load_settings()
    wanted = parse_period(period) if period else None
    if path or source == "seeds":
        pages = tasks.read_pages(source, Path(path) if path else settings.seeds_dir, wanted)
    else:
        try:
            pages = tasks.fetch_pages(source, wanted or Period.day(utc_today()), settings)
        finally:
            release_fetchers()
    what = f"{source} {wanted.label if wanted else path or 'seeds'}"
    summary = tasks.store_pages(pages, settings.db_url, source, what)
    finish("ingest", summary, what)
    return summary


def finish(flow_name: str, summary: IngestSummary, what: str) -> None:
    """Log and publish the run summary; fail the run (after storing the rest) if anything failed.
    Invalid items skipped on stored pages are warned about and listed, but fail nothing."""
    logger = get_run_logger()
    logger.info("%s %s: %s", flow_name, what, summary)
    for line in summary.skipped:
        logger.warning("%s %s: skipped %s", flow_name, what, line)
    failures = "\n".join(f"- {line}" for line in summary.failures) or "none"
    skipped = "\n".join(f"- {line}" for line in summary.skipped) or "none"
    create_markdown_artifact(
        key=f"{flow_name}-summary",
        description=f"{flow_name} {what}",
        markdown=(
            f"## {flow_name} {what}\n\n| pages | new | updated | unchanged | not modified |\n"
            f"|---|---|---|---|---|\n| {summary.pages} | {summary.counts.new} | "
            f"{summary.counts.updated} | {summary.counts.unchanged} | {summary.not_modified} |\n\n"
            f"Failures:\n{failures}\n\nInvalid items skipped:\n{skipped}\n"
        ),
    )
    if summary.failures:
        raise PartialFailure(f"{flow_name} {what}", summary.failures)
