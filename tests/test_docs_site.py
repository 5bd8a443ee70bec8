"""The documentation site builds offline with ``mkdocs build --strict`` and no warning at all, every
page the issue asks for is in it, the API reference holds the public names, and the built pages load
nothing from the internet (tests/browser/test_docs_in_browser.py opens them in Chromium)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).with_name("mkdocs")
# Pages the issue names, as built files (use_directory_urls: false).
PAGES = [
    "index.html",
    "getting-started.html",
    "dashboard.html",
    "analyst.html",
    "ODD.html",
    "evidence.html",
    "calibration.html",
    "validation.html",
    "sensitivity.html",
    "economics.html",
    "CONTRIBUTING.html",
    "changelog.html",
    "about.html",
    "notebooks/index.html",
    "notebooks/student_first_hour.html",
    "notebooks/analyst_scenario_study.html",
    "api/index.html",
]
REMOTE = re.compile(r"""(?:src|href)=["'](?:https?:)?//""")


def build_site(site: Path, config: Path = ROOT / "mkdocs.yml") -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` into ``site``; the package's sources for the API reference go beside it
    (each build its own: tests run in parallel)."""
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "NO_COLOR": "1",
        "OUDSIM_DOCS_API_SOURCE": str(site.parent / "api-src"),
    }
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    built = build_site(out)
    log = built.stdout + built.stderr
    assert built.returncode == 0, log
    warnings = [line for line in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert not warnings, "mkdocs warned:\n" + "\n".join(warnings)
    return out


def test_every_page_is_built(site: Path):
    missing = [p for p in PAGES if not (site / p).is_file()]
    assert not missing, missing


def test_nav_names_every_markdown_page_but_the_excluded():
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!ENV", lambda loader, node: None)  # mkdocs' environment variables
    nav = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=loader)["nav"]

    def pages(entry) -> list[str]:
        if isinstance(entry, str):
            return [entry]
        if isinstance(entry, list):
            return [p for e in entry for p in pages(e)]
        return [p for v in entry.values() for p in pages(v)]

    in_nav = set(pages(nav))
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    notebooks = {f"notebooks/{p.stem}.md" for p in (ROOT / "docs" / "notebooks").glob("*.py")}
    assert on_disk | notebooks == in_nav | ({"reliability.md"} & on_disk), sorted(on_disk ^ in_nav)


@pytest.mark.slow  # a build each (the site fixture's build keeps the edit loop's check)
@pytest.mark.parametrize(
    ("probe", "named"),
    [
        ("# Probe\n\n[nowhere](no-such-page.md)\n", "no-such-page.md"),  # a broken link
        ("# Probe\n\n![gone](figures/no-such-figure.png)\n", "no-such-figure.png"),  # a missing image
        ("# Probe\n\n[there](index.md#no-such-heading)\n", "no-such-heading"),  # a missing anchor
    ],
)
def test_strict_build_fails_on_a_broken_link_image_or_anchor(tmp_path, probe: str, named: str):
    """The project's configuration, on a copy of docs/ with one page more that the nav lists."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("figures", "__pycache__"))
    shutil.copytree(ROOT / "docs" / "figures", docs / "figures", copy_function=os.link)
    (docs / "probe.md").write_text(probe)
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: {docs}\nhooks: [{ROOT / 'docs' / 'hooks.py'}]\n"
        "not_in_nav: probe.md\n"
    )
    built = build_site(tmp_path / "site", config)
    assert built.returncode != 0, built.stdout + built.stderr
    assert named in built.stdout + built.stderr


@pytest.mark.slow
def test_strict_build_of_the_copy_alone_passes(tmp_path):
    """The probes above fail for their probe page, not for the copy: without it the copy builds."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("__pycache__"))
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: {docs}\nhooks: [{ROOT / 'docs' / 'hooks.py'}]\n")
    built = build_site(tmp_path / "site", config)
    assert built.returncode == 0, built.stdout + built.stderr


def test_readme_sections_and_release_files_are_in_the_pages(site: Path):
    start = (site / "getting-started.html").read_text()
    assert "make run" in start and "Your first scenario comparison" in start
    assert 'href="evidence.html"' in start  # the README's docs/evidence.md, as a link on the site
    analyst = (site / "analyst.html").read_text()
    assert "oudsim compare baseline reduce_isolation stigma_campaign" in analyst
    assert 'href="economics.html' in analyst and "docs/economics.md</a>" in analyst
    assert "Permission is hereby granted" in (site / "about.html").read_text()
    assert "cff-version" in (site / "about.html").read_text()
    assert "[0.1.0]" in (site / "changelog.html").read_text()


def test_notebooks_are_pages_with_their_code(site: Path):
    student = (site / "notebooks" / "student_first_hour.html").read_text()
    assert "A student" in student and "run_replicates" in student and "person.history()" in student
    assert (site / "notebooks" / "student_first_hour.py").is_file()  # the script, to download
    analyst = (site / "notebooks" / "analyst_scenario_study.html").read_text()
    assert "scarce_slots_peer_support" in analyst and "final_year_means" in analyst


@pytest.mark.parametrize(
    ("page", "names"),
    [
        ("api/oud_model.html", ["oudsim.model.oud_model.OUDModel", "run_for"]),
        ("api/experiments.html", ["oudsim.model.experiments.run_replicates", "final_year_means", "compare"]),
        ("api/scenarios.html", ["oudsim.scenarios.load_scenario", "oudsim.scenarios.Scenario", "with_overrides"]),
        ("api/parameters.html", ["oudsim.model.parameters.Parameters", "apply_overrides"]),
        ("api/metrics.html", ["oudsim.model.metrics.CATALOGUE"]),
        ("api/agents.html", ["oudsim.agents.person.Person", "oudsim.agents.states.Stage"]),
        ("api/economics.html", ["oudsim.model.economics", "oudsim.model.decision"]),
        ("api/calibration.html", ["oudsim.model.calibration", "oudsim.model.posterior", "oudsim.model.sensitivity"]),
        ("api/index.html", ["oudsim.versions"]),
    ],
)
def test_api_reference_documents_the_public_names(site: Path, page: str, names: list[str]):
    html = (site / page).read_text()
    missing = [n for n in names if n not in html]
    assert not missing, f"{page} lacks {missing}"


def test_built_pages_load_nothing_from_the_internet(site: Path):
    """No web fonts, no CDN script or style: every src/href that loads is local (links out are <a>)."""
    found = []
    for page in site.rglob("*.html"):
        html = page.read_text()
        for tag in re.findall(r"<(?:script|link|img|iframe|source)\b[^>]*>", html):
            if REMOTE.search(tag):
                found.append(f"{page.relative_to(site)}: {tag}")
    assert not found, "\n".join(found[:20])
    css = "".join(p.read_text() for p in site.rglob("*.css"))
    assert "fonts.googleapis" not in css and "@import url(http" not in css
