"""Measured relevance on external labels (../shared/relevance-data), every method in one run.

Set A (arXiv topics, pools ``main`` and ``hf``): each profile's 5 example papers (the first 5
relevant ones in sha256(arxiv_id) order) are held out; every method ranks the rest of the pool.
Binary relevance; nDCG@10, P@10, MAP, macro-averaged over profiles.
Set B (expertise): rank each researcher's rated papers by similarity to their own papers;
weighted pairwise loss (lower is better, random 0.5).

Methods: bm25 (keywords), tf-idf cosine, tf-idf + LinearSVC on the 5 examples
(arxiv-sanity-lite), MiniLM embeddings alone (zotero-arxiv-daily), and our hybrid
(``digest.scoring``). "+ liked examples" gives the profile its examples as liked papers, as a
subscriber's "More like this" votes would (set A: the 5 held-out examples; set B: the
researcher's own papers, with no words at all). Set A is also ranked for each way a subscriber
states an interest: a theme name, keywords, a description, or all three (``query_styles``).
Weights are fixed a priori (equal z-score fusion); nothing is tuned on these labels.

    .venv/bin/python bench/relevance.py [--data ../shared/relevance-data]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.embeddings import load_embedder  # noqa: E402
from digest.paper_index import PaperIndex, PaperText  # noqa: E402
from digest.profiles import Profile  # noqa: E402
from digest.scoring import ProfileVectors, profile_vectors, score_matrix  # noqa: E402

CACHE = Path(__file__).resolve().parent / "out"
MODEL_TAG = "minilm-int8"
"""Names the model in cached vectors' file names: vectors of another model are not reused."""


def load(data: Path):
    papers = [json.loads(line) for line in gzip.open(data / "papers.jsonl.gz", "rt")]
    profiles = json.loads((data / "profiles.json").read_text())["profiles"]
    qrels: dict[tuple[str, str], set[str]] = defaultdict(set)
    for line in (data / "qrels.tsv").read_text().splitlines()[1:]:
        profile, pool, arxiv_id, grade = line.split("\t")
        if int(grade) >= 1:
            qrels[(profile, pool)].add(arxiv_id)
    return papers, profiles, qrels


def embed(embedder, texts: list[str], name: str) -> np.ndarray:
    CACHE.mkdir(exist_ok=True)
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    path = CACHE / f"{name}-{MODEL_TAG}-{digest}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    print(
        f"  embedded {len(texts)} {name} texts in {time.perf_counter() - started:.0f} s", flush=True
    )
    np.save(path, vectors)
    return vectors


def ndcg10(ranked: list[str], relevant: set[str]) -> float:
    gain = sum(1 / math.log2(i + 2) for i, key in enumerate(ranked[:10]) if key in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    return gain / ideal if ideal else 0.0


def average_precision(ranked: list[str], relevant: set[str]) -> float:
    hits, total = 0, 0.0
    for i, key in enumerate(ranked, start=1):
        if key in relevant:
            hits += 1
            total += hits / i
    return total / len(relevant) if relevant else 0.0


def topic_set(papers, profiles, qrels, embedder, pool: str) -> dict[str, list[float]]:
    candidates = [p for p in papers if p[f"pool_{pool}"]]
    texts = [p["title"] + " " + p["abstract"] for p in candidates]
    vectors = embed(embedder, texts, f"papers-{pool}") if embedder else None
    docs = [
        PaperText(key=p["arxiv_id"], title=p["title"], abstract=p["abstract"]) for p in candidates
    ]
    index = PaperIndex(docs, vectors)
    results: dict[str, list[float]] = defaultdict(list)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    tfidf = TfidfVectorizer(
        sublinear_tf=True, stop_words="english", ngram_range=(1, 2), min_df=2, max_df=0.5
    )
    doc_tfidf = tfidf.fit_transform(texts)
    svm_features = TfidfVectorizer(
        sublinear_tf=True, ngram_range=(1, 2), min_df=5, max_df=0.1, max_features=20000
    ).fit_transform(texts)
    keys = [p["arxiv_id"] for p in candidates]
    for profile in profiles:
        relevant = qrels[(profile["id"], pool)]
        if len(relevant) < 15:
            continue
        examples = sorted(relevant, key=lambda k: hashlib.sha256(k.encode()).hexdigest())[:5]
        keep = np.array([k not in examples for k in keys])
        judged = relevant - set(examples)
        kw = Profile(
            name=profile["name"], text=profile["description"], keywords=tuple(profile["keywords"])
        )
        rankings = {
            "bm25 (keywords)": index.lexical([" ".join(profile["keywords"])])[0],
            "tfidf cosine": (doc_tfidf @ tfidf.transform([" ".join(profile["keywords"])]).T)
            .toarray()
            .ravel(),
        }
        labels = np.array([k in examples for k in keys])
        svm = LinearSVC(C=0.01, class_weight="balanced").fit(svm_features, labels)
        rankings["svm-5ex (arxiv-sanity)"] = svm.decision_function(svm_features)
        # the same profile with its 5 example papers as liked papers, as a subscriber who
        # clicked "More like this" on them would have
        liked = kw.model_copy(update={"liked": tuple(examples)})
        if embedder is not None:
            query_vector = embedder.encode([kw.query])
            rankings["MiniLM alone (zotero)"] = (vectors @ query_vector.T).ravel()
            rankings["hybrid (ours)"] = score_matrix(
                index, [kw], profile_vectors([kw], embedder, index)
            )[0]
            rankings["hybrid + liked examples (ours)"] = score_matrix(
                index, [liked], profile_vectors([liked], embedder, index)
            )[0]
        else:
            rankings["hybrid (ours, lexical only)"] = score_matrix(index, [kw])[0]
        rankings["bm25 + liked examples (ours, no model)"] = score_matrix(index, [liked])[0]
        for style, styled in query_styles(profile).items():
            rankings[f"{style}: bm25"] = index.lexical([styled.query])[0]
            if embedder is not None:
                query_vector = embedder.encode([styled.query])
                rankings[f"{style}: MiniLM alone"] = (vectors @ query_vector.T).ravel()
                rankings[f"{style}: hybrid (ours)"] = score_matrix(
                    index, [styled], profile_vectors([styled], embedder, index)
                )[0]
        for method, scores in rankings.items():
            order = [keys[i] for i in np.lexsort((keys, -scores)) if keep[i]]
            results[method].append(
                (
                    profile["id"],
                    ndcg10(order, judged),
                    len(set(order[:10]) & judged) / 10,
                    average_precision(order, judged),
                )
            )
    return results


def query_styles(profile: dict) -> dict[str, Profile]:
    """The ways a subscriber states an interest, as ``digest rank`` takes them: a 2-4 word
    theme name (``--interest``), a keyword list (``--keyword``), a one-line description, and
    all three as a catalogue theme (``--theme``)."""
    return {
        "name only": Profile(text=profile["name"]),
        "keywords only": Profile(keywords=tuple(profile["keywords"])),
        "description only": Profile(text=profile["description"]),
        "theme (all three)": Profile(
            name=profile["name"], text=profile["description"], keywords=tuple(profile["keywords"])
        ),
    }


def expertise_set(data: Path, embedder) -> dict[str, float]:
    papers = {
        p["paper_id"]: p
        for p in (json.loads(line) for line in gzip.open(data / "expertise/papers.jsonl.gz", "rt"))
    }
    people = [
        json.loads(line)
        for line in (data / "expertise/participants.jsonl").read_text().splitlines()
    ]
    order = sorted(papers)
    docs = [
        PaperText(key=k, title=papers[k]["title"] or "", abstract=papers[k]["abstract"] or "")
        for k in order
    ]
    vectors = embed(embedder, [d.text for d in docs], "expertise") if embedder else None
    index = PaperIndex(docs, vectors)  # one corpus, so BM25's IDF means something
    # (cost, weight) summed over every researcher's pairs: the data set's loss is a micro-average
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for person in people:
        rated = [index.keys[r["paper_id"]] for r in person["rated"]]
        own = [k for k in person["profile_paper_ids"] if k in index.keys]
        profile = Profile(examples=tuple(index.papers[index.keys[k]].text for k in own))
        scores = {"bm25 (profile papers)": index.lexical([profile.query])[0]}
        if embedder is not None:
            centroid = vectors[[index.keys[k] for k in own]].mean(axis=0)
            scores["MiniLM alone (zotero)"] = vectors @ centroid
            unit = (centroid / np.linalg.norm(centroid))[None, :].astype(np.float32)
            scores["hybrid (ours)"] = score_matrix(index, [profile], ProfileVectors(unit))[0]
            # the product's path: the researcher's papers as liked papers ("More like this")
            votes = Profile(liked=tuple(own))
            scores["hybrid + liked examples (ours)"] = score_matrix(
                index, [votes], profile_vectors([votes], embedder, index)
            )[0]
        truth = [r["expertise"] for r in person["rated"]]
        for method, values in scores.items():
            cost, weight = pair_cost(values[rated], truth)
            totals[method][0] += cost
            totals[method][1] += weight
    return {method: cost / weight for method, (cost, weight) in totals.items()}


def pair_cost(scores, truth) -> tuple[float, float]:
    """Weighted pairwise cost and weight: a pair ordered against the ratings costs |Δ|, a tie
    half of it; pairs with equal ratings are skipped."""
    cost = weight = 0.0
    for i in range(len(truth)):
        for j in range(i + 1, len(truth)):
            delta = abs(truth[i] - truth[j])
            if delta == 0:
                continue
            weight += delta
            s = scores[i] - scores[j]
            if s == 0:
                cost += delta / 2
            elif (s > 0) != (truth[i] > truth[j]):
                cost += delta
    return cost, weight


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "relevance-data",
    )
    args = parser.parse_args()
    papers, profiles, qrels = load(args.data)
    embedder = load_embedder()
    print(f"semantic model: {'all-MiniLM-L6-v2' if embedder else 'not installed (lexical only)'}")
    dev = {p["id"] for i, p in enumerate(profiles) if i % 2 == 0}
    table: dict[str, dict[str, str]] = defaultdict(dict)
    for pool in ("main", "hf"):
        for method, rows in topic_set(papers, profiles, qrels, embedder, pool).items():
            groups = {pool: rows}
            if pool == "main":
                groups = {
                    "main-dev": [r for r in rows if r[0] in dev],
                    "main-test": [r for r in rows if r[0] not in dev],
                    "main": rows,
                }
            for name, group in groups.items():
                n, p, m = (float(np.mean([r[i] for r in group])) for i in (1, 2, 3))
                table[method][name] = f"{n:.3f} / {p:.3f} / {m:.3f}"
    for method, loss in expertise_set(args.data, embedder).items():
        table[method]["expertise"] = f"{loss:.3f}"
    columns = ("main-dev", "main-test", "main", "hf", "expertise")
    print(f"\n{'method':40}" + "".join(f"{c:26}" for c in columns))
    print(f"{'':40}" + "nDCG@10 / P@10 / MAP      " * 4 + "pair-loss")
    for method, row in table.items():
        if ": " in method and method.endswith(": bm25"):
            print(f"-- query style: {method.split(': ')[0]}")
        print(f"{method.split(': ')[-1]:40}" + "".join(f"{row.get(c, '-'):26}" for c in columns))
    print("\nmain-dev: the even-numbered profiles, used to choose between design candidates;")
    print("main-test, hf and expertise are held out. hf: profiles with >= 15 relevant papers.")
    from floor import dev_set, hf_set, report  # the floor, query styles and votes (bench/data)

    report([dev_set(embedder), hf_set(args.data, embedder)], embedder)


if __name__ == "__main__":
    main()
