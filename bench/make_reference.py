"""Builds ``digest/data/reference.npz``: the fixed background that makes relevance estimates
absolute (``digest.relevance``). 1,500 papers from the uniform background sample of
``../shared/relevance-data`` (arXiv listings 2025-12..2026-07, arXiv metadata), chosen by the
order of sha256("ref" + arxiv_id): their MiniLM vectors (float16) and, for the lexical part, the
number of them each stemmed term occurs in. Run by hand when the model or the tokeniser changes:

    .venv/bin/python bench/make_reference.py [--data ../shared/relevance-data] [--vectors F.npy]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.embeddings import load_embedder  # noqa: E402
from digest.relevance import REFERENCE, reference_terms  # noqa: E402

SIZE = 1500


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/relevance-data"))
    parser.add_argument("--vectors", type=Path, help="vectors already made for these texts")
    args = parser.parse_args()
    papers = [json.loads(line) for line in gzip.open(args.data / "papers.jsonl.gz", "rt")]
    papers = [p for p in papers if p["in_background_sample"]]
    papers.sort(key=lambda p: hashlib.sha256(("ref" + p["arxiv_id"]).encode()).hexdigest())
    texts = [" ".join([p["title"], p["abstract"]]) for p in papers[:SIZE]]
    if args.vectors:
        vectors = np.load(args.vectors)
    else:
        model = load_embedder()
        assert model is not None, "the reference needs the embedding model"
        vectors = model.encode(texts)
    terms, df = reference_terms(texts)
    np.savez_compressed(
        REFERENCE,
        vectors=vectors.astype(np.float16),
        terms=np.array(terms),
        df=np.array(df, dtype=np.int32),
        docs=np.array(len(texts)),
    )
    print(f"{REFERENCE}: {len(texts)} papers, {len(terms)} terms, {REFERENCE.stat().st_size} bytes")


if __name__ == "__main__":
    main()
