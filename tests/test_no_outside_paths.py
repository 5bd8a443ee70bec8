"""The repository stands on its own: no file points outside it, and every cited source is a row here.

- No tracked text file refers to a ``shared`` folder beside the checkout (``shared/...`` or
  ``../shared``) or to the absolute ``/work/`` tree: a user of the repository cannot open either.
- No Markdown document points its reader at a file under a machine-local absolute path (``/tmp/``,
  ``/home/`` ...). Fenced code blocks are exempt from this one check: a command the reader runs may
  write its output to a scratch folder on the reader's own machine (docs/validation.md does).
- Every ``E<n>`` (published figure) and ``M<n>`` (mechanism of the source article) cited in a
  parameter's source, or in a calibration target's source, is a row of docs/evidence.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".yml", ".yaml", ".cff", ".html", ".css", ".js", ".ipynb"}
TEXT_NAMES = {"Makefile", "LICENSE"}
EVIDENCE = ROOT / "docs" / "evidence.md"

# A "shared" folder as a path: "shared/..." (also "../shared/...", "`shared/x`") or "../shared".
# Not preceded by a letter, digit, "_" or "-", so a name that merely ends in "shared" is not flagged;
# "model.shared()" has no slash and is not flagged either.
SHARED = re.compile(r"(?<![\w-])shared/|\.\./shared\b")
# The absolute /work/ tree, anywhere (not a URL's path: a URL has a host name right before it).
WORK = re.compile(r"(?<![\w.\-/~])/work/")
# Machine-local absolute folders, in Markdown prose (outside fenced code blocks).
LOCAL = re.compile(r"(?<![\w.\-/~])/(?:tmp|home|Users|root|mnt)/")
CITED = re.compile(r"\b([EM]\d+)\b")
ROW = re.compile(r"^\|\s*([EM]\d+)\s*\|", re.MULTILINE)


def _tracked_text_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = [ROOT / name for name in out.decode().split("\0") if name]
    return [
        f
        for f in files
        if (f.suffix in TEXT_SUFFIXES or f.name in TEXT_NAMES)
        and f.is_file()  # listed but deleted in the work tree: nothing to check
        and f.resolve() != Path(__file__).resolve()  # this file spells out the patterns it looks for
    ]


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of a Markdown text outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, line))
    return out


def test_no_tracked_file_points_outside_the_repository():
    files = _tracked_text_files()
    assert files, "git ls-files listed no text files"
    found = []
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        rel = f.relative_to(ROOT)
        for number, line in enumerate(text.splitlines(), 1):
            for pattern in (SHARED, WORK):
                if pattern.search(line):
                    found.append(f"{rel}:{number}: {line.strip()}")
        if f.suffix == ".md":
            found.extend(f"{rel}:{number}: {line.strip()}" for number, line in _prose_lines(text) if LOCAL.search(line))
    assert not found, "paths outside the repository (cite docs/evidence.md rows instead):\n" + "\n".join(found)


def test_patterns_flag_what_they_should_and_nothing_else():
    assert SHARED.search("see `" + "shared/evidence.md`")
    assert SHARED.search("../" + "shared")
    assert not SHARED.search("model.shared() and the overshared" + "/ folder")
    assert WORK.search("read " + "/work/x")
    assert not WORK.search("https://example.org" + "/work/x")
    assert LOCAL.search("open " + "/tmp/out.md")
    assert not LOCAL.search("https://example.org" + "/tmp/x")
    assert _prose_lines("a\n```\n--markdown " + "/tmp/x.md\n```\nb") == [(1, "a"), (5, "b")]


def _evidence_ids() -> list[str]:
    return ROW.findall(EVIDENCE.read_text(encoding="utf-8"))


def test_evidence_rows_are_unique_and_complete():
    ids = _evidence_ids()
    assert len(ids) == len(set(ids)), "an evidence id appears as two rows"
    assert {f"E{i}" for i in range(1, 27)} <= set(ids)
    assert any(i.startswith("M") for i in ids)


def test_every_cited_source_is_a_row_of_docs_evidence():
    from oudsim.model.calibration import TARGETS
    from oudsim.model.parameters import flat_fields

    ids = set(_evidence_ids())
    sources = {
        f"parameter {name}": (info.json_schema_extra or {}).get("source", "") for name, info in flat_fields().items()
    }
    sources.update({f"calibration target {t.metric}": t.source for t in TARGETS})
    missing = [
        f"{what}: {cited} ({source!r})"
        for what, source in sources.items()
        for cited in CITED.findall(source)
        if cited not in ids
    ]
    assert not missing, "cited but not a row of docs/evidence.md:\n" + "\n".join(missing)
    cited_anywhere = {c for s in sources.values() for c in CITED.findall(s)}
    assert any(c.startswith("E") for c in cited_anywhere) and any(c.startswith("M") for c in cited_anywhere)
