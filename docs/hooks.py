"""mkdocs hooks for the documentation site (mkdocs.yml ``hooks``; not a page, not part of the package).

- The package as installed: the repository keeps ``model/``, ``agents/`` and ``scenarios/`` at its top
  level and installs them as ``oudsim.model``, ``oudsim.agents`` and ``oudsim.scenarios`` (pyproject's
  package-dir). mkdocstrings reads source files, so this copies them into ``build/api-src/oudsim/``
  (or ``$OUDSIM_DOCS_API_SOURCE/oudsim/``) in that layout before the build, and the API reference
  documents the names users import.
- The notebooks: each jupytext percent-format script in ``docs/notebooks/`` (kept as text, run by
  ``tests/test_notebooks.py``) also becomes a page of the site, its Markdown cells as text and its code
  cells as code, beside the script itself to download.
- README sections in pages (a line ``--8<-- "README.md:name"``): the text between the README's
  markers ``[start:name]`` and ``[end:name]``, its links to ``docs/x.md`` (as seen from the
  repository's root) made links to ``x.md``, the page on the site.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
# Where each installed package's files are in the repository (as in pyproject.toml's package-dir).
PACKAGE_DIRS = {"": ROOT / "model" / "_oudsim", "model": ROOT / "model", "agents": ROOT / "agents"}
PACKAGE_DIRS["scenarios"] = ROOT / "scenarios"
README_LINK = re.compile(r"\]\(docs/")
README_SECTION = re.compile(r'^--8<-- "README\.md:([a-z]+)"$', re.MULTILINE)


def on_startup(command: str, dirty: bool) -> None:
    # At start-up: mkdocstrings looks for its paths when it sets up, before the build. The folder is
    # mkdocs.yml's (OUDSIM_DOCS_API_SOURCE, or build/api-src), relative to the repository.
    package = ROOT / os.environ.get("OUDSIM_DOCS_API_SOURCE", "build/api-src") / "oudsim"
    if package.exists():
        shutil.rmtree(package)
    for sub, folder in PACKAGE_DIRS.items():
        target = package / sub
        for source in folder.rglob("*.py"):
            relative = source.relative_to(folder)
            if sub == "model" and relative.parts[0] == "_oudsim":
                continue  # the package's root, copied as oudsim/__init__.py
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / relative)


def notebook_markdown(script: str) -> str:
    """A jupytext percent-format script as Markdown: ``# %% [markdown]`` cells as text, code cells fenced."""
    import jupytext

    notebook = jupytext.reads(script, fmt="py:percent")
    parts = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        elif cell.source.strip():
            parts.append(f"```python\n{cell.source}\n```")
    return "\n\n".join(parts) + "\n"


def on_files(files: Files, config) -> Files:  # noqa: ANN001
    for script in sorted((Path(config["docs_dir"]) / "notebooks").glob("*.py")):
        page = f"notebooks/{script.stem}.md"
        text = notebook_markdown(script.read_text(encoding="utf-8"))
        text += (
            f"\n---\n\nThis page is the notebook [`{script.name}`]({script.name}) (jupytext's percent format). "
            "[How to open and run it](index.md).\n"
        )
        files.append(File.generated(config, page, content=text))
    return files


def readme_section(name: str) -> str:
    """The README's text between ``<!-- --8<-- [start:name] -->`` and ``[end:name]``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = r"^[^\n]*--8<-- \[{}:{}\][^\n]*$"
    found = re.search(marker.format("start", name) + r"\n(.*?)" + marker.format("end", name), text, re.M | re.S)
    if found is None or not found.group(1).strip():
        raise ValueError(f"README.md has no section '{name}' (<!-- --8<-- [start:{name}] --> ... [end:{name}])")
    return README_LINK.sub("](", found.group(1))


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001
    # README sections are put in here (not by pymdownx.snippets) so that their links are made relative
    # to docs/ before mkdocs checks them.
    return README_SECTION.sub(lambda m: readme_section(m.group(1)), markdown)
