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
``balanced`` the one with the best F1 between them. ``bench/relevance.py`` prints the
in-sample figures; ``--held-out`` prints what each dev profile would be sent by a calibration
fitted without it (leave one profile out: its rows leave both the fit and the floors), the
figure to expect on profiles nobody fitted on. It writes nothing.

    .venv/bin/python bench/calibrate.py [--data ../shared/relevance-data] [--held-out]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import LabelledSet, dev_set, hf_set, sends, styles  # noqa: E402

from digest.embeddings import load_embedder  # noqa: E402
from digest.relevance import (  # noqa: E402
    LEXICAL_PARTS,
    SEMANTIC_PARTS,
    Reference,
    Strictness,
    features,
)
from digest.scoring import profile_vectors, score_matrix  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "digest" / "data" / "calibration.json"


def rows_for(index, profiles, embedder, reference):
    vectors = profile_vectors(profiles, embedder, index) if embedder else None
    return features(index, profiles, vectors, reference)


def parts_of(labelled: LabelledSet, embedder, reference, liked: bool):
    """Parts, grades and profile ids of every (profile, query style, paper) of a labelled
    set; with ``liked``, also the full profile with 5 relevant papers as liked ones (held out
    of the rows), the only rows that fit the ``liked`` part."""
    parts, grades, who = [], [], []
    for pid, (name, description, keywords) in labelled.profiles.items():
        grade = labelled.grades[pid]
        variants = list(styles(name, description, keywords).values())
        keep = np.ones(len(grade), dtype=bool)
        if liked:
            keys = [p.key for p in labelled.papers]
            relevant = [k for k, g in zip(keys, grade, strict=True) if g >= 1]
            examples = sorted(relevant, key=lambda k: hashlib.sha256(k.encode()).hexdigest())[:5]
            variants.append(variants[-1].model_copy(update={"liked": tuple(examples)}))
            keep = np.array([k not in examples for k in keys])
        for profile in variants:
            parts.append(rows_for(labelled.index, [profile], embedder, reference)[0][keep])
            grades.append(grade[keep])
            who.append(np.array([pid] * int(keep.sum())))
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


def held_out(labelled: LabelledSet, dev, topics, embedder, reference) -> None:
    """Leave one dev profile out of the fit and the floors; send it its digests (at most 10 a
    listing day, ranked as a send run ranks); pool the counts over the profiles."""
    counts = {level: [0, 0, 0, 0] for level in Strictness}
    for pid, (name, description, keywords) in labelled.profiles.items():
        rest = dev[2] != pid
        weights, bias = fit([(dev[0][rest], dev[1][rest], dev[2][rest]), topics])
        logit = dev[0][rest] @ np.array(weights) + bias
        levels = floors(1 / (1 + np.exp(-logit)), dev[1][rest])
        profile = styles(name, description, keywords)["all three"]
        vectors = profile_vectors([profile], embedder, labelled.index)
        parts = features(labelled.index, [profile], vectors, reference)[0]
        estimate = 1 / (1 + np.exp(-(parts @ np.array(weights) + bias)))
        ranking = score_matrix(labelled.index, [profile], vectors)[0]
        grades = labelled.grades[pid]
        for level in Strictness:
            sent = sends(labelled, ranking, estimate >= levels[level], False)
            c = counts[level]
            c[0] += int(sent.sum())
            c[1] += int((sent & (grades >= 1)).sum())
            c[2] += int((sent & (grades == 2)).sum())
            c[3] += int((grades == 2).sum())
    print("held out, one dev profile at a time: precision / recall(strong) / sent")
    for level, (sent, relevant, strong, all_strong) in counts.items():
        print(
            f"  {level.value:9} {relevant / max(sent, 1):.3f} / {strong / all_strong:.3f} / {sent}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/relevance-data"))
    parser.add_argument("--held-out", action="store_true", help="leave-one-profile-out figures")
    args = parser.parse_args()
    reference = Reference.bundled()
    embedder = load_embedder()
    assert embedder is not None, "calibration needs the embedding model"
    labelled = dev_set(embedder)
    dev = parts_of(labelled, embedder, reference, liked=False)
    topics = parts_of(hf_set(args.data, embedder), embedder, reference, liked=True)
    if args.held_out:
        held_out(labelled, dev, topics, embedder, reference)
        return
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
