"""Recent papers under each theme on the sign-up form: a visitor sees what a theme brings
before choosing it."""

from __future__ import annotations

from datetime import date

from digest.compose import compose_theme_days
from digest.db import Engine
from digest.db.papers import listing_days, newest_listing_day
from digest.themes import Theme

SAMPLE_PAPERS = 3
"""Recent papers shown under each theme on the sign-up form, from the last ``SAMPLE_DAYS``."""
SAMPLE_DAYS = 7


class Samples:
    """A few recent papers per theme for the sign-up form: the best-scored of the last listing
    days that mention one of the theme's keywords (so a theme with nothing new shows nothing
    rather than a poor match). Lexical scoring; recomputed when a newer day arrives."""

    def __init__(self, engine: Engine, themes: dict[str, Theme]) -> None:
        self._engine, self._themes = engine, themes
        self._day: date | None = None
        self._picks: dict[str, list[str]] = {}

    def get(self) -> dict[str, list[str]]:
        """Paper titles per theme key, from the newest listing day in the store."""
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
