"""Secret keys nobody else has: made per data folder on first use, owner-only, weak or published
keys refused, rotation that keeps old links working and issues' names (and so sends nothing
twice); tokens that carry a random handle, never the address."""

from __future__ import annotations

import base64
import json
import stat
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from digest.archive import Archive
from digest.db.models import Cadence
from digest.errors import ConfigError, TokenError
from digest.keys import KEY_FILE, load_keys, rotate_keys
from digest.periods import Period
from digest.render import Renderer
from digest.runtime import Runtime
from digest.sending import send_digests
from digest.settings import load_settings
from digest.tokens import Purpose, Tokens, new_link
from tests.test_delivery import FAST, THEMES, people, store  # noqa: F401

DAY = date(2026, 4, 15)


def test_each_data_folder_makes_its_own_key_once_and_keeps_it_owner_only(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    first = load_keys(None, one)
    assert load_keys(None, one) == first  # reused, not remade
    assert load_keys(None, two) != first
    assert stat.S_IMODE((one / KEY_FILE).stat().st_mode) == 0o600
    link = new_link()
    assert Tokens(first.keys).make(link, Purpose.preferences) != Tokens(
        load_keys(None, two).keys
    ).make(link, Purpose.preferences)
    with pytest.raises(TokenError):  # a link from one installation means nothing to another
        Tokens(load_keys(None, two).keys).read(
            Tokens(first.keys).make(link, Purpose.preferences), Purpose.preferences
        )


@pytest.mark.parametrize(
    "key",
    [
        "dev-only-change-me",
        "changeme",
        "short-key",
        "a" * 40,
        "abcabcabcabcabcabcabcabcabcabcabcabc",
    ],
)
def test_a_published_or_weak_key_is_refused_with_how_to_make_one(key: str) -> None:
    settings = load_settings(secret_key=key)
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY") as refused:
        Renderer.from_settings(settings)
    assert "secrets.token_urlsafe" in str(refused.value)


def test_a_key_file_others_can_read_is_made_owner_only(tmp_path: Path) -> None:
    load_keys(None, tmp_path)
    (tmp_path / KEY_FILE).chmod(0o644)
    load_keys(None, tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_tokens_carry_a_random_handle_never_the_address(tmp_path: Path) -> None:
    tokens = Tokens(load_keys(None, tmp_path).keys)
    link = new_link()
    for purpose in Purpose:
        token = tokens.make(link, purpose)
        payload = token.split(".")[0]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert json.loads(decoded) == {"link": link, "purpose": purpose.value}
        assert tokens.read(token, purpose) == link


def test_rotation_signs_with_the_new_key_and_old_links_still_work(tmp_path: Path) -> None:
    before = load_keys(None, tmp_path)
    link = new_link()
    mailed = Tokens(before.keys).make(link, Purpose.unsubscribe)
    after = rotate_keys(tmp_path)
    assert after.signing != before.signing and after.identity == before.identity
    assert load_keys(None, tmp_path) == after
    assert Tokens(after.keys).read(mailed, Purpose.unsubscribe) == link
    fresh = Tokens(after.keys).make(link, Purpose.unsubscribe)
    with pytest.raises(TokenError):  # signed by the new key, which the old ring lacks
        Tokens(before.keys).read(fresh, Purpose.unsubscribe)
    for _ in range(5):
        ring = rotate_keys(tmp_path)
    assert len(ring.keys) == 4 and ring.identity == before.identity


def test_a_configured_ring_is_newest_first() -> None:
    new, old = "N" + new_link() * 2, "O" + new_link() * 2
    ring = load_keys(f"{new}, {old}", Path("/nonexistent"))
    assert (ring.signing, ring.identity) == (new, old)
    link = new_link()
    assert Tokens([new, old]).read(Tokens(old).make(link, Purpose.feedback), Purpose.feedback)


def test_rotating_keys_renames_no_issue_and_sends_nothing_twice(
    store: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    emails = people(store, 4)
    data = tmp_path / "data"

    def run() -> tuple[int, int]:
        settings = load_settings(data_dir=data)
        summary = send_digests(
            Runtime(
                engine=store,
                themes=THEMES,
                renderer=Renderer.from_settings(settings),
                archive=Archive(tmp_path / "archive", settings.public_url),
                channel="outbox",
                outbox=tmp_path / "outbox",
                options=FAST,
            ),
            period=Period.day(DAY),
            cadence=Cadence.daily,
        )
        return summary.sent, summary.earlier

    assert run() == (len(emails), 0)
    files = sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))
    rotate_keys(data)
    assert run() == (0, len(emails))
    assert sorted(p.name for p in (tmp_path / "outbox").glob("*.eml")) == files
