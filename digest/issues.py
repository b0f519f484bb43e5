"""What names an issue: one subscriber's digest for one period. The name is the ledger's
idempotency key, the email's Message-ID and the "view in browser" page's address, so the
ledger, the renderer and the archive all take it from here.

It is stable (the same issue always has the same name, across runs and retries) and keyed
with the oldest secret key (rotating keys never renames an issue), so nobody can compute
another subscriber's page address from theirs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from digest.periods import Period

__all__ = ["IssueNames"]


class IssueNames:
    """Names issues with a key derived from the oldest of ``secret_key``'s keys."""

    def __init__(self, secret_key: str | Sequence[str]) -> None:
        identity = secret_key if isinstance(secret_key, str) else secret_key[-1]
        self._key = hashlib.sha256(b"issue-id:" + identity.encode()).digest()

    def name(self, email: str, period: Period) -> str:
        """``<period label>-<20 hex>``: readable in a folder listing, unguessable."""
        seed = f"{email}|{period.kind}|{period.label}".encode()
        tag = hmac.new(self._key, seed, hashlib.sha256).hexdigest()[:20]
        return f"{period.label}-{tag}"
