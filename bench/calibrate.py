"""Fits ``digest/data/calibration.json``: the logistic weights that turn the relevance parts of
``digest.relevance`` into a probability, and the floor of each strictness level.

Fitted on two labelled sets at once, each weighing the same, so neither alone decides:
- the dev set in ``bench/data`` (14 profiles × the 301 seed papers, graded 0/1/2 by reading;
  relevant = 1 or 2), asked in four query styles (name, keywords, description, all three);
- ``../shared/relevance-data`` set A, pool ``hf`` (1,984 HF Daily Papers, arXiv cross-list
  labels, the 10 profiles with at least 15 relevant papers), in the same four styles plus the
  full profile with 5 relevant papers as liked ones (the only rows that fit the ``liked`` part).
The floors are read off the pooled fit: ``strict`` the lowest estimate whose sends are 80 %
relevant on the dev set, ``broad`` the highest that keeps 90 % of its strongly relevant papers,
``balanced`` the one with the best F1 between them. Held-out figures are in
``bench/relevance.py``; this script only fits.

    .venv/bin/python bench/calibrate.py [--data ../shared/relevance-data]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from relevance import embed, load  # noqa: E402

from digest.embeddings import load_embedder  # noqa: E402
from digest.ingest import ingest_pages, read_pages  # noqa: E402
from digest.relevance import (  # noqa: E402
    LEXICAL_PARTS,
    SEMANTIC_PARTS,
    Reference,
    Strictness,
    features,
)
from digest.scoring import PaperIndex, PaperText, Profile, profile_vectors  # noqa: E402
from digest.settings import BUNDLED_SEEDS_DIR  # noqa: E402
from digest.store import get_engine, list_papers  # noqa: E402

DEV = Path(__file__).resolve().parent / "data"
OUT = Path(__file__).resolve().parent.parent / "digest" / "data" / "calibration.json"
STYLES = ("name", "keywords", "description", "all")


def styled(name: str, description: str, keywords: list[str]) -> Iterator[tuple[str, Profile]]:
    yield "name", Profile(name=name)
    yield "keywords", Profile(keywords=tuple(keywords))
    yield "description", Profile(text=description)
    yield "all", Profile(name=name, text=description, keywords=tuple(keywords))


def seed_papers() -> list[PaperText]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/dev.db"
        ingest_pages(read_pages("seeds", BUNDLED_SEEDS_DIR, None), url)
        engine = get_engine(url)
        papers = [PaperText.of(p, p.key) for p in list_papers(engine)]
        engine.dispose()
    return papers


def dev_labels() -> dict[tuple[str, str], int]:
    with (DEV / "labels.tsv").open() as file:
        return {
            (r["profile"], r["paper"]): int(r["grade"])
            for r in csv.DictReader(file, delimiter="\t")
        }


def rows_for(index, profiles, embedder, reference):
    vectors = profile_vectors(profiles, embedder, index) if embedder else None
    return features(index, profiles, vectors, reference)


def dev_set(embedder, reference) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parts, grades and profile ids of every (profile, style, seed paper)."""
    papers = seed_papers()
    vectors = embed(embedder, [p.text for p in papers], "seeds") if embedder else None
    index = PaperIndex(papers, vectors)
    labels = dev_labels()
    parts, grades, who = [], [], []
    for spec in yaml.safe_load((DEV / "profiles.yaml").read_text())["profiles"]:
        for _, profile in styled(spec["name"], spec["description"], spec["keywords"]):
            parts.append(rows_for(index, [profile], embedder, reference)[0])
            grades.append([labels[(spec["id"], p.key)] for p in papers])
            who.append([spec["id"]] * len(papers))
    return np.concatenate(parts), np.concatenate(grades), np.concatenate(who)


def topic_set(data: Path, embedder, reference) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same for set A's HF pool (binary labels as grade 1), plus a liked-examples row."""
    papers, profiles, qrels = load(data)
    pool = [p for p in papers if p["pool_hf"]]
    texts = [p["title"] + " " + p["abstract"] for p in pool]
    vectors = embed(embedder, texts, "papers-hf") if embedder else None
    docs = [PaperText(key=p["arxiv_id"], title=p["title"], abstract=p["abstract"]) for p in pool]
    index = PaperIndex(docs, vectors)
    keys = [d.key for d in docs]
    parts, grades, who = [], [], []
    for spec in profiles:
        relevant = qrels[(spec["id"], "hf")]
        if len(relevant) < 15:
            continue
        examples = sorted(relevant, key=lambda k: hashlib.sha256(k.encode()).hexdigest())[:5]
        variants = list(styled(spec["name"], spec["description"], spec["keywords"]))
        full = variants[-1][1]
        variants.append(("liked", full.model_copy(update={"liked": tuple(examples)})))
        keep = np.array([k not in examples for k in keys])
        for _, profile in variants:
            parts.append(rows_for(index, [profile], embedder, reference)[0][keep])
            grades.append(np.array([k in relevant for k in keys], dtype=int)[keep])
            who.append(np.array([spec["id"]] * int(keep.sum())))
    return np.concatenate(parts), np.concatenate(grades), np.concatenate(who)


def fit(sets: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[list[float], float]:
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([s[0] for s in sets])
    y = np.concatenate([s[1] >= 1 for s in sets])
    weight = np.concatenate([np.full(len(s[1]), 1.0 / len(s[1])) for s in sets])
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(x, y, sample_weight=weight * len(y))
    return [round(float(w), 4) for w in model.coef_[0]], round(float(model.intercept_[0]), 4)


def floors(p: np.ndarray, grades: np.ndarray) -> dict[str, float]:
    """Each level's floor, from the dev set's estimates (see the module docstring)."""
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    stats = []
    for t in grid:
        sent = p >= t
        precision = float((grades[sent] >= 1).mean()) if sent.any() else 1.0
        recall = float((sent & (grades == 2)).sum() / max((grades == 2).sum(), 1))
        stats.append((float(t), precision, recall))
    strict = next((t for t, pr, _ in stats if pr >= 0.8), stats[-1][0])
    broad = max((t for t, _, rc in stats if rc >= 0.9), default=stats[0][0])
    between = [s for s in stats if broad <= s[0] <= strict] or stats
    balanced = max(between, key=lambda s: 2 * s[1] * s[2] / max(s[1] + s[2], 1e-9))[0]
    return {
        Strictness.strict: strict,
        Strictness.balanced: balanced,
        Strictness.broad: broad,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/relevance-data"))
    args = parser.parse_args()
    reference = Reference.bundled()
    embedder = load_embedder()
    assert embedder is not None, "calibration needs the embedding model"
    dev, topics = dev_set(embedder, reference), topic_set(args.data, embedder, reference)
    semantic, semantic_bias = fit([dev, topics])
    lexical_sets = [(x[:, 1:4], y, w) for x, y, w in (dev, topics)]
    lexical, lexical_bias = fit(lexical_sets)
    logit = dev[0] @ np.array(semantic) + semantic_bias
    levels = floors(1 / (1 + np.exp(-logit)), dev[1])
    result = {
        "semantic": semantic,
        "semantic_bias": semantic_bias,
        "lexical": lexical,
        "lexical_bias": lexical_bias,
        "floors": levels,
        "parts": {"semantic": list(SEMANTIC_PARTS), "lexical": list(LEXICAL_PARTS)},
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
