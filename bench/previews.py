"""The relevance floor measured through the product, as the issue measured it: each dev-set
profile (``bench/data``) subscribed with ``digest subscribe`` (its description as the
interest, its keywords), then ``digest preview`` for each of the seeds' five listing days, in a
fresh data folder; the papers in the previews are read back from their text files and scored
against the graded labels. ``bench/floor.py`` simulates the same digests in process; the two
should agree.

    .venv/bin/python bench/previews.py
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "data"
DIGEST = str(Path(sys.executable).with_name("digest"))


def words(title: str) -> str:
    return re.sub(r"\W+", " ", title.lower()).strip()


def main() -> None:
    profiles = yaml.safe_load((DATA / "profiles.yaml").read_text())["profiles"]
    with (DATA / "papers.tsv").open() as file:
        key_of = {words(r["title"]): r["paper"] for r in csv.DictReader(file, delimiter="\t")}
    with (DATA / "labels.tsv").open() as file:
        grade = {
            (r["profile"], r["paper"]): int(r["grade"])
            for r in csv.DictReader(file, delimiter="\t")
        }
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "DIGEST_DATA_DIR": str(Path(folder) / "data")}

        def digest(*args: str) -> str:
            done = subprocess.run([DIGEST, *args], env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"digest {' '.join(args)}: {done.stderr.strip()}")
            return done.stdout

        digest("ingest", "--source", "seeds")
        days = sorted({p["first_listed_on"] for p in json.loads(digest("papers", "--json"))})
        totals = [0, 0, 0, 0]
        print(f"{len(profiles)} profiles, listing days {', '.join(days)}")
        for profile in profiles:
            email = f"{profile['id']}@example.org"
            keywords = [arg for k in profile["keywords"] for arg in ("--keyword", k)]
            digest("subscribe", email, "--interest", profile["description"], *keywords)
            sent: set[str] = set()
            for day in days:
                out = Path(folder) / "previews" / profile["id"] / day
                digest("preview", email, "--date", day, "--out", str(out))
                for text in out.glob("*.txt"):
                    titles = [
                        line[2:] for line in text.read_text().splitlines() if line.startswith("* ")
                    ]
                    sent.update(key_of[words(t)] for t in titles)
            grades = {key: grade[(profile["id"], key)] for key in key_of.values()}
            relevant = sum(grades[k] >= 1 for k in sent)
            strong = sum(grades[k] == 2 for k in sent)
            all_strong = sum(g == 2 for g in grades.values())
            totals = [
                a + b
                for a, b in zip(totals, (len(sent), relevant, strong, all_strong), strict=True)
            ]
            print(
                f"  {profile['id']:26} sent {len(sent):3}, relevant {relevant:3}, strong {strong}/{all_strong}"
            )
    sent_all, relevant_all, strong_all, all_strong_all = totals
    print(
        f"sent {sent_all}: precision {relevant_all / sent_all:.3f}, "
        f"recall of the strongly relevant {strong_all / all_strong_all:.3f}"
    )


if __name__ == "__main__":
    main()
