"""Why a paper matched, in words a subscriber can check. Built only from evidence the scorer
used (keywords, followed authors, liked papers, the closest of the subscriber's own phrases),
so a reason never claims more than the score saw."""

from __future__ import annotations

import numpy as np

from digest.paper_index import PaperIndex
from digest.profiles import Profile
from digest.vectors import Matrix

__all__ = ["explain"]

_LIKE_THRESHOLD = 0.55


def explain(
    profile: Profile,
    index: PaperIndex,
    position: int,
    phrases: tuple[tuple[str, ...], Matrix] | None = None,
) -> str:
    """Why a paper matched, in words: only evidence the scorer used. Keywords it contains,
    followed authors, a liked paper it resembles; else, for a paper found by meaning alone,
    the closest of the subscriber's own ``phrases`` (never meaning without a model)."""
    reasons = []
    matched = [k for k in (*profile.keywords, *profile.require) if index.mentions(k)[position]]
    for words in (profile.name, profile.text):  # else its rarest words the paper has (stemmed)
        matched = matched or index.words_in(words, position)[:3]
    if matched:
        reasons.append("matches: " + ", ".join(list(dict.fromkeys(matched))[:4]))
    followed = [a for a in profile.authors if index.written_by(a)[position]]
    if followed:
        reasons.append("by " + ", ".join(followed) + " (followed)")
    liked = _most_like(profile, index, position)
    if liked:
        reasons.append(f'like "{liked}", which you liked')
    if reasons:
        return "; ".join(reasons)
    if index.embeddings is not None and phrases is not None:
        own, their_vectors = phrases
        closest = own[int(np.argmax(their_vectors @ index.embeddings[position]))]
        return f'close in meaning to "{closest}"'
    if index.shares_terms(profile.query, position):
        return "shares common words with your interests"
    return "no word of your interests"


def _most_like(profile: Profile, index: PaperIndex, position: int) -> str | None:
    if index.embeddings is None or not profile.liked:
        return None
    found = [index.keys[k] for k in profile.liked if k in index.keys and index.keys[k] != position]
    if not found:
        return None
    similarity = index.embeddings[found] @ index.embeddings[position]
    best = int(np.argmax(similarity))
    return index.papers[found[best]].title if similarity[best] >= _LIKE_THRESHOLD else None
