"""The compiled guard (app/guard_build.py) is the interpreted guard, faster: the same verdict on
every real and injected text, and never a build that does not match the sources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import app.guard
from app.guard import native

ROOT = Path(__file__).resolve().parents[3]

# Run in a fresh interpreter (compiled or not, by the environment): one verdict per case.
_VERDICTS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.app.guard.test_native import verdicts
import app.guard
print(json.dumps({"native": app.guard.NATIVE, "verdicts": verdicts()}))
"""


def verdicts() -> list:
    """Every real text of the corpora and every injected loop, tokenized by the embedded
    model's tokenizer, fed one token a step and (every other case) three tokens a step,
    without and with page evidence: the verdict of each, as plain data."""
    from transformers import AutoTokenizer

    from app.config import EMBEDDED_MODEL
    from app.guard import LoopDetector
    from bench.guard import real as corpus
    from bench.guard.synthetic import inject_all
    from bench.guard_quality import encode, page_lines_of

    tokenizer = AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL), local_files_only=True)
    items = [i for folder in [corpus.CORPUS, *corpus.holdouts()] for i in corpus.manifest(folder)]
    texts = [corpus.read(item) for item in items]
    texts += [item.text for item in inject_all(corpus.legit_texts(), per_kind=6)]
    results = []
    for n, text in enumerate(texts):
        ids, pieces = encode(tokenizer, text)
        for page_lines in (None, page_lines_of(text), 0):
            detector = LoopDetector(page_lines=page_lines)
            step = 1 if n % 2 else 3
            verdict = None
            for k in range(0, len(ids), step):
                verdict = detector.feed(tuple(ids[k : k + step]), "".join(pieces[k : k + step]))
                if verdict is not None:
                    break
            else:
                verdict = detector.finish()  # the text ended: its last line is finished
            results.append(None if verdict is None else list(verdict.__dict__.values()))
    return results


def _python(code: str, *args: str, native_env: str = "1", path: Path = ROOT):
    env = {**os.environ, native.ENV: native_env, "PYTHONPATH": str(path)}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=path,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _verdicts(native_env: str) -> dict:
    done = _python(_VERDICTS, str(ROOT), native_env=native_env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_compiled_guard_gives_the_interpreted_guards_verdicts():
    assert native.state() == "current", "no current build: run scripts/setup"
    compiled, interpreted = _verdicts("1"), _verdicts("0")
    assert compiled["native"] and not interpreted["native"]
    assert len(compiled["verdicts"]) > 800
    assert sum(v is not None for v in compiled["verdicts"]) > 300  # loops among them
    assert compiled["verdicts"] == interpreted["verdicts"]


def test_this_process_runs_the_compiled_guard():
    """scripts/setup builds it; the rest of the suite then tests the compiled code."""
    assert native.state() == "current", "no current build: run scripts/setup"
    assert app.guard.NATIVE


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [(None, "absent"), ("built from these", "current"), ("0" * 64, "stale")],
)
def test_a_build_counts_only_for_the_sources_it_was_built_from(tmp_path, stamp, expected):
    package, folder = tmp_path / "guard", tmp_path / "guard" / "_native"
    folder.mkdir(parents=True)
    (package / "detector.py").write_text("X = 1\n")
    if stamp is not None:
        digest = native.sources_digest(package) if stamp == "built from these" else stamp
        (folder / native.STAMP).write_text(digest + "\n")
    assert native.state(package, folder) == expected
    (package / "detector.py").write_text("X = 2\n")  # an edit after the build
    assert native.state(package, folder) == ("absent" if stamp is None else "stale")


def test_an_edited_source_falls_back_to_the_interpreted_guard(tmp_path):
    """A copy of the package with its build: compiled as copied; interpreted, saying why,
    once a source is edited; interpreted when the environment says so."""
    assert native.state() == "current", "no current build: run scripts/setup"
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    shutil.copytree(
        ROOT / "app" / "guard",
        tmp_path / "app" / "guard",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    probe = "import app.guard as g; print(g.NATIVE, g.LoopDetector().feed((1,), 'a'))"
    fresh = _python(probe, path=tmp_path)
    assert fresh.stdout.split() == ["True", "None"], fresh.stderr
    assert _python(probe, path=tmp_path, native_env="0").stdout.split() == ["False", "None"]
    with (tmp_path / "app" / "guard" / "structure.py").open("a") as source:
        source.write("\n# edited\n")
    edited = _python(probe, path=tmp_path)
    assert edited.stdout.split() == ["False", "None"], edited.stderr
    assert "built from other sources" in edited.stderr
