"""The Hugging Face daily-papers item, as the API and the HTML islands both carry it.

Validated strictly from JSON text (a string where a number belongs is an error, not coerced);
unknown keys are ignored because the site adds fields freely. ``to_record`` is the only mapping
from HF's names to ``PaperRecord``: upvotes live on ``paper``, comments on the outer item.
``validate_items`` checks a list item by item, so one bad item is skipped (and named), not the day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import from_json, to_json

from digest.errors import ParseError
from digest.records import Organization, PaperRecord, Sighting, clean_text, normalise_paper_id

__all__ = [
    "HfItem",
    "HfModel",
    "HfPaper",
    "Records",
    "SkippedItem",
    "to_record",
    "validate_items",
    "validate_json",
]

Model = TypeVar("Model", bound=BaseModel)
ArxivId = Annotated[str, AfterValidator(normalise_paper_id)]
NonEmpty = Annotated[str, Field(min_length=1), AfterValidator(lambda text: _non_blank(text))]
Count = Annotated[int, Field(ge=0)]


def _non_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


class HfModel(BaseModel):
    """Strict on types, silent on unknown keys (the site adds fields freely)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class HfUser(HfModel):
    name: str | None = None
    user: str | None = None
    fullname: str | None = None

    @property
    def handle(self) -> str | None:
        return self.name or self.user


class HfAuthor(HfModel):
    name: str
    hidden: bool = False


class HfOrganization(HfModel):
    name: NonEmpty
    fullname: str | None = None


class HfPaper(HfModel):
    id: ArxivId
    title: NonEmpty
    summary: str = ""
    authors: list[HfAuthor] = []
    publishedAt: datetime | None = None
    submittedOnDailyAt: datetime | None = None
    submittedOnDailyBy: HfUser | None = None
    upvotes: Count | None = None
    githubRepo: str | None = None
    githubStars: Count | None = None
    projectPage: str | None = None
    ai_summary: str | None = None
    ai_keywords: list[str] = []
    organization: HfOrganization | None = None
    withdrawnAt: datetime | None = None


class HfItem(HfModel):
    paper: HfPaper
    title: str | None = None
    summary: str | None = None
    thumbnail: str | None = None
    numComments: Count | None = None
    submittedBy: HfUser | None = None
    organization: HfOrganization | None = None


@dataclass(frozen=True)
class SkippedItem:
    """An item of a list that failed validation and was left out of the page's records."""

    index: int
    paper_id: str | None
    error: ParseError

    @property
    def reason(self) -> str:
        """The error without its URL: ``[1].numComments: expected ..., got -1``."""
        return str(self.error).removeprefix(f"{self.error.where}: ")

    def __str__(self) -> str:
        return f"item {self.index} (paper {self.paper_id or 'without an id'}): {self.reason}"


class Records(list[PaperRecord]):
    """A page's records, plus the items skipped because they failed validation."""

    def __init__(
        self, records: Iterable[PaperRecord] = (), skipped: Iterable[SkippedItem] = ()
    ) -> None:
        super().__init__(records)
        self.skipped = list(skipped)


_ITEMS = TypeAdapter(list[HfItem])


def validate_items(text: str, where: str) -> tuple[list[tuple[int, HfItem]], list[SkippedItem]]:
    """The items of a JSON array, each with its index, and the items that failed validation.

    A body that is not a JSON array raises ``ParseError``; a bad item is only skipped. The whole
    array is validated at once first; only when some item fails is each one validated alone.
    """
    try:
        return list(enumerate(_ITEMS.validate_json(text))), []
    except ValidationError as exc:
        if not all(e["loc"] and isinstance(e["loc"][0], int) for e in exc.errors()):
            raise _parse_error(exc, where) from exc
    items: list[tuple[int, HfItem]] = []
    skipped: list[SkippedItem] = []
    for index, value in enumerate(from_json(text)):
        try:  # back to JSON: strict mode accepts a date string from JSON only
            items.append((index, HfItem.model_validate_json(to_json(value))))
        except ValidationError as exc:
            error = _parse_error(exc, where, index)
            skipped.append(SkippedItem(index, _claimed_id(value), error))
    return items, skipped


def _claimed_id(value: Any) -> str | None:
    """The paper id a bad item claims, to find it on the site (clipped: it may be anything)."""
    paper = value.get("paper") if isinstance(value, dict) else None
    claimed = paper.get("id") if isinstance(paper, dict) else None
    return None if claimed is None else str(claimed)[:40]


def validate_json(model: type[Model], text: str, where: str) -> Model:
    """Parse ``text`` into ``model`` or raise ``ParseError`` naming the first bad field."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise _parse_error(exc, where) from exc


def _parse_error(exc: ValidationError, where: str, index: int | None = None) -> ParseError:
    """The first error as a ``ParseError``; ``index`` is the item's place when it was validated
    alone, so the field still reads ``[3].paper.upvotes``."""
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return ParseError(where, "body", "valid JSON", first["msg"])
    loc = first["loc"] if index is None else (index, *first["loc"])
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    got: Any = first.get("input")
    shown = None if first["type"] == "missing" else repr(got)[:80]
    return ParseError(
        where, field.lstrip(".") or "body", _expected(first["msg"], first["type"]), shown
    )


def _expected(message: str, kind: str) -> str:
    """Pydantic's message as what was expected: 'Input should be a valid integer' -> 'a valid
    integer'."""
    if kind == "missing":
        return "this field (it is missing)"
    for prefix in ("Input should be ", "Value error, "):
        message = message.removeprefix(prefix)
    return message


def to_record(item: HfItem, sighting: Sighting) -> PaperRecord:
    """Map one item to a record; organisation and submitter fall back from paper to item."""
    paper = item.paper
    org = paper.organization or item.organization
    submitter = item.submittedBy or paper.submittedOnDailyBy
    return PaperRecord(
        paper_id=paper.id,
        title=clean_text(paper.title),
        abstract=clean_text(paper.summary or item.summary or ""),
        authors=tuple(a.name for a in paper.authors if not a.hidden),
        author_count=len(paper.authors) if paper.authors else None,
        organization=Organization(slug=org.name, name=org.fullname or org.name) if org else None,
        published_on=_day(paper.publishedAt),
        submitted_on_daily_at=paper.submittedOnDailyAt,
        submitted_by=submitter.handle if submitter else None,
        upvotes=paper.upvotes,
        num_comments=item.numComments,
        github_repo=paper.githubRepo or None,
        github_stars=paper.githubStars,
        project_page=paper.projectPage or None,
        ai_summary=clean_text(paper.ai_summary) if paper.ai_summary else None,
        ai_keywords=tuple(clean_text(k) for k in paper.ai_keywords if k.strip()),
        thumbnail=item.thumbnail or None,
        withdrawn_at=paper.withdrawnAt,
        sighting=sighting,
    )


def _day(moment: datetime | None) -> date | None:
    return moment.date() if moment else None
