"""The ``digest`` command: output, clean one-line errors, and docs kept honest by tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import make_url
from typer.main import get_command
from typer.testing import CliRunner

from digest.db import get_engine, sent
from digest.embeddings import semantic_installed
from digest.errors import ConfigError, StoreError
from digest.ingest import ingest_pages, read_pages
from digest.settings import Settings, load_settings
from flows.cli import build_app
from tests.conftest import SEEDS
from tests.test_store import damage

README = (Path(__file__).parent.parent / "README.md").read_text()
runner = CliRunner()

app = build_app()


@pytest.fixture
def stored() -> None:
    ingest_pages(read_pages("seeds", SEEDS, None), load_settings().db_url)


def test_papers_json_has_one_object_per_stored_paper(stored: None) -> None:
    result = runner.invoke(app, ["papers", "--json"])
    assert result.exit_code == 0, result.output
    papers = json.loads(result.stdout)
    assert len(papers) == 301
    first = papers[0]
    assert {
        "id",
        "title",
        "abstract",
        "authors",
        "organization",
        "published_on",
        "upvotes",
        "num_comments",
        "first_listed_on",
    } <= set(first)
    assert first["last_listed_on"] == "2026-04-15"
    assert all(p["id"].startswith("title:") and p["arxiv_id"] is None for p in papers)
    assert any(p["organization"] == {"slug": "NJU-LINK", "name": "NJU-LINK Lab"} for p in papers)


def test_papers_for_one_day(stored: None) -> None:
    result = runner.invoke(app, ["papers", "--date", "2026-04-15"])
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 32 and all(line.startswith("2026-04-15") for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["papers", "--date", "2026-13-01"], "error: date '2026-13-01': expected YYYY-MM-DD"),
        (["papers", "--date", "2999-01-01"], "error: date 2999-01-01: is in the future"),
        (
            ["ingest", "--source", "arxiv"],
            "error: source 'arxiv': expected one of seeds, hf-api, hf-html",
        ),
        (
            ["ingest", "--source", "hf-api", "--date", "2026-W60"],
            "error: week '2026-W60': no such ISO week",
        ),
        (
            ["backfill", "--from", "2026-03-06", "--to", "2026-03-02"],
            "error: date range 2026-03-06..2026-03-02: the end is before the start",
        ),
        (
            ["backfill", "--from", "2026-03-06", "--to", "2999-03-02"],
            "error: date 2999-03-02: is in the future",
        ),
        (
            ["backfill", "--from", "2026-03-02", "--to", "2026-03-06", "--source", "nope"],
            "error: source 'nope'",
        ),
    ],
)
def test_bad_arguments_give_one_clear_line_and_exit_1(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_a_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_HTTP_TIMEOUT", "soon")
    result = runner.invoke(app, ["papers"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: setting DIGEST_HTTP_TIMEOUT: Input should be a valid number"
    )


def test_a_send_lease_under_a_minute_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect's slot refuses leases under 60 s: refuse them when reading the settings, not
    in the middle of every send."""
    with pytest.raises(ConfigError, match="^setting DIGEST_SEND_LEASE: .* 60$"):
        load_settings(send_lease=30)
    assert load_settings(send_lease=60).send_lease == 60
    monkeypatch.setenv("DIGEST_SEND_LEASE", "59.5")
    with pytest.raises(ConfigError, match="DIGEST_SEND_LEASE"):
        load_settings()
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == (
        "error: setting DIGEST_SEND_LEASE: Input should be greater than or equal to 60\n"
    )


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("schema", "database disk image is malformed"),
        ("papers", "database disk image is malformed"),
    ],
)
def test_a_damaged_store_is_one_clear_line_not_a_traceback(
    stored: None, where: str, reason: str
) -> None:
    url = load_settings().db_url
    path = make_url(url).database
    assert path is not None
    get_engine(url).dispose()
    get_engine.cache_clear()
    damage(Path(path), where)
    try:
        result = runner.invoke(app, ["papers"])
    finally:
        with contextlib.suppress(StoreError):
            get_engine(url).dispose()
        get_engine.cache_clear()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # no traceback
    assert result.stderr == (
        f"error: database {path} is damaged ({reason}): restore it from a backup, "
        "or move it aside to start an empty store\n"
    )


def test_a_missing_path_is_a_clear_error() -> None:
    result = runner.invoke(app, ["ingest", "--source", "seeds", "--path", "nowhere/"])
    assert result.exit_code == 1
    assert "error: nowhere: no such file or folder" in result.stderr


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_run_does_the_daily_job_on_the_seeds_once(tmp_path: Path) -> None:
    settings = load_settings()
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    assert "The store had no subscribers: added 5 examples" in result.stdout
    assert "holds 301 papers, 340 sightings" in result.stdout
    # four example subscribers are daily, one weekly; the seeds' newest day is 2026-04-15, and
    # none of its papers clears the relevance floor of the one who wants faster LLM serving
    # (quantization, speculative decoding, KV cache): skipped, not sent filler
    assert "Sent daily 2026-04-15: 3 sent, 1 skipped, 0 failed" in result.stdout
    files = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(files) == 3 and all(f.name.startswith("2026-04-15-") for f in files)
    index = (settings.outbox_dir / "index.tsv").read_text().splitlines()
    assert sorted(line.split("\t")[1] for line in index[1:]) == [
        "ada@example.org",
        "alan@example.org",
        "grace@example.org",
    ]
    assert (settings.archive_dir / "index.html").exists()
    # "view in browser" pages are rendered from the ledger when asked for, not written out
    assert not any((settings.archive_dir / f"{f.stem}.html").exists() for f in files)
    engine = get_engine(settings.db_url)
    assert all(sent.sent_issue(engine, f.stem) is not None for f in files)

    again = runner.invoke(app, ["run"])
    assert again.exit_code == 0, again.output
    assert "added" not in again.stdout
    assert "0 sent, 1 skipped, 0 failed, 0 suppressed, 3 done before" in again.stdout
    assert sorted(settings.outbox_dir.glob("*.eml")) == files

    weekly = runner.invoke(app, ["send", "--cadence", "weekly", "--newest"])
    assert weekly.exit_code == 0, weekly.output
    assert "Sent weekly 2026-W16: 1 sent" in weekly.stdout
    assert len(list(settings.outbox_dir.glob("2026-W16-*.eml"))) == 1


def test_every_command_has_an_example_and_is_in_the_readme() -> None:
    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert "Example: digest " + name in (command.help or ""), f"{name} has no Example: line"
        assert re.search(rf"digest {name}\b", README), f"digest {name} is not in the README"


def test_every_setting_is_documented_in_the_readme() -> None:
    for name in Settings.model_fields:
        assert f"`DIGEST_{name.upper()}`" in README, f"DIGEST_{name.upper()} is not in the README"


def test_every_prefect_default_is_in_the_readme() -> None:
    from flows import PREFECT_DEFAULTS

    for name, value in {**PREFECT_DEFAULTS, "PREFECT_HOME": "DATA_DIR/prefect"}.items():
        assert f"`{name}={value}`" in README, f"{name}={value} is not in the README"


def test_the_readme_gives_exactly_the_two_setup_commands() -> None:
    commands = re.findall(r"```bash\n(python3 -m venv[^\n]*)\n```", README)
    assert len(commands) == 2
    assert commands[0].endswith("digest run") and commands[1].endswith("-m pytest")
    assert "'.[dev]'" in commands[1] and "torch" not in commands[0] + commands[1]
    assert "-c requirements.lock" in commands[0] and "-c requirements.lock" in commands[1]


def test_themes_lists_the_catalogue() -> None:
    result = runner.invoke(app, ["themes"])
    assert result.exit_code == 0
    assert (
        "llm-reasoning-rl" in result.stdout
        and "keywords: reasoning, chain-of-thought" in result.stdout
    )


@pytest.fixture
def lexical(monkeypatch: pytest.MonkeyPatch) -> None:
    """BM25 only: these tests are about the command, not the embedding model."""
    monkeypatch.setenv("DIGEST_SEMANTIC", "false")


@pytest.mark.usefixtures("lexical")
def test_rank_json_covers_every_candidate_best_first() -> None:
    result = runner.invoke(app, ["rank", "--theme", "robotics-embodied", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 301
    assert list(rows[0]) == ["title", "id", "score", "estimate", "sent", "why"]
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert rows[0]["why"].startswith("matches: ")


@pytest.mark.usefixtures("lexical")
def test_rank_with_filters_and_the_store_as_source(stored: None) -> None:
    result = runner.invoke(
        app,
        [
            "rank",
            "--interest",
            "reward models for reasoning",
            "--require",
            "reward",
            "--exclude",
            "multimodal",
            "--source",
            "store",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert 0 < len(rows) < 301
    assert all(r["id"].startswith("title:") for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rank"], "error: give --theme, a non-empty --interest, or at least one --keyword"),
        (["rank", "--interest", "   "], "error: give --theme, a non-empty --interest"),
        (
            ["rank", "--theme", "astrology"],
            "error: theme 'astrology': not in the catalogue; known: llm-reasoning-rl",
        ),
        (
            ["rank", "--keyword", "x", "--source", "arxiv"],
            "error: source 'arxiv': expected seeds or store",
        ),
    ],
)
def test_rank_refuses_bad_profiles_clearly(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and result.stderr.startswith(message)


@pytest.mark.usefixtures("lexical")
def test_a_profile_whose_words_match_nothing_says_so() -> None:
    result = runner.invoke(app, ["rank", "--keyword", "zyxwvut"])
    assert result.exit_code == 0
    assert "note: none of the profile's words occur in the candidates" in result.stderr


@pytest.mark.skipif(
    not semantic_installed(), reason="onnxruntime or the MiniLM package is not installed"
)
def test_rank_embeds_each_paper_once_and_keeps_the_vectors(clean_environ: Path) -> None:
    first = runner.invoke(app, ["rank", "--interest", "teaching robots with language", "--json"])
    assert first.exit_code == 0, first.output
    cache = clean_environ / "embeddings" / "all-MiniLM-L6-v2.npz"
    with np.load(cache) as stored:
        after_first = dict(zip(stored["keys"], stored["vectors"], strict=True))
    # every paper, and the profile: a short interest is embedded as a topic and as a phrase
    assert len(after_first) == 301 + 2
    second = runner.invoke(app, ["rank", "--interest", "spoken dialogue", "--json"])
    assert second.exit_code == 0
    with np.load(cache) as stored:
        after_second = dict(zip(stored["keys"], stored["vectors"], strict=True))
    assert len(after_second) == 301 + 4  # only the new profile was embedded
    assert all(np.array_equal(after_second[k], v) for k, v in after_first.items())
    assert json.loads(first.stdout)[0]["why"]


def test_subscribe_list_and_unsubscribe_from_the_command_line() -> None:
    added = runner.invoke(
        app,
        [
            "subscribe",
            "ada@example.org",
            "--theme",
            "agents",
            "--keyword",
            "GRPO",
            "--cadence",
            "weekly",
        ],
    )
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == "Subscribed ada@example.org."
    listed = json.loads(runner.invoke(app, ["subscribers", "--json"]).stdout)
    assert listed[0]["email"] == "ada@example.org" and len(listed[0]["subscriptions"]) == 2
    assert (
        runner.invoke(app, ["unsubscribe", "ada@example.org", "--theme", "agents"]).exit_code == 0
    )
    plain = runner.invoke(app, ["subscribers"]).stdout
    assert plain.split() == ["ada@example.org", "confirmed", "profile"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["subscribe", "nobody", "--theme", "agents"],
            "error: nobody: email: 'nobody' is not an email address",
        ),
        (
            ["subscribe", "ada@example.org", "--theme", "astrology"],
            "error: ada@example.org: theme 'astrology' is not in the catalogue",
        ),
        (
            ["subscribe", "ada@example.org", "--interest", " "],
            "error: ada@example.org: give a theme, an interest or a keyword",
        ),
        (["unsubscribe", "ghost@example.org"], "error: ghost@example.org: no such subscriber"),
        (["import-subscribers", "missing.csv"], "error: missing.csv: cannot read"),
    ],
)
def test_subscription_mistakes_are_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message) and "Traceback" not in result.output


def test_a_keyword_no_stored_paper_mentions_gets_a_note(stored: None) -> None:
    args = ["subscribe", "ada@example.org", "--keyword", "zyxwvut", "--keyword", "GRPO"]
    result = runner.invoke(app, [*args, "--interest", "qwzrtp xylofon"])
    assert result.exit_code == 0 and "Subscribed ada@example.org" in result.stdout
    assert 'note: no stored paper mentions "zyxwvut", "qwzrtp xylofon" yet' in result.stderr


def test_import_subscribers_from_a_file(tmp_path: Path) -> None:
    sheet = tmp_path / "people.csv"
    sheet.write_text("email,themes\na@example.org,agents\nb@example.org,speech-audio\n")
    result = runner.invoke(app, ["import-subscribers", str(sheet)])
    assert result.exit_code == 0 and "Imported 2 subscriber(s)" in result.stdout


def test_an_import_notes_each_subscriber_whose_words_no_stored_paper_has(
    stored: None, tmp_path: Path
) -> None:
    sheet = tmp_path / "people.csv"
    sheet.write_text("email,keywords\na@example.org,GRPO;zyxwvut\nb@example.org,GRPO\n")
    result = runner.invoke(app, ["import-subscribers", str(sheet)])
    assert result.exit_code == 0 and "Imported 2 subscriber(s)" in result.stdout
    assert result.stderr.splitlines() == [
        'note: a@example.org: no stored paper mentions "zyxwvut" yet; digests will hold such '
        "papers once listed"
    ]


@pytest.mark.usefixtures("lexical")
def test_preview_writes_html_text_and_eml_and_sends_nothing(stored: None, tmp_path: Path) -> None:
    import email
    from email import policy

    from bs4 import BeautifulSoup

    assert (
        runner.invoke(
            app,
            [
                "subscribe",
                "ada@example.org",
                "--theme",
                "llm-reasoning-rl",
                "--theme",
                "safety-alignment",
            ],
        ).exit_code
        == 0
    )
    result = runner.invoke(app, ["preview", "ada@example.org", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "ada_at_example.org.html").read_text()
    cards = BeautifulSoup(html, "lxml").select("td.card")
    assert 0 < len(cards) <= 20
    message = email.message_from_bytes(
        (tmp_path / "out" / "ada_at_example.org.eml").read_bytes(), policy=policy.default
    )
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert (
        message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and message["Message-ID"]
    )
    assert f"{len(cards)} paper(s)" in result.stdout
    text = (tmp_path / "out" / "ada_at_example.org.txt").read_text()
    assert text.count("\n* ") == len(cards)


@pytest.mark.usefixtures("lexical")
def test_preview_of_an_old_day_is_empty_and_writes_nothing(stored: None, tmp_path: Path) -> None:
    runner.invoke(app, ["subscribe", "ada@example.org", "--theme", "agents"])
    result = runner.invoke(
        app, ["preview", "ada@example.org", "--date", "2024-01-02", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0
    assert (
        "Nothing to preview for ada@example.org: no new papers from 2024-01-02 to 2024-01-02."
        in result.stdout
    )
    assert not (tmp_path / "out").exists()


def test_preview_of_an_unknown_subscriber_is_one_line(stored: None) -> None:
    result = runner.invoke(app, ["preview", "ghost@example.org"])
    assert result.exit_code == 1 and result.stderr.startswith(
        "error: ghost@example.org: no such subscriber"
    )


def test_subscribe_with_an_apprise_channel_and_quiet_days_shows_in_the_listing() -> None:
    result = runner.invoke(
        app,
        [
            "subscribe",
            "bo@example.org",
            "--theme",
            "agents",
            "--quiet-days",
            "--channel",
            "apprise:ntfy://ntfy.sh/bo-papers",
        ],
    )
    assert result.exit_code == 0, result.output
    [person] = json.loads(runner.invoke(app, ["subscribers", "--json"]).stdout)
    assert (person["channel"], person["quiet_days"], person["suppressed"]) == ("ntfy", True, False)
    assert "bo-papers" not in json.dumps(person)  # the URL may hold a token: never listed

    bad = runner.invoke(
        app, ["subscribe", "cy@example.org", "--theme", "agents", "--channel", "slack"]
    )
    assert bad.exit_code == 1
    assert (
        bad.stderr.strip()
        == "error: cy@example.org: channel: expected apprise:URL, e.g. apprise:ntfy://ntfy.sh/my-topic"
    )
    email = runner.invoke(
        app,
        [
            "subscribe",
            "cy@example.org",
            "--theme",
            "agents",
            "--channel",
            "apprise:mailto://u:p@x.org",
        ],
    )
    assert email.exit_code == 1 and "email goes through smtp://" in email.stderr


def test_status_shows_papers_ingests_subscribers_and_deliveries(
    stored: None, tmp_path: Path
) -> None:
    from digest.archive import Archive
    from digest.db import get_engine
    from digest.db.models import Cadence
    from digest.periods import Period
    from digest.render import Renderer
    from digest.runtime import Runtime, SendOptions
    from digest.sending import send_digests
    from digest.themes import load_themes

    settings = load_settings()
    for email in ("ada@example.org", "bo@example.org"):
        assert runner.invoke(app, ["subscribe", email, "--theme", "agents"]).exit_code == 0
    send_digests(
        Runtime(
            engine=get_engine(settings.db_url),
            themes=load_themes(),
            renderer=Renderer.from_settings(settings),
            archive=Archive(tmp_path / "archive", settings.public_url),
            channel="outbox",
            outbox=tmp_path / "outbox",
            options=SendOptions(workers=1),
        ),
        period=Period.day(date(2026, 4, 15)),
        cadence=Cadence.daily,
    )
    report = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert report["newest_day"] == "2026-04-15"
    assert sum(report["papers_per_day"].values()) == 23  # papers first listed in the last 21 days
    assert len(report["last_ingests"]) == 5 and report["last_ingests"][0]["status"] == "stored"
    assert report["subscribers"] == {"confirmed": 2} and report["suppressed"] == 0
    [line] = report["deliveries"]
    assert (line["cadence"], line["period_start"], line["counts"]) == (
        "daily",
        "2026-04-15",
        {"sent": 2},
    )
    text = runner.invoke(app, ["status"]).stdout
    assert "Subscribers: 2 confirmed; 0 suppressed" in text and "daily  2026-04-15" in text


def test_importing_the_flows_and_the_cli_changes_nothing(tmp_path: Path) -> None:
    """No import side effects: importing every flow module and the CLI sets no environment
    variable and creates no folder; ``main`` sets Prefect's defaults, and the one app it
    builds holds the library's commands and the flow commands alike."""
    data = tmp_path / "data"
    probe = (
        "import os, flows, flows.cli, flows.daily, flows.send, flows.ingest, flows.backfill\n"
        "from digest.cli import app as library\n"
        "names = {c.name or c.callback.__name__ for c in library.registered_commands}\n"
        "assert 'run' not in names, 'a flow command was added onto the library app'\n"
        "print(os.environ.get('PREFECT_HOME', 'unset'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DO_NOT"))}
    env["DIGEST_DATA_DIR"] = str(data)
    found = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "unset" and not data.exists()
    helped = subprocess.run(
        [sys.executable, "-c", "from flows.cli import main; main()", "--help"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert helped.returncode == 0, helped.stderr
    assert all(f" {name} " in helped.stdout for name in ("papers", "rank", "run", "send"))
    assert (data / "prefect").is_dir()  # main() set Prefect's home under the data folder
