"""The curated public surface: what ``digest`` exports is exactly what it documents."""

from __future__ import annotations

import digest
import digest.errors


def test_all_names_exist_and_nothing_public_is_missing() -> None:
    assert sorted(digest.__all__) == digest.__all__
    assert all(hasattr(digest, name) for name in digest.__all__)
    public = {name for name in vars(digest) if not name.startswith("_") and name[0].isupper()}
    assert public <= set(digest.__all__)


def test_every_error_is_in_the_documented_tree() -> None:
    tree = digest.errors.__doc__ or ""
    for name in digest.errors.__all__:
        error = getattr(digest.errors, name)
        assert issubclass(error, digest.DigestError)
        assert name in tree, f"{name} is missing from the tree drawn in digest/errors.py"
    assert issubclass(digest.TransientFetchError, digest.FetchError)
    assert issubclass(digest.DateMismatchError, digest.ParseError)
