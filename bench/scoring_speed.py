"""Scoring 100,000 subscribers × 50 papers with stored embeddings, as one matrix computation,
beside arxiv-sanity-lite's approach (one tf-idf LinearSVC trained per subscriber) measured on a
sample of subscribers and extrapolated. Peak memory is printed.

Synthetic subscribers come from the theme catalogue: each follows 1-3 themes, some add their own
keywords, a required or excluded keyword, or a followed author. "Stored" means paper and profile
vectors (and profile terms) were computed before the timed step, as they are in the pipeline:
papers at ingest, profiles when they change.

    .venv/bin/python bench/scoring_speed.py [--subscribers 100000] [--papers 50]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.ingest import read_pages  # noqa: E402
from digest.paper_index import PaperIndex, PaperText  # noqa: E402
from digest.profiles import Profile  # noqa: E402
from digest.relevance import DEFAULT_STRICTNESS, estimate_matrix, floor_of  # noqa: E402
from digest.scoring import ProfileVectors, score_matrix  # noqa: E402
from digest.settings import BUNDLED_SEEDS_DIR  # noqa: E402
from digest.sources import get_source  # noqa: E402
from digest.themes import load_themes  # noqa: E402

EXTRA_WORDS = [
    "diffusion",
    "agents",
    "benchmark",
    "GRPO",
    "quantization",
    "robot",
    "speech",
    "safety",
    "video",
    "retrieval",
]


def synthetic_profiles(count: int, rng: random.Random) -> list[Profile]:
    themes = list(load_themes().values())
    profiles = []
    for _ in range(count):
        chosen = rng.sample(themes, rng.randint(1, 3))
        keywords = tuple(k for t in chosen for k in t.keywords) + tuple(
            rng.sample(EXTRA_WORDS, rng.randint(0, 2))
        )
        profiles.append(
            Profile(
                name=" / ".join(t.name for t in chosen),
                text=" ".join(t.description for t in chosen),
                keywords=keywords,
                require=(rng.choice(EXTRA_WORDS),) if rng.random() < 0.05 else (),
                exclude=(rng.choice(EXTRA_WORDS),) if rng.random() < 0.10 else (),
                authors=("Yoshua Bengio",) if rng.random() < 0.05 else (),
            )
        )
    return profiles


def stored_vectors(profiles: list[Profile], dimension: int, rng: np.random.Generator) -> np.ndarray:
    """One unit vector per distinct profile text, shared by equal profiles (what a store holds)."""
    distinct = {p.query: None for p in profiles}
    table = rng.standard_normal((len(distinct), dimension)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    row = {query: i for i, query in enumerate(distinct)}
    return table[[row[p.query] for p in profiles]]


def asl_per_subscriber(
    papers: list[PaperText], profiles: list[Profile], rng: random.Random
) -> float:
    """Seconds per subscriber for arxiv-sanity-lite's recipe: tf-idf, then a LinearSVC per user
    trained on the user's papers (here 5) against all others, scoring every paper."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    features = TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, max_features=20000
    ).fit_transform([p.text for p in papers])
    started = time.perf_counter()
    for _ in profiles:
        labels = np.zeros(len(papers), dtype=bool)
        labels[rng.sample(range(len(papers)), 5)] = True
        LinearSVC(C=0.01, class_weight="balanced").fit(features, labels).decision_function(features)
    return (time.perf_counter() - started) / len(profiles)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=50)
    parser.add_argument("--asl-sample", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)

    seeds = get_source("seeds")
    records = [
        r for page in read_pages("seeds", BUNDLED_SEEDS_DIR, None) for r in seeds.parse(page)
    ]
    corpus = list({r.title_key: PaperText.of(r, r.title_key) for r in records}.values())
    papers = rng.sample(corpus, args.papers)
    vectors_rng = np.random.default_rng(7)
    paper_vectors = vectors_rng.standard_normal((len(papers), 384)).astype(np.float32)
    paper_vectors /= np.linalg.norm(paper_vectors, axis=1, keepdims=True)
    index = PaperIndex(papers, paper_vectors)

    profiles = synthetic_profiles(args.subscribers, rng)
    vectors = ProfileVectors(stored_vectors(profiles, 384, vectors_rng))
    for profile in profiles:  # profile terms are computed when a profile changes, not per run
        index.query_terms(profile.query)

    started = time.perf_counter()
    scores = score_matrix(index, profiles, vectors)
    ranking = time.perf_counter() - started
    estimates = estimate_matrix(index, profiles, vectors)
    ours = time.perf_counter() - started
    cleared = int((estimates >= floor_of(DEFAULT_STRICTNESS)).sum())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    asl = asl_per_subscriber(corpus, profiles[: args.asl_sample], rng)
    asl_total = asl * args.subscribers
    print(f"{args.subscribers:,} subscribers × {len(papers)} papers, stored embeddings (384-d)")
    print(
        f"hybrid score matrix: {ranking:6.2f} s  ({scores.shape[0]:,}×{scores.shape[1]}, {np.isinf(scores).sum():,} filtered)"
    )
    print(
        f"relevance estimates: {ours - ranking:6.2f} s  ({cleared:,} pairs clear the {DEFAULT_STRICTNESS.value} floor)"
    )
    print(f"both (what a send run computes): {ours:6.2f} s  peak RSS {peak_mib:,.0f} MiB")
    print(
        f"arxiv-sanity-lite (LinearSVC per subscriber over {len(corpus)} papers): {asl * 1000:.1f} ms each on {args.asl_sample} subscribers"
    )
    print(f"   extrapolated to {args.subscribers:,}: {asl_total:,.0f} s (EXTRAPOLATED)")
    print(
        f"ratio: {asl_total / ours:,.0f}x; target under 2 s: {'met' if ours < 2 else 'MISSED'}; target ratio >= 100x: {'met' if asl_total / ours >= 100 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
