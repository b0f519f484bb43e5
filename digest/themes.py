"""The theme catalogue (``digest/data/themes.yaml``): what a subscriber can pick without writing
a profile. A theme becomes a scoring ``Profile`` through its name, description and keywords."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from digest.errors import ConfigError
from digest.profiles import Profile

__all__ = ["CATALOGUE", "Theme", "get_theme", "load_themes"]

CATALOGUE = Path(str(resources.files("digest") / "data" / "themes.yaml"))


class Theme(BaseModel):
    """One theme of the catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    keywords: tuple[str, ...] = Field(min_length=1)
    exemplars: tuple[str, ...] = ()

    def profile(self) -> Profile:
        return Profile(name=self.name, text=self.description, keywords=self.keywords)


class _Catalogue(BaseModel):
    themes: list[Theme]


def load_themes(path: Path = CATALOGUE) -> dict[str, Theme]:
    """Themes by id, or a ``ConfigError`` naming the file and the bad entry."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        themes = _Catalogue.model_validate(raw).themes
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the theme catalogue: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc
    by_id = {theme.id: theme for theme in themes}
    if len(by_id) != len(themes):
        raise ConfigError(f"{path}: theme ids must be unique")
    return by_id


def get_theme(theme_id: str, path: Path = CATALOGUE) -> Theme:
    themes = load_themes(path)
    if theme_id not in themes:
        raise ConfigError(f"theme {theme_id!r}: not in the catalogue; known: {', '.join(themes)}")
    return themes[theme_id]
