"""The relevance floor measured on labelled sets: what digests would send, how the ranking does
for each way an interest is stated, and how votes help. Imported by ``bench/relevance.py``,
which prints it with the rest; runs alone too:

    .venv/bin/python bench/floor.py [--data ../shared/relevance-data]

Sets: the dev set in ``bench/data`` (14 profiles × 301 seed papers, graded 0/1/2 by reading;
relevant = 1 or 2, strongly relevant = 2) and set A's HF pool of ``../shared/relevance-data``
(10 profiles, arXiv cross-list labels, all counted as strongly relevant).

- **Sent**: each listing day's digest for each profile (all three fields stated), at most 10
  papers, never a paper twice, as a send run makes it. "today" is the old rule (above the
  day's mean hybrid score); BM25 and MiniLM alone use the same day-relative rule; ours sends
  what clears the floor of each strictness. Precision = relevant share of what was sent;
  recall = share of the strongly relevant papers that were sent.
- **nDCG@10 by query style** with graded gains, over all the set's papers.
- **Learning curve**: the subscriber votes on their own digest's papers from the first half of
  the listing days ("more" for a relevant one, "less" otherwise) until they have cast k votes;
  nDCG@10 is then measured on the other half. For full profiles (all three fields) and for
  2–4-word names, where votes have the most to add.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from relevance import embed, load  # noqa: E402

from digest.db import get_engine, list_papers  # noqa: E402
from digest.embeddings import load_embedder  # noqa: E402
from digest.ingest import ingest_pages, read_pages  # noqa: E402
from digest.paper_index import PaperIndex, PaperText  # noqa: E402
from digest.profiles import Profile  # noqa: E402
from digest.relevance import Strictness, estimate_matrix, floor_of  # noqa: E402
from digest.scoring import profile_vectors, score_matrix  # noqa: E402
from digest.settings import BUNDLED_SEEDS_DIR  # noqa: E402

DEV = Path(__file__).resolve().parent / "data"
STYLES = ("name only", "keywords only", "description only", "all three")
VOTES = (0, 5, 10, 20)


class LabelledSet:
    """Papers with their listing days and embeddings, profiles and graded labels."""

    def __init__(self, name, papers, days, vectors, profiles, grades):
        self.name, self.papers, self.days = name, papers, np.array(days)
        self.index = PaperIndex(papers, vectors)
        self.lexical = PaperIndex(papers)
        self.profiles = profiles  # id -> (name, description, keywords)
        self.grades = grades  # id -> np.array of grades per paper


def styles(name: str, description: str, keywords: list[str]) -> dict[str, Profile]:
    return {
        "name only": Profile(text=name),
        "keywords only": Profile(keywords=tuple(keywords)),
        "description only": Profile(text=description),
        "all three": Profile(name=name, text=description, keywords=tuple(keywords)),
    }


def dev_set(embedder) -> LabelledSet:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/dev.db"
        ingest_pages(read_pages("seeds", BUNDLED_SEEDS_DIR, None), url)
        engine = get_engine(url)
        stored = list_papers(engine)
        engine.dispose()
    papers = [PaperText.of(p, p.key) for p in stored]
    days = [p.first_listed_on or date.min for p in stored]
    vectors = embed(embedder, [p.text for p in papers], "seeds") if embedder else None
    with (DEV / "labels.tsv").open() as file:
        labels = {
            (r["profile"], r["paper"]): int(r["grade"])
            for r in csv.DictReader(file, delimiter="\t")
        }
    specs = yaml.safe_load((DEV / "profiles.yaml").read_text())["profiles"]
    profiles = {s["id"]: (s["name"], s["description"], s["keywords"]) for s in specs}
    grades = {pid: np.array([labels[(pid, p.key)] for p in papers]) for pid in profiles}
    return LabelledSet("dev (seeds)", papers, days, vectors, profiles, grades)


def hf_set(data: Path, embedder) -> LabelledSet:
    papers, specs, qrels = load(data)
    pool = [p for p in papers if p["pool_hf"]]
    texts = [p["title"] + " " + p["abstract"] for p in pool]
    vectors = embed(embedder, texts, "papers-hf") if embedder else None
    docs = [PaperText(key=p["arxiv_id"], title=p["title"], abstract=p["abstract"]) for p in pool]
    days = [date.fromisoformat(p["date"]) for p in pool]
    profiles, grades = {}, {}
    for s in specs:
        relevant = qrels[(s["id"], "hf")]
        if len(relevant) >= 15:
            profiles[s["id"]] = (s["name"], s["description"], s["keywords"])
            grades[s["id"]] = np.array([2 if d.key in relevant else 0 for d in docs])
    return LabelledSet("hf (set A)", docs, days, vectors, profiles, grades)


def ndcg10(scores: np.ndarray, grades: np.ndarray, among: np.ndarray | None = None) -> float:
    keep = np.arange(len(scores)) if among is None else np.flatnonzero(among)
    order = keep[np.lexsort((keep, -scores[keep]))][:10]
    gain = sum((2.0 ** grades[i] - 1) / math.log2(r + 2) for r, i in enumerate(order))
    ideal_grades = np.sort(grades[keep])[::-1][:10]
    ideal = sum((2.0**g - 1) / math.log2(r + 2) for r, g in enumerate(ideal_grades))
    return gain / ideal if ideal else 0.0


def method_scores(s: LabelledSet, profile: Profile, embedder) -> dict[str, np.ndarray]:
    """Each method's ranking scores of every paper."""
    out = {"BM25 alone": s.lexical.lexical([profile.query])[0]}
    if embedder is not None and s.index.embeddings is not None:
        out["MiniLM alone"] = s.index.embeddings @ embedder.encode([profile.query])[0]
        vectors = profile_vectors([profile], embedder, s.index)
        out["hybrid (ours)"] = score_matrix(s.index, [profile], vectors)[0]
    else:
        out["hybrid (ours, lexical)"] = score_matrix(s.lexical, [profile])[0]
    return out


def sends(s: LabelledSet, score: np.ndarray, eligible: np.ndarray, relative: bool) -> np.ndarray:
    """Which papers a daily digest of at most 10 would send over the set's days. ``relative``:
    also above the day's mean score (the old rule); else ``eligible`` alone decides."""
    sent = np.zeros(len(score), dtype=bool)
    for day in np.unique(s.days):
        on_day = np.flatnonzero(s.days == day)
        ok = eligible[on_day]
        if relative:
            values = score[on_day]
            ok = ok & (values >= values.mean())
        chosen = on_day[ok]
        chosen = chosen[np.argsort(-score[chosen], kind="stable")][:10]
        sent[chosen] = True
    return sent


def floor_table(s: LabelledSet, embedder) -> dict[str, tuple[float, float, int]]:
    """Precision, recall of the strongly relevant, and papers sent, per way of choosing."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for pid, (name, description, keywords) in s.profiles.items():
        profile = styles(name, description, keywords)["all three"]
        grades = s.grades[pid]
        everything = np.ones(len(grades), dtype=bool)
        rows = {}
        for method, score in method_scores(s, profile, embedder).items():
            rows[f"{method}, above the day's mean"] = sends(s, score, everything, True)
        semantic = embedder is not None and s.index.embeddings is not None
        index = s.index if semantic else s.lexical
        vectors = profile_vectors([profile], embedder, index) if semantic else None
        estimate = estimate_matrix(index, [profile], vectors)[0]
        ranking = score_matrix(index, [profile], vectors)[0]
        for level in Strictness:
            rows[f"ours, floor {level.value}"] = sends(
                s, ranking, estimate >= floor_of(level), False
            )
        for method, sent in rows.items():
            c = counts[method]
            c[0] += int(sent.sum())
            c[1] += int((sent & (grades >= 1)).sum())
            c[2] += int((sent & (grades == 2)).sum())
            c[3] += int((grades == 2).sum())
    return {m: (c[1] / max(c[0], 1), c[2] / max(c[3], 1), c[0]) for m, c in counts.items()}


def style_table(s: LabelledSet, embedder) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for pid, (name, description, keywords) in s.profiles.items():
        for style, profile in styles(name, description, keywords).items():
            for method, score in method_scores(s, profile, embedder).items():
                table[style][method].append(ndcg10(score, s.grades[pid]))
    return {st: {m: float(np.mean(v)) for m, v in row.items()} for st, row in table.items()}


def learning_curve(s: LabelledSet, embedder, style: str = "all three") -> dict[int, float]:
    """Mean nDCG@10 on the second half of the days after k votes on the first half's digests,
    for profiles stated in ``style``."""
    days = np.unique(s.days)
    first = np.isin(s.days, days[: len(days) // 2 + len(days) % 2])
    curve: dict[int, list[float]] = defaultdict(list)
    semantic = embedder is not None and s.index.embeddings is not None
    index = s.index if semantic else s.lexical
    for pid, (name, description, keywords) in s.profiles.items():
        grades = s.grades[pid]
        base = styles(name, description, keywords)[style]
        vectors = profile_vectors([base], embedder, index) if semantic else None
        seen = np.flatnonzero(first)
        ranking = score_matrix(index, [base], vectors)[0]
        shown = seen[np.lexsort((seen, -ranking[seen]))]  # the digests' order, best first
        for k in VOTES:
            voted = shown[:k]
            profile = base.model_copy(
                update={
                    "liked": tuple(s.papers[i].key for i in voted if grades[i] >= 1),
                    "disliked": tuple(s.papers[i].key for i in voted if grades[i] == 0),
                }
            )
            vectors = profile_vectors([profile], embedder, index) if semantic else None
            score = score_matrix(index, [profile], vectors)[0]
            curve[k].append(ndcg10(score, grades, ~first))
    return {k: float(np.mean(v)) for k, v in curve.items()}


def report(sets: list[LabelledSet], embedder) -> None:
    print("\n== The relevance floor: what daily digests of at most 10 would send")
    print(f"{'how papers are chosen':44}" + "".join(f"{s.name:34}" for s in sets))
    print(f"{'':44}" + "precision / recall(strong) / sent  " * len(sets))
    tables = [floor_table(s, embedder) for s in sets]
    for method in tables[0]:
        cells = [f"{t[method][0]:.3f} / {t[method][1]:.3f} / {t[method][2]:<5}" for t in tables]
        print(f"{method:44}" + "".join(f"{c:34}" for c in cells))
    print("\n== nDCG@10 by query style (graded gains)")
    styled = [style_table(s, embedder) for s in sets]
    methods = list(next(iter(styled[0].values())))
    print(f"{'query style':20}" + "".join(f"{s.name + ': ' + m:34}" for s in sets for m in methods))
    for style in STYLES:
        cells = [f"{t[style][m]:.3f}" for t in styled for m in methods]
        print(f"{style:20}" + "".join(f"{c:34}" for c in cells))
    print("\n== Learning from votes: nDCG@10 on the later days after k votes on earlier digests")
    curves = {
        (s.name, style): learning_curve(s, embedder, style)
        for s in sets
        for style in ("all three", "name only")
    }
    print(f"{'votes':20}" + "".join(f"{name + ', ' + style:34}" for name, style in curves))
    for k in VOTES:
        print(f"{k:<20}" + "".join(f"{c[k]:<34.3f}" for c in curves.values()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/relevance-data"))
    parser.add_argument("--lexical", action="store_true", help="without the embedding model")
    args = parser.parse_args()
    embedder = None if args.lexical else load_embedder()
    report([dev_set(embedder), hf_set(args.data, embedder)], embedder)


if __name__ == "__main__":
    main()
