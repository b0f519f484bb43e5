"""The outbox channel: each message a real ``.eml`` file, written atomically, plus an
``index.tsv`` listing them, for previews, tests and another mailer to pick up. The file is its
own record: a run that crashed before the ledger heard of it finds it and only records it."""

from __future__ import annotations

import email.policy
import threading
from email.parser import BytesHeaderParser
from pathlib import Path

from digest.delivery import Commit, LeaseLost
from digest.files import write_atomic
from digest.mime import RenderedEmail, message_bytes, one_line

__all__ = ["OutboxDeliverer"]


class OutboxDeliverer:
    """Writes each message as ``<issue>.eml`` (real MIME) into a folder, plus ``index.tsv``."""

    name = "outbox"
    findable = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, issue_id: str) -> Path:
        return self.folder / f"{issue_id}.eml"

    def already_delivered(self, email: RenderedEmail, issue_id: str) -> bool:
        return self.path(issue_id).exists()

    def deliver(self, email: RenderedEmail, issue_id: str, commit: Commit) -> str:
        path = write_atomic(self.path(issue_id), message_bytes(email))
        entry = _index_entry(email.to, email.subject)
        with _UNINDEXED_LOCK:
            _UNINDEXED.setdefault(self.folder, {})[path.name] = entry
        if not commit():
            raise LeaseLost(issue_id)
        return f"written to {path}"

    def reset(self) -> None:
        return None

    def close(self) -> None:
        self.write_index()

    def write_index(self) -> Path:
        """``index.tsv``: file, recipient, subject, one line per ``.eml`` in the folder (so it
        never lists a file that is not there, nor leaves one out). Lines already in the index
        and those of files written in this process since are reused; only a file neither knows
        (another process's) has its headers read, so closing after 100,000 messages costs a
        directory listing, not 100,000 parses."""
        index = self.folder / "index.tsv"
        with _UNINDEXED_LOCK:
            known = _UNINDEXED.pop(self.folder, {})
        if index.exists():
            for line in index.read_text(encoding="utf-8").splitlines()[1:]:
                name, _, entry = line.partition("\t")
                known.setdefault(name, entry)
        lines = ["file\tto\tsubject"]
        for path in sorted(self.folder.glob("*.eml")):
            entry = known.get(path.name) or _read_entry(path)
            lines.append(f"{path.name}\t{entry}")
        return write_atomic(index, ("\n".join(lines) + "\n").encode())


_UNINDEXED: dict[Path, dict[str, str]] = {}
"""Index lines of the ``.eml`` files written in this process and not yet in an index, per
folder: every worker's deliverer adds to it; the first to close takes them all."""

_UNINDEXED_LOCK = threading.Lock()


def _index_entry(to: str, subject: str) -> str:
    return f"{one_line(to, 998)}\t{one_line(subject, 998)}"


def _read_entry(path: Path) -> str:
    """The index entry of an ``.eml`` file, from its header block only."""
    with path.open("rb") as file:
        head = file.read(65_536).split(b"\r\n\r\n", 1)[0]
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(head + b"\r\n\r\n")
    return _index_entry(str(headers["To"] or ""), str(headers["Subject"] or ""))
