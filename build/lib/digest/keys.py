"""The secret keys that sign personal links and name issues: never a default anybody else knows.

``DIGEST_SECRET_KEY`` may hold one key or several, newest first (``new,old``). Unset, the first
run makes a random key in ``DATA_DIR/secret.key`` (owner-only) and every later run reuses it;
``digest rotate-key`` puts a new one in front there. The newest key signs; every key in the
ring still verifies links already mailed. Issue identities (Message-ID, archive page, the
ledger's key) come from the oldest key, so rotating never renames an issue nor sends it again.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from digest.errors import ConfigError

__all__ = ["KEY_FILE", "KeyRing", "check_key", "load_keys", "rotate_keys"]

KEY_FILE = "secret.key"
MIN_LENGTH = 32
KNOWN = frozenset(
    {"dev-only-change-me", "change-me", "changeme", "secret", "secret-key", "password", "test"}
)
"""Keys that are public: the old built-in default and the usual placeholders."""


@dataclass(frozen=True)
class KeyRing:
    """Keys newest first: ``signing`` signs, all verify, ``identity`` names issues."""

    keys: tuple[str, ...]

    @property
    def signing(self) -> str:
        return self.keys[0]

    @property
    def identity(self) -> str:
        return self.keys[-1]


def check_key(key: str, where: str) -> str:
    """``key`` if nobody could guess it; else ``ConfigError`` saying how to make a good one."""
    how = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if key in KNOWN or key.lower().startswith(("dev-only", "change")):
        raise ConfigError(f"{where}: that is a published placeholder, not a secret; {how}")
    if len(key) < MIN_LENGTH or len(set(key)) < 12:
        raise ConfigError(
            f"{where}: too weak ({len(key)} characters, {len(set(key))} distinct); use at least "
            f"{MIN_LENGTH} random characters; {how}"
        )
    return key


def load_keys(configured: str | None, data_dir: Path) -> KeyRing:
    """The ring from ``DIGEST_SECRET_KEY`` (comma-separated, newest first), else from the data
    folder's key file, made on first use."""
    if configured is not None:
        keys = [k.strip() for k in configured.split(",") if k.strip()]
        if not keys:
            raise ConfigError("DIGEST_SECRET_KEY: empty; unset it to use a generated key")
        return KeyRing(tuple(check_key(k, "DIGEST_SECRET_KEY") for k in keys))
    path = data_dir / KEY_FILE
    if not path.exists():
        _write(path, [_new_key()], replace=False)  # two first runs at once agree on one key
    return KeyRing(tuple(check_key(k, str(path)) for k in _read(path)))


def rotate_keys(data_dir: Path, keep: int = 4) -> KeyRing:
    """A new signing key in front of the key file's; the oldest (the issue identity) and the
    ``keep - 2`` newest stay, so links mailed in the last rotations still work."""
    path = data_dir / KEY_FILE
    old = _read(path) if path.exists() else [_new_key()]
    recent = old[: max(keep - 2, 0)] if len(old) > 1 else []
    ring = [_new_key(), *[k for k in recent if k != old[-1]], old[-1]]
    _write(path, ring)
    return KeyRing(tuple(ring))


def _new_key() -> str:
    return secrets.token_urlsafe(32)


def _read(path: Path) -> list[str]:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a key file others can read is a key others have
    keys = [line.strip() for line in path.read_text(encoding="ascii").splitlines()]
    keys = [k for k in keys if k and not k.startswith("#")]
    if not keys:
        raise ConfigError(f"{path}: no key in it; delete it to have a new one made")
    return keys


def _write(path: Path, keys: Sequence[str], replace: bool = True) -> None:
    """Written owner-only from the start (never readable by others, even for a moment), and
    whole (a reader sees the old file or the new, never half of one). ``replace=False`` keeps
    a file another process made meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write("# newest first; the last line names issues, keep it\n")
            file.write("\n".join(keys) + "\n")
        if replace:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
    finally:
        temporary.unlink(missing_ok=True)
